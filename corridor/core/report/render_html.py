"""A :class:`~.layout.Layout` as ONE self-contained HTML page: inline CSS, no script, no
external reference of any kind, readable on screen and printed.

Owns: :func:`html_page`. Does not own what is said (``layout``). Pure.

Each corridor is a ``<section class="corridor" id="corridor-<name>"
data-corridor="<name>">`` whose ``<h2>`` is its name; printed, each corridor starts on a
new page, table headers repeat on every page and no row is split across pages.
"""

from __future__ import annotations

import re
from html import escape

from corridor.core.report.layout import Block, Heading, Layout, Line, Part, Table

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #fff; margin: 2rem auto; max-width: 72rem;
       padding: 0 1.5rem; }
h1 { font-size: 1.6rem; border-bottom: 3px solid #1f4e79; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; color: #1f4e79; margin-top: 2.2rem;
     border-bottom: 1px solid #c9d3de; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p { margin: .4rem 0; }
p.ok { color: #135f2b; font-weight: 600; }
p.bad { color: #a4161a; font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
th, td { border: 1px solid #c9d3de; padding: .25rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #e8eef5; }
tbody tr:nth-child(even) td { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  section.corridor { break-before: page; page-break-before: always; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  tbody tr:nth-child(even) td { background: none; }
  p.ok, p.bad { color: #000; }
}
"""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def _table(t: Table) -> str:
    numeric = t.numeric + (False,) * (len(t.headers) - len(t.numeric))

    def cls(i: int) -> str:
        return ' class="num"' if numeric[i] else ""

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(t.headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{escape(c)}</td>" for i, c in enumerate(row))
                   + "</tr>" for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h3>{escape(block.text)}</h3>"
    if isinstance(block, Line):
        cls = {True: ' class="ok"', False: ' class="bad"', None: ""}[block.ok]
        return f"<p{cls}>{escape(block.text)}</p>"
    return _table(block)


def _part(part: Part) -> str:
    body = "\n".join(_block(b) for b in part.blocks)
    if part.corridor is None:
        return f"<section>\n<h2>{escape(part.title)}</h2>\n{body}\n</section>"
    name = escape(part.corridor)
    return (f'<section class="corridor" id="corridor-{escape(_slug(part.corridor))}" '
            f'data-corridor="{name}">\n<h2>{escape(part.title)}</h2>\n{body}\n</section>')


def html_page(layout: Layout) -> str:
    """The whole page (UTF-8 text)."""
    intro = "\n".join(_block(b) for b in layout.intro)
    parts = "\n".join(_part(p) for p in layout.parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(layout.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{escape(layout.title)}</h1>\n{intro}\n{parts}\n</body>\n</html>\n")
