"""The page: Jinja2 templates in ``templates/``, the stylesheet and script in ``static/``.

Autoescaping is on for every template, so anything that came from a user, a dataset or a model
(column names, run names, errors, an LLM designer's instructions) is escaped wherever it lands.
Only our own SVG (``plots.figure_svg``, ``drawing``) and the package's CSS/JS are ``Markup``.
The CSS and JS are inlined so a report stays one file, and a Content-Security-Policy allows no
network fetches at all and only the page's own script (by its hash), so even a string that
slipped through unescaped could not run or phone home.
"""
from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    cls: str = ""

    @property
    def classes(self) -> str:
        return " ".join(filter(None, ["num" if self.numeric else "", self.cls]))


@dataclass
class Table:
    """What ``sections/table.html.j2`` draws: ``rows`` are (row attributes, raw cell values);
    the template formats and escapes them."""

    id: str
    columns: Sequence[Column]
    rows: Sequence[tuple[dict[str, str], Sequence[Any]]]
    sortable: bool = True


@dataclass
class Section:
    """One ``<section>`` and its link in the navigation bar; ``partial`` names the template in
    ``templates/sections/`` that draws ``data``, ``note`` is an optional line above it."""

    id: str
    heading: str
    partial: str
    data: Any
    note: str = ""


def fmt(value: Any, digits: int = 4) -> str:
    """A cell's text: numbers rounded for reading (the sort key keeps the full value)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def sort_key(value: Any) -> str | None:
    """A numeric cell's exact value for the sorter's ``data-sort``; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return None


def setting(value: Any) -> str:
    """A setting as the user would write it (0.003, not 0.0030; lists comma-separated)."""
    if isinstance(value, list):
        return ", ".join(setting(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return fmt(value)


def flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested config dicts as ("section.key", value) pairs, unset (None) values left out."""
    if isinstance(tree, dict):
        return [pair for k, v in tree.items() for pair in flatten(v, f"{prefix}{k}.")]
    return [] if tree is None else [(prefix.rstrip("."), tree)]


def settings_groups(config: dict[str, Any] | None, facts: Sequence[tuple[str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    """The run's facts, then one group per config section (top-level values join the facts)."""
    groups: dict[str, list[tuple[str, Any]]] = {"run": list(facts)}
    for key, value in flatten(config or {}):
        section, _, name = key.rpartition(".")
        groups.setdefault(section.split(".")[0] if section else "run", []).append((name if section else key, value))
    return groups


@cache
def _static(name: str) -> Markup:
    # Markup: our own package file, written to sit inside <style>/<script> as it is (escaping
    # would break the CSS and JS, and change the script's hash the CSP names).
    return Markup((files(__package__) / "static" / name).read_text(encoding="utf-8"))


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader(__package__, "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(("html", "html.j2"), default_for_string=True, default=True),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, setting=setting, sort_key=sort_key)
    return env


def render(template: str, sections: Sequence[Section], **context: Any) -> str:
    """A whole page from ``template`` (which extends ``page.html.j2``), CSS and JS inlined."""
    css, js = _static("report.css"), _static("report.js")
    digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    return _environment().get_template(template).render(sections=sections, css=css, js=js, csp=csp, **context)
