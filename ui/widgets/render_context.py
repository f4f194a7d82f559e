"""What sits beside the trace: the policy (system prompt), the tool schemas, and the task box
(task, outcome, the benchmark's expected actions) above the rubric. Safe rich text, as in
ui.widgets.render."""

from __future__ import annotations

import json
from typing import Any

from app.traces.outline import cut_at_word
from ui.widgets.markdown import render_markdown
from ui.widgets.render import MARKDOWN_CHARS, Colors, esc


def system_prompt(trace: dict[str, Any]) -> str:
    return "\n\n".join(
        p["text"]
        for m in trace["messages"]
        if m["role"] == "system"
        for p in m["parts"]
        if p["type"] == "text"
    )


def render_policy(trace: dict[str, Any], c: Colors) -> str:
    text = system_prompt(trace)
    if not text:
        return f'<i style="color:{c.muted}">This trace has no system prompt.</i>'
    if len(text) > MARKDOWN_CHARS * 4:
        return f'<span style="white-space:pre-wrap">{esc(text)}</span>'
    return f'<div style="color:{c.text}">{render_markdown(text, c.muted)}</div>'


def _param_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    kind = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        inner = schema["items"]
        kind = f"array of {inner.get('type', 'any')}"
        if isinstance(inner.get("properties"), dict):
            kind += " {" + ", ".join(inner["properties"]) + "}"
    if "enum" in schema:
        kind += " (" + " | ".join(str(v) for v in schema["enum"]) + ")"
    return kind


def render_tools(trace: dict[str, Any], c: Colors) -> str:
    tools = trace.get("tools") or []
    if not tools:
        return f'<i style="color:{c.muted}">This trace carries no tool schemas.</i>'
    out = [f'<div style="color:{c.text}">']
    for t in tools:
        params = t.get("parameters") or {}
        props = params.get("properties") or {}
        required = set(params.get("required") or [])
        out.append(
            f'<p style="margin:8px 0 2px 0"><b style="font-family:monospace">{esc(t["name"])}</b>'
            f'<br><span style="color:{c.muted}">{esc(t.get("description") or "")}</span></p>'
        )
        if props:
            out.append('<table cellpadding="1" style="margin-left:8px">')
            for name, sub in props.items():
                sub = sub if isinstance(sub, dict) else {}
                req = "" if name in required else f' <span style="color:{c.muted}">optional</span>'
                desc = f" — {esc(sub['description'])}" if sub.get("description") else ""
                out.append(
                    f'<tr><td style="font-family:monospace">{esc(name)}</td>'
                    f'<td style="color:{c.muted}">{esc(_param_type(sub))}{req}{desc}</td></tr>'
                )
            out.append("</table>")
    out.append("</div>")
    return "".join(out)


TASK_CHARS = 700


def _call_text(action: dict[str, Any], limit: int = 160) -> str:
    args = action.get("arguments")
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
    else:
        inner = json.dumps(args, ensure_ascii=False) if args is not None else ""
    return cut_at_word(f"{action.get('name', '?')}({inner})", limit)


def render_task_box(trace: dict[str, Any] | None, c: Colors) -> str:
    """The task, the outcome and the benchmark's expected actions: always beside the rubric."""
    if trace is None:
        return f'<i style="color:{c.muted}">No trace selected.</i>'
    task = " ".join((trace.get("task") or "").split())
    out = [f'<div style="color:{c.text}">']
    out.append(
        f'<b>Task</b> <span style="color:{c.muted}">#{trace["id"]} · {trace["n_messages"]} steps · '
        f"{trace['n_tool_calls']} tool calls</span><br>{esc(cut_at_word(task, TASK_CHARS)) or '—'}"
    )
    outcome, label = trace.get("outcome"), trace.get("outcome_label")
    shown = "—" if outcome is None else f"{outcome:g}"
    color = c.muted if outcome is None else (c.final if outcome >= 0.5 else c.error)
    src = trace.get("outcome_source")
    out.append(
        f'<br><b>Outcome</b> <span style="color:{color};font-weight:bold">{esc(shown)}'
        f"{' (' + esc(label) + ')' if label else ''}</span>"
        + (f' <span style="color:{c.muted}">from {esc(src)}</span>' if src else "")
    )
    ref = (trace.get("metadata") or {}).get("reference")
    if isinstance(ref, dict):
        actions = ref.get("expected_actions") or []
        if actions:
            out.append(
                f"<br><b>Expected actions</b> ({len(actions)}, from the benchmark)<ol style='margin:0'>"
            )
            for a in actions[:30]:
                if isinstance(a, dict):
                    out.append(f'<li style="font-family:monospace">{esc(_call_text(a))}</li>')
            out.append("</ol>")
        info = ref.get("reward_info")
        if isinstance(info, dict) and info:
            text = json.dumps(info, ensure_ascii=False)
            out.append(
                f'<span style="color:{c.muted}">Reward info: {esc(cut_at_word(text, 300))}</span>'
            )
    out.append("</div>")
    return "".join(out)
