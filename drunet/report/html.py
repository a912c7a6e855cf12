"""The report page: one self-contained HTML file (inline CSS and JS, images as data URIs).

Every piece of user text (file, class and model names, paths, the config) goes through
:func:`esc`. The per-image table sorts by any column (click a header) and filters by name; the
page also reads ``#sort=KEY`` (ascending) or ``#sort=-KEY`` (descending) and ``filter=TEXT``
from the URL fragment on load (``report.html#sort=dice&filter=cell``), so a sorted view is a
link — and a headless browser can check the sorting. After load a script counts the images that
decoded and writes the result into ``#image-check`` (``data-ok`` / ``data-total``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drunet.report.figures import data_uri

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;
color:#222}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#ddd}table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 8px;border-bottom:1px solid
#eee;text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
table.sortable th{cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}.meta{color:#555}.cases{display:flex;
flex-wrap:wrap;gap:14px}figure{margin:0}figure img{display:block;image-rendering:pixelated}
.panels{display:flex;gap:4px}.panels img{width:180px;height:auto}.strip img{height:80px;
width:auto}.case{border:1px solid #ddd;padding:6px}.case:target{outline:3px solid #e69f00}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:-1px}
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:420px}.bad{color:#b00}
#filter{margin:6px 0;padding:3px 6px;width:260px}.gallery{display:flex;flex-wrap:wrap;gap:8px}
"""

SCRIPT = """
function cellValue(row, col, text) {
  const v = row.cells[col].dataset.v;
  if (text) return v;
  return v === "" || v === undefined ? Infinity : parseFloat(v);
}
function sortTable(table, key, descending) {
  const heads = Array.from(table.tHead.rows[0].cells);
  const col = heads.findIndex(th => th.dataset.key === key);
  if (col < 0) return false;
  const text = heads[col].dataset.type === "text";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, col, text), y = cellValue(b, col, text);
    const order = text ? x.localeCompare(y) : (x < y ? -1 : x > y ? 1 : 0);
    return descending ? -order : order;
  });
  rows.forEach(r => body.appendChild(r));
  heads.forEach(th => th.removeAttribute("aria-sort"));
  heads[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
  return true;
}
function filterTable(table, text) {
  const needle = text.toLowerCase();
  for (const row of table.tBodies[0].rows) {
    row.style.display = row.dataset.name.toLowerCase().includes(needle) ? "" : "none";
  }
}
function setUp() {
  for (const table of document.querySelectorAll("table.sortable")) {
    for (const th of table.tHead.rows[0].cells) {
      th.addEventListener("click", () => {
        const descending = th.getAttribute("aria-sort") === "ascending";
        sortTable(table, th.dataset.key, descending);
        const hash = "#sort=" + (descending ? "-" : "") + th.dataset.key;
        history.replaceState(null, "", hash);  // the sorted view is a link
      });
    }
  }
  const table = document.getElementById("cases");
  const input = document.getElementById("filter");
  if (table && input) input.addEventListener("input", () => filterTable(table, input.value));
  const params = new URLSearchParams(location.hash.slice(1));
  if (table && params.has("sort")) {
    const key = params.get("sort");
    sortTable(table, key.replace(/^-/, ""), key.startsWith("-"));
  }
  if (table && params.has("filter")) {
    input.value = params.get("filter");
    filterTable(table, input.value);
  }
}
function checkImages() {
  const images = Array.from(document.images);
  const ok = images.filter(img => img.complete && img.naturalWidth > 0).length;
  const marker = document.getElementById("image-check");
  marker.dataset.ok = ok;
  marker.dataset.total = images.length;
  marker.textContent = ok + " of " + images.length + " images decoded";
}
setUp();
window.addEventListener("load", checkImages);
"""


def esc(value: object) -> str:
    """User text → HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def img(png: bytes, alt: str, css_class: str = "") -> str:
    attr = f' class="{css_class}"' if css_class else ""
    return f'<img{attr} src="{data_uri(png)}" alt="{esc(alt)}">'


def figure(png: bytes, caption: str) -> str:
    return f"<figure>{img(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def simple_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain table of text cells (escaped)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class Column:
    """A sortable column: ``key`` for ``#sort=KEY``, its title, and how values are shown."""

    key: str
    title: str
    digits: int = 4
    text: bool = False


def sortable_table(
    columns: Sequence[Column], rows: Iterable[tuple[str, str, Sequence[object]]]
) -> str:
    """The per-image table (``id="cases"``): rows are ``(name, anchor, values)``; the first
    column is the name, linking to ``#anchor``. Each cell keeps its raw value in ``data-v``."""
    head = "".join(
        f'<th data-key="{esc(c.key)}"{" data-type=text" if c.text else ""}>{esc(c.title)}</th>'
        for c in columns
    )
    lines = []
    for name, anchor, values in rows:
        cells = [f'<td data-v="{esc(name)}"><a href="#{esc(anchor)}">{esc(name)}</a></td>']
        for column, value in zip(columns[1:], values, strict=True):
            if column.text or not isinstance(value, int | float):
                cells.append(f'<td data-v="{esc(value)}">{esc(value)}</td>')
                continue
            raw = "" if isinstance(value, float) and math.isnan(value) else repr(value)
            shown = str(value) if isinstance(value, int) else number(value, column.digits)
            cells.append(f'<td data-v="{raw}">{shown}</td>')
        lines.append(f'<tr data-name="{esc(name)}">{"".join(cells)}</tr>')
    return (
        '<input id="filter" type="search" placeholder="filter by name">'
        f'<table id="cases" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(lines)}</tbody></table>"
    )


def legend(items: Sequence[tuple[str, tuple[int, int, int]]]) -> str:
    return "".join(
        f'<span class="swatch" style="background:rgb{colour}"></span>{esc(label)}'
        for label, colour in items
    )


def section(title: str, body: str, anchor: str = "") -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, meta: Sequence[str], sections: Sequence[str]) -> str:
    """The whole document; ``meta`` lines are user text (escaped here)."""
    lines = "".join(f"<div>{esc(line)}</div>" for line in meta)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{esc(title)}</h1><div class="meta">{lines}'
        '<div id="image-check" data-ok="" data-total=""></div></div>'
        f"{''.join(sections)}<script>{SCRIPT}</script></body></html>\n"
    )
