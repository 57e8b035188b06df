"""LEMONADE: an expert system that reads metrics and instructs a designer (rules or an LLM).

See docs/lemonade_rules.md for the rule table, the conflict pairs and how to point the
LLM designer at OpenAI, Ollama, vLLM or a llama.cpp server.
"""
from .compliance import check_compliance, compliance_summary
from .conflicts import resolve, resolve_conflicts
from .designer import RuleDesigner
from .llm import ChatClient, LLMDesigner, LLMError
from .rules import INSTRUCTIONS, Thresholds, fire_rules, instructions
from .settings import ExpertSettings
from .strategy import ExpertStrategy

__all__ = [
    "ExpertStrategy", "ExpertSettings", "Thresholds", "INSTRUCTIONS", "instructions", "fire_rules",
    "resolve", "resolve_conflicts", "RuleDesigner", "ChatClient", "LLMDesigner", "LLMError",
    "check_compliance", "compliance_summary",
]
