"""Settings of the LEMONADE expert strategy (config section ``strategy.expert``).

The API key is never a setting: only the name of the environment variable that holds it,
so it is not stored with the run, shown by ``nasforge show`` or written to any log.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...flags import flag
from ..base import StrategySettings
from .rules import Thresholds


class ExpertSettings(StrategySettings):
    name: Literal["expert"] = "expert"
    designer: Literal["rules", "llm"] = Field(
        default="rules", description="who turns instructions into the next genome: the offline rules or an LLM",
        json_schema_extra=flag("--designer"))
    llm_url: str | None = Field(
        default=None, json_schema_extra=flag("--llm-url"),
        description="base URL of an OpenAI-compatible API, e.g. http://localhost:11434/v1 "
                    "(requests go to {url}/chat/completions)")
    llm_model: str | None = Field(default=None, max_length=200, json_schema_extra=flag("--llm-model"),
                                  description="model name sent to the endpoint")
    llm_local: str | None = Field(
        default=None, json_schema_extra=flag("--llm-local"),
        description="a GGUF model file run in this process by llama-cpp-python instead of an endpoint "
                    "(pip install 'nasforge[local-llm]')")
    llm_grammar: Literal["schema", "json", "none"] = Field(
        default="schema", json_schema_extra=flag("--llm-grammar"),
        description="--llm-local: constrain decoding to the genome's JSON Schema, to any JSON text, or sample "
                    "freely (validation and repair catch the rest)")
    llm_max_tokens: int = Field(default=768, ge=16, le=32768, description="--llm-local: most tokens per reply")
    llm_key_env: str = Field(default="NASFORGE_LLM_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             json_schema_extra=flag("--llm-key-env"),
                             description="environment variable holding the API key (unset: none is sent)")
    llm_timeout: float = Field(default=60.0, gt=0, le=3600, json_schema_extra=flag("--llm-timeout"),
                               description="seconds per request")
    llm_retries: int = Field(default=2, ge=0, le=10,
                             description="retries of a request after a timeout, 429, 5xx or connection error")
    llm_temperature: float = Field(default=0.5, ge=0, le=2, description="sampling temperature (the paper used 0.5)")
    repair_attempts: int = Field(default=2, ge=0, le=10,
                                 description="K: times an invalid reply is sent back with its error before the "
                                             "iteration falls back to the rule designer")  # fmt: skip
    enforce: bool = Field(default=False, json_schema_extra=flag("--enforce", const=True),
                          description="apply instructions the LLM ignored with the rule designer")
    rulebook: Literal["adaptive", "paper"] = Field(
        default="adaptive", json_schema_extra=flag("--rulebook"),
        description="adaptive: priorities from the run's goal, instructions that did not help lose priority, no "
                    "growth over a limit, overfitting judged against the run's own gaps, edits from the best network; "
                    "paper: Table 2's constants and Algorithm 1 as published")
    start_from: Literal["last", "best"] | None = Field(
        default=None, description="edit the last evaluated genome (the paper's Algorithm 1) or the best so far "
                                  "(default: best with the adaptive rule book, last with the paper's)")

    starts: int | None = Field(
        default=None, ge=1, le=1000, json_schema_extra=flag("--starts"),
        description="networks made before the rules take over (default with the adaptive rule book and the rules "
                    "designer: a quarter of the budget, 1 to 8, random samples; otherwise 1: --initial's, or the "
                    "LLM's first design)")
    max_instructions: int | None = Field(
        default=None, ge=1, le=15, description="most instructions applied per edit, strongest first (default: 2 with "
                                               "the adaptive rule book, all with the paper's)")

    def n_starts(self, budget: int) -> int:
        """How many networks come before the rules: a quarter of the budget, 1 to 8, with the
        adaptive rule book and the rules designer (as evolution's first population), else 1."""
        if self.starts:
            return self.starts
        return min(8, max(1, budget // 4)) if self.rulebook == "adaptive" and self.designer == "rules" else 1

    @property
    def edits(self) -> int:
        return self.max_instructions or (2 if self.rulebook == "adaptive" else 15)

    @property
    def base(self) -> str:
        """Which told genome the next edit starts from."""
        return self.start_from or ("best" if self.rulebook == "adaptive" else "last")
    initial: Literal["small", "sample"] = Field(
        default="small", description="first genome: a small fixed net (the paper's simple CNN) or a random one")
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @field_validator("llm_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        """Only http(s): the URL is handed to urllib, which would also open file:// and ftp://."""
        if url is None:
            return None
        url = url.strip().rstrip("/")
        if not url.lower().startswith(("http://", "https://")) or any(c.isspace() for c in url):
            raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
        return url

    @model_validator(mode="after")
    def _llm_needs_endpoint(self) -> ExpertSettings:
        if self.designer == "llm" and not (self.llm_url and self.llm_model) and not self.llm_local:
            raise ValueError("designer 'llm' needs llm_url and llm_model (--llm-url, --llm-model) or a model file "
                             "(--llm-local PATH.gguf)")
        if self.llm_local and self.llm_url:
            raise ValueError("give either llm_url (an endpoint) or llm_local (a model file), not both")
        return self
