"""The LLM designer's model in this process: a GGUF file run by llama-cpp-python.

``--designer llm --llm-local PATH.gguf`` uses this instead of an HTTP endpoint; everything
after the reply (parsing, schema and bounds checks, building, repair, fallback, compliance)
is the same code as for a server (:mod:`.llm`). llama-cpp-python is an optional extra
(``pip install 'nasforge[local-llm]'``; it compiles from source, several minutes on 2 cores).

Decoding is bounded twice: a wall-clock deadline (``timeout``) checked after every streamed
token, and ``max_tokens``. A reply still unfinished at the deadline is an LLMError (the
iteration falls back to the rules, like an HTTP timeout); one cut by ``max_tokens`` is what the
model said so far, which then fails validation and goes through the repair step.

Constrained decoding (``grammar``): ``"schema"`` (default) turns the reply schema (the genome's
JSON Schema, strict and narrowed to the space: :func:`.designer.reply_schema`) into a llama.cpp
grammar, so every token keeps the reply a prefix of a complete genome on the space's grids;
what the schema cannot say (layer order, conv/dense counts, the parameter budget) is checked
afterwards. A top-k cut before the grammar would decode faster but is unsafe here: when no
top-k token fits the grammar, llama.cpp 0.3.36 aborts the process. ``"json"`` only
restricts sampling to JSON text (a small base model then invents its own keys and rambles
until the deadline), ``"none"`` samples freely and relies on validation.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import NasforgeError
from .llm import LLMError

GRAMMARS = ("schema", "json", "none")


class LocalChatClient:
    """Same interface as :class:`.llm.ChatClient` (``model``, ``chat``, ``scrub``)."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0, temperature: float = 0.5, top_k: int = 40,
                 max_tokens: int = 768, n_ctx: int = 8192, chat_format: str = "gemma", grammar: str = "schema",
                 threads: int | None = None, seed: int = 0):  # fmt: skip
        path = Path(path).expanduser()
        if not path.is_file():
            raise NasforgeError(f"--llm-local: no model file at {path} (a GGUF file, e.g. gemma3-270m; see the README)")
        if grammar not in GRAMMARS:
            raise NasforgeError(f"--llm-grammar {grammar!r}: choose from {', '.join(GRAMMARS)}")
        try:
            from llama_cpp import Llama, LlamaGrammar
        except ImportError:
            raise NasforgeError("--llm-local needs llama-cpp-python: pip install 'nasforge[local-llm]'") from None
        self.model, self.url = f"local:{path.name}", str(path)
        self.timeout, self.temperature, self.top_k, self.max_tokens = timeout, temperature, top_k, max_tokens
        try:
            # all cores by default: the search waits while the designer thinks (2 threads: ~1.3x faster here)
            self._llm = Llama(model_path=str(path), n_ctx=n_ctx, chat_format=chat_format,
                              n_threads=threads or os.cpu_count() or 1,
                              seed=seed, verbose=False)  # fmt: skip
        except Exception as exc:  # llama.cpp reports a bad file as a ValueError/RuntimeError
            raise NasforgeError(f"--llm-local: {path} did not load as a GGUF model ({type(exc).__name__}: {exc})") from None
        self.grammar, self._grammar_type = grammar, LlamaGrammar
        self._grammars: dict[str, Any] = {}  # schema text -> compiled grammar, built once per schema
        self.calls: list[dict[str, float]] = []  # per call: seconds, completion tokens

    def scrub(self, text: str) -> str:
        return text  # no key in process

    def chat(self, messages: Sequence[Mapping[str, str]], schema: dict[str, Any], name: str = "genome") -> str:
        deadline = time.monotonic() + self.timeout
        start, parts, tokens, cut = time.perf_counter(), [], 0, False
        constraint: dict[str, Any] = {}
        if self.grammar == "schema":
            constraint["grammar"] = self._schema_grammar(schema)
        elif self.grammar == "json":
            constraint["response_format"] = {"type": "json_object"}  # llama-cpp-python's JSON grammar
        try:  # streamed, so the deadline can stop decoding between tokens
            for chunk in self._llm.create_chat_completion(
                    messages=[dict(m) for m in messages], temperature=self.temperature, top_k=self.top_k,
                    max_tokens=self.max_tokens, stream=True, **constraint):
                parts.append(chunk["choices"][0].get("delta", {}).get("content") or "")
                tokens += 1
                if time.monotonic() > deadline:
                    cut = True
                    break
        except Exception as exc:  # e.g. the prompt outgrew n_ctx
            raise LLMError(f"local model {self.model}: {type(exc).__name__}: {exc}") from None
        finally:
            self.calls.append({"seconds": time.perf_counter() - start, "tokens": float(tokens)})
        if cut:
            raise LLMError(f"local model {self.model}: no complete reply within {self.timeout:g} s ({tokens} tokens "
                           "so far); raise --llm-timeout")
        return "".join(parts)

    def _schema_grammar(self, schema: dict[str, Any]) -> Any:
        text = json.dumps(schema)  # key order kept: the grammar makes the model write keys in this order
        if text not in self._grammars:
            try:
                self._grammars[text] = self._grammar_type.from_json_schema(text, verbose=False)
            except Exception as exc:  # a schema feature llama.cpp's converter does not support
                raise LLMError(f"llama.cpp cannot turn the genome schema into a grammar ({type(exc).__name__}: "
                               f"{exc}); use --llm-grammar json") from None
        return self._grammars[text]


__all__ = ["LocalChatClient", "GRAMMARS"]
