"""Word-level diffs of corrections as safe rich text (app.review.word_diff computes them)."""

from __future__ import annotations

from typing import Any

from app.traces.outline import cut_at_word
from ui.widgets.render import Colors, card, esc


def render_segments(segments: list[tuple[str, str]], c: Colors) -> str:
    out = []
    for op, text in segments:
        body = esc(text)
        if op == "insert":
            out.append(
                f'<span style="background:{c.final_bg};color:{c.final};font-weight:bold">{body}</span>'
            )
        elif op == "delete":
            out.append(
                f'<span style="background:{c.error_bg};color:{c.error};text-decoration:line-through">{body}</span>'
            )
        else:
            out.append(body)
    return f'<div style="font-family:monospace;white-space:pre-wrap">{"".join(out)}</div>'


def changes(segments: list[tuple[str, str]], limit: int = 5) -> list[str]:
    """The edits of a step in a few words: "30 → 34", "+ please confirm", "− cancel"."""
    out: list[str] = []
    i = 0
    while i < len(segments) and len(out) < limit:
        op, text = segments[i]
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        short = cut_at_word(" ".join(text.split()), 60)
        if op == "delete" and nxt and nxt[0] == "insert":
            out.append(f"{short} → {cut_at_word(' '.join(nxt[1].split()), 60)}")
            i += 1
        elif op == "delete":
            out.append(f"− {short}")
        elif op == "insert":
            out.append(f"+ {short}")
        i += 1
    return out


def _change_summary(segments: list[tuple[str, str]], c: Colors) -> str:
    found = changes(segments)
    if not found or len(segments) <= 2:  # a whole step in or out says it all
        return ""
    items = " · ".join(f"<b>{esc(x)}</b>" for x in found)
    return f'<p style="color:{c.muted};margin:0 0 2px 0">Changed: {items}</p>'


def render_word_diff(blocks: list[Any], c: Colors) -> str:
    """Blocks from app.review.word_diff.word_diff: each changed step in place, unchanged runs
    and the original's later steps as one muted line each."""
    if not any(b.is_edit for b in blocks):
        return f'<i style="color:{c.muted}">No changes yet.</i>'
    out = [f'<div style="color:{c.text}">']
    for b in blocks:
        if b.kind in ("unchanged", "after_end"):
            out.append(f'<p style="color:{c.muted};margin:4px 0">… {esc(b.title)}</p>')
            continue
        out.append(
            f'<p style="margin:8px 0 2px 0"><b>{esc(b.title)}</b></p>'
            + _change_summary(b.segments, c)
            + card(render_segments(b.segments, c), c)
        )
    out.append("</div>")
    return "".join(out)


def render_correction(
    original: list[dict[str, Any]],
    corrected_messages: list[dict[str, Any]] | None,
    corrected_output: str | None,
    c: Colors,
) -> str:
    """One judge's correction as a word diff: of the trajectory when there is one, else of the
    written answer against the agent's final answer (a rejection with an answer)."""
    from app.review.corrections import final_answer
    from app.review.word_diff import word_diff, word_segments

    if corrected_messages:
        return render_word_diff(word_diff(original, corrected_messages), c)
    agent = final_answer(original)
    return (
        f"<p style=\"color:{c.muted};margin:2px 0\">The agent's final answer against the judge's</p>"
        + card(render_segments(word_segments(agent, corrected_output or ""), c), c)
    )
