"""Trace content as safe rich text for QTextBrowser.

Every string from a trace goes through html.escape: content is shown as text, never run as
HTML, and the browser never loads a resource (see TraceBrowser.loadResource). Long parts are
cut to a preview with a link to show them whole; long traces are shown a window of steps at a
time, so a 500-step trace with megabyte tool outputs stays responsive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Any

from app.traces.outline import (
    decode_json,
    is_error_result,
    json_summary,
    last_assistant,
    pretty_json,
    tool_names,
)
from ui.widgets.markdown import esc, render_markdown

PREVIEW_CHARS = 3000
EXPAND_CHARS = 200_000  # each "show more" adds this much: a whole 20 MB output would stall layout
STEP_WINDOW = 60  # steps rendered at first; "show more" adds as many
MARKDOWN_CHARS = 50_000  # longer prose is shown as plain text (cut into previews)
OPEN_RESULT_LINES = 30  # JSON results up to this many lines start open, longer ones collapsed


@dataclass
class Colors:
    text: str = "#1d1f23"
    muted: str = "#6a7078"
    base: str = "#ffffff"
    card: str = "#f4f6f8"
    border: str = "#d9dde3"
    accent: str = "#2f6fdb"
    error_bg: str = "#fde8e8"
    error: str = "#b42318"
    final_bg: str = "#e9f5ec"
    final: str = "#1f7a3a"
    mark: str = "#ffe58f"


@dataclass
class ViewState:
    """What the judge has opened: toggled sections and how many steps are shown."""

    expanded: set[str] = field(default_factory=set)
    shown_chars: dict[str, int] = field(default_factory=dict)
    steps_shown: int = STEP_WINDOW
    labels: dict[int, dict[str, Any]] = field(default_factory=dict)  # step -> the judge's label
    decoded: dict[str, tuple[bool, str, str, bool]] = field(default_factory=dict)

    def show_more(self, key: str) -> None:
        self.shown_chars[key] = self.shown_chars.get(key, PREVIEW_CHARS) + EXPAND_CHARS

    def show_less(self, key: str) -> None:
        self.shown_chars.pop(key, None)


def _text(s: str, key: str, state: ViewState) -> str:
    limit = state.shown_chars.get(key, PREVIEW_CHARS)
    if len(s) > limit:
        more = len(s) - limit
        less = f' · <a href="less:{key}">show less</a>' if limit > PREVIEW_CHARS else ""
        return (
            f'<span style="white-space:pre-wrap">{esc(s[:limit])}</span>'
            f' <a href="more:{key}">… show {min(more, EXPAND_CHARS):,} of {more:,} more characters</a>{less}'
        )
    tail = f' <a href="less:{key}">show less</a>' if len(s) > PREVIEW_CHARS else ""
    return f'<span style="white-space:pre-wrap">{esc(s)}</span>{tail}'


def _markdown(s: str, key: str, state: ViewState, c: Colors) -> str:
    """Markdown (safe subset) for prose; very long text is cut like any other part."""
    limit = state.shown_chars.get(key, PREVIEW_CHARS)
    if len(s) <= limit and len(s) <= MARKDOWN_CHARS:
        return render_markdown(s, c.muted)
    return _text(s, key, state)


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _collapsible(
    title: str, body: str, key: str, state: ViewState, c: Colors, open_default: bool = False
) -> str:
    is_open = (key in state.expanded) != open_default
    arrow = "▾" if is_open else "▸"
    head = (
        f'<a href="toggle:{key}" style="color:{c.muted};text-decoration:none">{arrow} {title}</a>'
    )
    return head + (f"<div>{body}</div>" if is_open else "")


def card(inner: str, c: Colors, bg: str | None = None, border: str | None = None) -> str:
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" style="margin:4px 0 8px 0;'
        f'background:{bg or c.card};border:1px solid {border or c.border}"><tr><td>{inner}</td></tr></table>'
    )


def render_trace(trace: dict[str, Any], state: ViewState, c: Colors) -> str:
    msgs = trace["messages"]
    last = last_assistant(msgs)
    names = tool_names(msgs)
    out = [f'<div style="color:{c.text};font-size:10.5pt">']
    shown = msgs[: state.steps_shown]
    for i, m in enumerate(shown):
        out.append(_message(i, m, i == last, names, state, c))
    if len(msgs) > len(shown):
        rest = len(msgs) - len(shown)
        out.append(
            f'<p><a href="more:steps">Show the next {min(rest, STEP_WINDOW)} of {rest} remaining steps</a></p>'
        )
    if trace.get("final_output") and last == -1:
        out.append(
            card(
                f"<b>Final answer</b><br>{_text(trace['final_output'], 'final', state)}",
                c,
                c.final_bg,
                c.final,
            )
        )
    out.append("</div>")
    return "".join(out)


ROLE_LABEL = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
STEP_BADGE = {"good": "✓ good", "wrong": "✗ wrong", "first_error": "① first error"}


def _badge(label: dict[str, Any] | None, c: Colors) -> str:
    if not label:
        return ""
    good = label["label"] == "good"
    color = c.final if good else c.error
    text = STEP_BADGE.get(label["label"], label["label"])
    if label.get("reason"):
        text += f": {label['reason']}"
    return f' <span style="color:{color};font-weight:bold"> [{esc(text)}]</span>'


def _message(
    i: int,
    m: dict[str, Any],
    is_final: bool,
    names: dict[str, str],
    state: ViewState,
    c: Colors,
) -> str:
    role = m["role"]
    label = f'<a name="step-{i}"></a><span style="color:{c.muted};font-size:9pt">#{i} {ROLE_LABEL.get(role, esc(role))}'
    if m.get("name"):
        label += f" · {esc(str(m['name']))}"
    label += f"</span>{_badge(state.labels.get(i), c)}<br>"
    blocks = []
    for pi, p in enumerate(m["parts"]):
        key = f"{i}.{pi}"
        kind = p["type"]
        if kind == "text":
            if role == "system":
                blocks.append(
                    _collapsible(
                        "System prompt (the policy; also in the side pane)",
                        _markdown(p["text"], key, state, c),
                        f"sys{key}",
                        state,
                        c,
                    )
                )
            elif is_final:
                blocks.append(
                    card(
                        f'<b style="color:{c.final}">Final answer</b><br>{_markdown(p["text"], key, state, c)}',
                        c,
                        c.final_bg,
                        c.final,
                    )
                )
            else:
                blocks.append(f"<div>{_markdown(p['text'], key, state, c)}</div>")
        elif kind == "reasoning":
            blocks.append(
                _collapsible(
                    "Reasoning",
                    f'<i style="color:{c.muted}">{_text(p["text"], key, state)}</i>',
                    f"rsn{key}",
                    state,
                    c,
                )
            )
        elif kind == "tool_call":
            blocks.append(_tool_call(p, key, state, c))
        elif kind == "tool_result":
            blocks.append(_tool_result(p, names.get(p.get("call_id", "")), key, state, c))
    if not blocks:
        blocks.append(f'<i style="color:{c.muted}">(empty)</i>')
    return f'<div style="margin-top:10px">{label}{"".join(blocks)}</div>'


def _tool_call(p: dict[str, Any], key: str, state: ViewState, c: Colors) -> str:
    args = _pretty(p["arguments"])
    warn = (
        f' <span style="color:{c.error}">(arguments are not valid JSON)</span>'
        if p.get("arguments_invalid")
        else ""
    )
    body = (
        f'<span style="font-family:monospace;white-space:pre-wrap">{_text(args, key, state)}</span>'
    )
    head = f'<b>→ {esc(p["name"])}</b> <span style="color:{c.muted};font-size:9pt">{esc(p["id"])}</span>{warn}'
    return card(
        head + "<br>" + _collapsible("arguments", body, f"args{key}", state, c, open_default=True),
        c,
    )


def _decoded(content: str, key: str, state: ViewState) -> tuple[bool, str, str, bool]:
    """(is JSON, pretty text, summary, was JSON inside a string), cached per trace view."""
    hit = state.decoded.get(key)
    if hit is None:
        ok, value = decode_json(content)
        if ok:
            nested = isinstance(json.loads(content), str)
            hit = (True, pretty_json(value), json_summary(value), nested)
        else:
            hit = (False, content, "", False)
        state.decoded[key] = hit
    return hit


def _tool_result(p: dict[str, Any], name: str | None, key: str, state: ViewState, c: Colors) -> str:
    err = is_error_result(p)
    tool = esc(name or "tool")
    if err:
        head = (
            f'<span style="background:{c.error};color:{c.base};font-weight:bold">&nbsp;ERROR&nbsp;</span>'
            f' <b style="color:{c.error}">← {tool}</b>'
        )
    else:
        head = f"<b>← {tool}</b> result"
    head += f' <span style="color:{c.muted};font-size:9pt">{esc(p.get("call_id") or "")}</span>'
    is_json, pretty, summary, nested = _decoded(p["content"], key, state)
    if is_json:
        lines = pretty.count("\n") + 1
        note = " · decoded from a JSON string" if nested else ""
        body = f'<span style="font-family:monospace;white-space:pre-wrap">{_text(pretty, key, state)}</span>'
        title = f'{esc(summary)} <span style="font-size:9pt">({lines} lines{note})</span>'
        inner = (
            head
            + "<br>"
            + _collapsible(
                title, body, f"res{key}", state, c, open_default=lines <= OPEN_RESULT_LINES
            )
        )
    else:
        color = f"color:{c.error};" if err else ""
        inner = f'{head}<br><span style="font-family:monospace;{color}">{_text(p["content"], key, state)}</span>'
    return card(inner, c, c.error_bg if err else None, c.error if err else None)


def render_side_panel(trace: dict[str, Any], c: Colors) -> str:
    rows = [
        ("Trace", f"#{trace['id']}"),
        ("External id", trace.get("external_id") or "—"),
        ("Source", trace["source"]),
        ("Steps", str(trace["n_messages"])),
        ("Tool calls", str(trace["n_tool_calls"])),
    ]
    outcome = trace.get("outcome")
    label = trace.get("outcome_label")
    rows.append(
        ("Outcome", ("—" if outcome is None else f"{outcome:g}") + (f" ({label})" if label else ""))
    )
    if trace.get("outcome_source"):
        rows.append(("Outcome from", trace["outcome_source"]))
    html = [f'<table cellpadding="2" style="color:{c.text}">']
    html += [
        f'<tr><td style="color:{c.muted}">{escape(k)}</td><td>{escape(str(v))}</td></tr>'
        for k, v in rows
    ]
    html.append("</table>")
    if trace.get("scores"):
        html.append('<p style="margin-top:8px"><b>Automated scores</b></p><table cellpadding="2">')
        for s in trace["scores"]:
            value = s.get("value")
            shown = "—" if value is None else f"{value:g}"
            tip = escape(s.get("comment") or "")
            html.append(
                f'<tr><td style="color:{c.muted}">{escape(str(s.get("name")))}</td><td title="{tip}">{shown}</td></tr>'
            )
            if s.get("comment"):
                html.append(
                    f'<tr><td></td><td style="color:{c.muted};font-size:9pt">{escape(s["comment"][:400])}</td></tr>'
                )
        html.append("</table>")
    meta = trace.get("metadata") or {}
    if meta:
        html.append('<p style="margin-top:8px"><b>Metadata</b></p><table cellpadding="2">')
        for k, v in list(meta.items())[:40]:
            text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            html.append(
                f'<tr><td style="color:{c.muted}">{escape(str(k))}</td><td>{escape(text[:300])}</td></tr>'
            )
        html.append("</table>")
    if trace.get("tools"):
        names = ", ".join(t["name"] for t in trace["tools"])
        html.append(f'<p style="margin-top:8px"><b>Tools</b><br>{escape(names)}</p>')
    return "".join(html)


def render_diff(lines: list[str], c: Colors) -> str:
    out = ['<pre style="font-family:monospace;white-space:pre-wrap">']
    for line in lines:
        if line.startswith("+") and not line.startswith("+++"):
            out.append(
                f'<span style="background:{c.final_bg};color:{c.final}">{escape(line)}</span>\n'
            )
        elif line.startswith("-") and not line.startswith("---"):
            out.append(
                f'<span style="background:{c.error_bg};color:{c.error}">{escape(line)}</span>\n'
            )
        else:
            out.append(escape(line) + "\n")
    out.append("</pre>")
    return "".join(out) if lines else f'<i style="color:{c.muted}">No changes yet.</i>'
