"""The page template: one self-contained HTML file (inline CSS, inline SVG, a few lines of JS).

Everything that came from a user, a dataset or a model (column names, run names, errors, an
LLM designer's instructions) passes through :func:`html.escape` here or in the caller. A
Content-Security-Policy allows no network fetches at all and only the page's own script (by
its hash), so even a string that slipped through unescaped could not run or phone home.
"""
from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#212121;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cfd8dc}nav{padding:8px 24px;background:#eceff1;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#1565c0;text-decoration:none;font-size:14px}
main{padding:8px 24px 40px}section{scroll-margin-top:44px;background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:16px 0;padding:8px 16px 16px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}.note{color:#616161;font-size:13px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #e0e0e0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}table.sortable th:hover{background:#e3f2fd}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.best td{background:#fff8e1}tr.failed td{color:#9e9e9e}td.error{color:#c62828;white-space:pre-wrap;max-width:420px}
td.text{white-space:pre-wrap;max-width:520px}.scroll{overflow-x:auto}figure{margin:8px 0}
svg{max-width:100%;height:auto}svg.arch{max-width:none}pre{background:#f5f5f5;padding:8px;overflow-x:auto;font-size:12px}
.settings{columns:2 360px}.settings table{break-inside:avoid;margin-bottom:10px;width:100%}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px}
"""

# Sorting on header click; a location hash "#sort=TABLE.KEY[.desc]" sorts on load, so a sorted
# view can be linked (and a headless browser can exercise this code without clicking).
JS = """
"use strict";
(function () {
  function value(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (!numeric) { return raw.toLowerCase(); }
    var n = parseFloat(raw);
    return isNaN(n) ? null : n;
  }
  function sortBy(table, col, descending) {
    var head = table.tHead.rows[0], th = head.cells[col];
    var numeric = th.getAttribute("data-type") === "num", body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[col], numeric), y = value(b.cells[col], numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -c : c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(head.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        sortBy(table, col, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  var match = /^#sort=([\\w-]+)\\.([\\w-]+)(\\.desc)?$/.exec(window.location.hash);
  if (match) {
    var table = document.getElementById(match[1]);
    if (table && table.tHead) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        if (th.getAttribute("data-key") === match[2]) { sortBy(table, col, Boolean(match[3])); }
      });
    }
  }
})();
"""


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    cls: str = ""


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


def table(table_id: str, columns: Sequence[Column], rows: Sequence[tuple[dict[str, str], Sequence[Any]]],
          sortable: bool = True) -> str:
    """A table whose numeric cells carry their exact value in ``data-sort`` for the sorter.

    ``rows`` are (row attributes, cell values); values are escaped here, never trusted.
    """
    head = "".join(
        f'<th scope="col" data-key="{escape(c.key)}"{" data-type=num" if c.numeric else ""}>{escape(c.label)}</th>'
        for c in columns)
    body = []
    for attrs, values in rows:
        attr = "".join(f' {escape(k)}="{escape(str(v))}"' for k, v in attrs.items())
        cells = []
        for column, v in zip(columns, values):
            classes = " ".join(filter(None, ["num" if column.numeric else "", column.cls]))
            klass = f' class="{classes}"' if classes else ""
            sort = f' data-sort="{escape(repr(float(v)))}"' if column.numeric and isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f"<td{klass}{sort}>{escape(fmt(v))}</td>")
        body.append(f"<tr{attr}>{''.join(cells)}</tr>")
    klass = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table id="{escape(table_id)}"{klass}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested config dicts as ("section.key", value) pairs, unset (None) values left out."""
    if isinstance(tree, dict):
        return [pair for k, v in tree.items() for pair in flatten(v, f"{prefix}{k}.")]
    return [] if tree is None else [(prefix.rstrip("."), tree)]


def _setting(value: Any) -> str:
    """A setting as the user would write it (0.003, not 0.0030; lists comma-separated)."""
    if isinstance(value, list):
        return ", ".join(_setting(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return fmt(value)


def settings_tables(config: dict[str, Any] | None, facts: Sequence[tuple[str, Any]]) -> str:
    """The run's facts, then one small table per config section (top-level values first)."""
    groups: dict[str, list[tuple[str, Any]]] = {"run": list(facts)}
    for key, value in flatten(config or {}):
        section, _, name = key.rpartition(".")
        groups.setdefault(section.split(".")[0] if section else "run", []).append((name if section else key, value))
    parts = []
    for section, pairs in groups.items():
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_setting(v))}</td></tr>" for k, v in pairs)
        parts.append(f"<table><caption>{escape(section)}</caption>{rows}</table>")
    return f'<div class="settings">{"".join(parts)}</div>'


def figure(kind: str, svg: str, caption: str = "") -> str:
    """A plot wrapped so pages and tests can find it: ``<figure data-plot=KIND>``."""
    cap = f"<figcaption class=\"note\">{escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="plot" data-plot="{escape(kind)}">{svg}{cap}</figure>'


def section(section_id: str, heading: str, body: str, note: str = "") -> tuple[str, str, str]:
    intro = f'<p class="note">{escape(note)}</p>' if note else ""
    return section_id, heading, intro + body


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are (id, heading, trusted HTML body) from :func:`section`."""
    digest = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    nav = "".join(f'<a href="#{escape(sid)}">{escape(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(f'<section id="{escape(sid)}"><h2>{escape(heading)}</h2>{html}</section>' for sid, heading, html in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header><nav>{nav}</nav>"
            f"<main>{body}</main><script>{JS}</script></body></html>\n")
