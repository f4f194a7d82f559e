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

PREVIEW_CHARS = 3000
EXPAND_CHARS = 200_000  # each "show more" adds this much: a whole 20 MB output would stall layout
STEP_WINDOW = 60  # steps rendered at first; "show more" adds as many


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
            f'<span style="white-space:pre-wrap">{escape(s[:limit])}</span>'
            f' <a href="more:{key}">… show {min(more, EXPAND_CHARS):,} of {more:,} more characters</a>{less}'
        )
    tail = f' <a href="less:{key}">show less</a>' if len(s) > PREVIEW_CHARS else ""
    return f'<span style="white-space:pre-wrap">{escape(s)}</span>{tail}'


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


def _card(inner: str, c: Colors, bg: str | None = None, border: str | None = None) -> str:
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" style="margin:4px 0 8px 0;'
        f'background:{bg or c.card};border:1px solid {border or c.border}"><tr><td>{inner}</td></tr></table>'
    )


def render_trace(trace: dict[str, Any], state: ViewState, c: Colors) -> str:
    msgs = trace["messages"]
    last_assistant = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=-1)
    out = [f'<div style="color:{c.text};font-size:10.5pt">']
    shown = msgs[: state.steps_shown]
    for i, m in enumerate(shown):
        out.append(_message(i, m, i == last_assistant, state, c))
    if len(msgs) > len(shown):
        rest = len(msgs) - len(shown)
        out.append(
            f'<p><a href="more:steps">Show the next {min(rest, STEP_WINDOW)} of {rest} remaining steps</a></p>'
        )
    if trace.get("final_output") and last_assistant == -1:
        out.append(
            _card(
                f"<b>Final answer</b><br>{_text(trace['final_output'], 'final', state)}",
                c,
                c.final_bg,
                c.final,
            )
        )
    out.append("</div>")
    return "".join(out)


ROLE_LABEL = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def _message(i: int, m: dict[str, Any], is_final: bool, state: ViewState, c: Colors) -> str:
    role = m["role"]
    label = f'<a name="step-{i}"></a><span style="color:{c.muted};font-size:9pt">#{i} {ROLE_LABEL.get(role, escape(role))}'
    if m.get("name"):
        label += f" · {escape(str(m['name']))}"
    label += "</span><br>"
    blocks = []
    for pi, p in enumerate(m["parts"]):
        key = f"{i}.{pi}"
        kind = p["type"]
        if kind == "text":
            if role == "system":
                blocks.append(
                    _collapsible(
                        "System prompt", _text(p["text"], key, state), f"sys{key}", state, c
                    )
                )
            elif is_final:
                blocks.append(
                    _card(
                        f'<b style="color:{c.final}">Final answer</b><br>{_text(p["text"], key, state)}',
                        c,
                        c.final_bg,
                        c.final,
                    )
                )
            else:
                blocks.append(f"<div>{_text(p['text'], key, state)}</div>")
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
            args = _pretty(p["arguments"])
            warn = (
                f' <span style="color:{c.error}">(arguments are not valid JSON)</span>'
                if p.get("arguments_invalid")
                else ""
            )
            body = f'<span style="font-family:monospace;white-space:pre-wrap">{_text(args, key, state)}</span>'
            head = f'<b>→ {escape(p["name"])}</b> <span style="color:{c.muted};font-size:9pt">{escape(p["id"])}</span>{warn}'
            blocks.append(
                _card(
                    head
                    + "<br>"
                    + _collapsible("arguments", body, f"args{key}", state, c, open_default=True),
                    c,
                )
            )
        elif kind == "tool_result":
            err = p.get("is_error")
            head = f'<b style="color:{c.error if err else c.text}">← {"error" if err else "result"}</b> <span style="color:{c.muted};font-size:9pt">{escape(p["call_id"])}</span>'
            body = f'<span style="font-family:monospace">{_text(p["content"], key, state)}</span>'
            blocks.append(
                _card(
                    head + "<br>" + body, c, c.error_bg if err else None, c.error if err else None
                )
            )
    if not blocks:
        blocks.append(f'<i style="color:{c.muted}">(empty)</i>')
    return f'<div style="margin-top:10px">{label}{"".join(blocks)}</div>'


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
