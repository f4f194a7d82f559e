"""A small, safe Markdown subset for trace text (policies, answers) as Qt rich text.

Safe by construction: every piece of source text is escaped (and control/bidi characters made
visible) before any tag is added, and only a fixed set of tags is ever emitted (headings,
paragraphs, lists, block quotes, code, bold, italic). Links are shown as their text followed by
the address as plain text, never as anchors; images are shown as "[image: alt]" and never
loaded. Nothing a trace contains can become active content.

Covered: ATX headings, paragraphs, "-"/"*"/"+" and "1." lists (one level of nesting by
indentation), "> " quotes, fenced code blocks, inline code, **bold**, __bold__, *italic*,
_italic_, [text](url), ![alt](src), and pipe tables (shown as preformatted text).
"""

from __future__ import annotations

import re
from html import escape

from app.traces.display import printable

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBER = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE = re.compile(r"^\s*\|.*\|\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")

_CODE_SPAN = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]*)[^)]*\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")

HEADING_SIZES = {1: "13pt", 2: "12pt", 3: "11pt", 4: "10.5pt", 5: "10.5pt", 6: "10.5pt"}


def esc(text: str) -> str:
    """Escaped, with control and bidi characters made visible (they would reorder the view)."""
    return escape(printable(text))


def inline(text: str, muted: str = "#6a7078") -> str:
    """One line of Markdown inline syntax as safe rich text."""
    out = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_inline_plain(text[pos : m.start()], muted))
        out.append(f'<code style="font-family:monospace">{esc(m.group(1))}</code>')
        pos = m.end()
    out.append(_inline_plain(text[pos:], muted))
    return "".join(out)


def _inline_plain(text: str, muted: str) -> str:
    s = esc(text)  # escaping leaves * _ [ ] ( ) ! alone, so the patterns still apply
    s = _IMAGE.sub(lambda m: f'<span style="color:{muted}">[image: {m.group(1)}]</span>', s)
    s = _LINK.sub(
        lambda m: f'<u>{m.group(1)}</u> <span style="color:{muted}">({m.group(2)})</span>', s
    )
    s = _BOLD.sub(r"<b>\2</b>", s)
    return _ITALIC.sub(r"<i>\2</i>", s)


def render_markdown(text: str, muted: str = "#6a7078") -> str:
    """`text` as safe rich text (see the module docstring for what is covered)."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    lists: list[str] = []  # open list tags, innermost last
    i = 0

    def flush_para() -> None:
        if para:
            out.append(f'<p style="margin:4px 0">{" ".join(inline(p, muted) for p in para)}</p>')
            para.clear()

    def close_lists(depth: int = 0) -> None:
        while len(lists) > depth:
            out.append(f"</{lists.pop()}>")

    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            flush_para()
            close_lists()
            fence = _FENCE.match(line).group(1)
            body = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(fence):
                body.append(lines[i])
                i += 1
            out.append(_pre("\n".join(body)))
            i += 1
            continue
        if _TABLE.match(line):
            flush_para()
            close_lists()
            rows = []
            while i < len(lines) and _TABLE.match(lines[i]):
                rows.append(lines[i].strip())
                i += 1
            out.append(_pre("\n".join(rows)))
            continue
        if not line.strip():
            flush_para()
            close_lists()
            i += 1
            continue
        if m := _HEADING.match(line):
            flush_para()
            close_lists()
            level = len(m.group(1))
            size = HEADING_SIZES[level]
            out.append(
                f'<p style="margin:8px 0 4px 0;font-size:{size}"><b>{inline(m.group(2), muted)}</b></p>'
            )
        elif _RULE.match(line):
            flush_para()
            close_lists()
            out.append("<hr>")
        elif m := _QUOTE.match(line):
            flush_para()
            close_lists()
            quoted = [m.group(1)]
            while i + 1 < len(lines) and (q := _QUOTE.match(lines[i + 1])):
                quoted.append(q.group(1))
                i += 1
            out.append(
                f'<blockquote style="color:{muted};margin:4px 0 4px 12px">'
                f"{'<br>'.join(inline(q, muted) for q in quoted)}</blockquote>"
            )
        elif (m := _BULLET.match(line)) or (m := _NUMBER.match(line)):
            flush_para()
            tag = "ul" if m.re is _BULLET else "ol"
            depth = 1 + min(len(m.group(1).expandtabs(4)) // 2, 1)
            close_lists(depth)
            if len(lists) == depth and lists[-1] != tag:
                close_lists(depth - 1)
            while len(lists) < depth:
                start = f' start="{int(m.group(2))}"' if tag == "ol" else ""
                out.append(f'<{tag}{start} style="margin:2px 0">')
                lists.append(tag)
            item = [m.group(m.lastindex)]
            while i + 1 < len(lines) and _continues(lines[i + 1]):
                item.append(lines[i + 1].strip())
                i += 1
            out.append(f"<li>{inline(' '.join(item), muted)}</li>")
        else:
            if lists and line.startswith((" ", "\t")):
                out.append(f"<li>{inline(line.strip(), muted)}</li>")
            else:
                close_lists()
                para.append(line)
        i += 1
    flush_para()
    close_lists()
    return "".join(out)


def _continues(line: str) -> bool:
    """A list item's wrapped continuation line (indented, not a new item or block)."""
    return (
        bool(line.strip())
        and line.startswith(("  ", "\t"))
        and not _BULLET.match(line)
        and not _NUMBER.match(line)
    )


def _pre(text: str) -> str:
    return f'<pre style="font-family:monospace;white-space:pre-wrap;margin:4px 0">{esc(text)}</pre>'
