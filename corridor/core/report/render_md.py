"""A :class:`~.layout.Layout` as Markdown (GitHub tables), for terminals and docs.

Owns: :func:`markdown`. Does not own what is said (``layout``). Pure.
"""

from __future__ import annotations

from corridor.core.report.layout import Block, Heading, Layout, Line, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> list[str]:
    numeric = t.numeric + (False,) * (len(t.headers) - len(t.numeric))
    out = ["| " + " | ".join(_cell(h) or " " for h in t.headers) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return [*out, ""]


def _block(block: Block, level: int) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * level + " " + block.text, ""]
    if isinstance(block, Line):
        text = f"**{block.text}**" if block.ok is False else block.text
        return [text, ""]
    return _table(block)


def markdown(layout: Layout) -> str:
    """The whole document, ending with one newline."""
    lines = [f"# {layout.title}", ""]
    for block in layout.intro:
        lines += _block(block, 3)
    for part in layout.parts:
        lines += [f"## {part.title}", ""]
        for block in part.blocks:
            lines += _block(block, 3)
    return "\n".join(lines).rstrip("\n") + "\n"
