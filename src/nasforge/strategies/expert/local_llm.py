"""The LLM designer's model in this process: a GGUF file run by llama-cpp-python.

``--designer llm --llm-local PATH.gguf`` uses this instead of an HTTP endpoint; everything
after the reply (parsing, schema and bounds checks, building, repair, fallback, compliance)
is the same code as for a server (:mod:`.llm`). llama-cpp-python is an optional extra
(``pip install 'nasforge[local-llm]'``; it compiles from source, several minutes on 2 cores).

Decoding is bounded twice: ``max_tokens`` and a wall-clock deadline (``timeout``) checked
after every streamed token; a reply cut off by either is what the model said so far, which then
fails validation and goes through the repair step like any other bad reply.

Constrained decoding (``grammar``): ``"json"`` restricts sampling to JSON text, ``"none"``
samples freely and relies on validation. A JSON-schema grammar is not offered: llama.cpp's
schema-to-grammar conversion ignores numeric bounds and, applied to a 262k-token vocabulary,
decodes at well under a token per second on 2 cores; the prompt carries the schema instead.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...errors import NasforgeError
from .llm import LLMError

GRAMMARS = ("json", "none")


class LocalChatClient:
    """Same interface as :class:`.llm.ChatClient` (``model``, ``chat``, ``scrub``)."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0, temperature: float = 0.5, top_k: int = 40,
                 max_tokens: int = 768, n_ctx: int = 8192, chat_format: str = "gemma", grammar: str = "json",
                 threads: int | None = None, seed: int = 0):  # fmt: skip
        path = Path(path).expanduser()
        if not path.is_file():
            raise NasforgeError(f"--llm-local: no model file at {path} (a GGUF file, e.g. gemma3-270m; see the README)")
        if grammar not in GRAMMARS:
            raise NasforgeError(f"--llm-grammar {grammar!r}: choose from {', '.join(GRAMMARS)}")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise NasforgeError("--llm-local needs llama-cpp-python: pip install 'nasforge[local-llm]'") from None
        self.model, self.url = f"local:{path.name}", str(path)
        self.timeout, self.temperature, self.top_k, self.max_tokens = timeout, temperature, top_k, max_tokens
        try:
            self._llm = Llama(model_path=str(path), n_ctx=n_ctx, chat_format=chat_format, n_threads=threads,
                              seed=seed, verbose=False)  # fmt: skip
        except Exception as exc:  # llama.cpp reports a bad file as a ValueError/RuntimeError
            raise NasforgeError(f"--llm-local: {path} did not load as a GGUF model ({type(exc).__name__}: {exc})") from None
        self._format = {"type": "json_object"} if grammar == "json" else None  # llama-cpp-python's JSON grammar
        self.calls: list[dict[str, float]] = []  # per call: seconds, completion tokens

    def scrub(self, text: str) -> str:
        return text  # no key in process

    def chat(self, messages: Sequence[Mapping[str, str]], schema: dict[str, Any], name: str = "genome") -> str:
        deadline = time.monotonic() + self.timeout
        start, parts, tokens = time.perf_counter(), [], 0
        try:  # streamed, so the deadline can stop decoding between tokens
            for chunk in self._llm.create_chat_completion(
                    messages=[dict(m) for m in messages], temperature=self.temperature, top_k=self.top_k,
                    max_tokens=self.max_tokens, response_format=self._format, stream=True):
                parts.append(chunk["choices"][0].get("delta", {}).get("content") or "")
                tokens += 1
                if time.monotonic() > deadline:
                    break
        except Exception as exc:  # e.g. the prompt outgrew n_ctx
            raise LLMError(f"local model {self.model}: {type(exc).__name__}: {exc}") from None
        self.calls.append({"seconds": time.perf_counter() - start, "tokens": float(tokens)})
        return "".join(parts)


__all__ = ["LocalChatClient", "GRAMMARS"]
