"""Rebuild one conversation from the steps of a tracing tool (spans, observations, runs).

Each LLM step carries the whole history it was called with plus its output; tool steps carry
one call and its result. Walking the steps in order and adding only what is new yields the
conversation once, in order, with repeated turns (a user saying "continue" twice) kept.
"""

from __future__ import annotations

from typing import Any

from app.traces.model import canonical_json, message


def fingerprint(msg: dict[str, Any]) -> bytes:
    parts = []
    for p in msg["parts"]:
        if p["type"] == "tool_call":
            parts.append(("call", p["name"], p["arguments"]))
        elif p["type"] == "tool_result":
            parts.append(("result", p["content"].strip()))
        else:
            parts.append((p["type"], p.get("text", "").strip()))
    return canonical_json([msg["role"], parts])


class ConversationBuilder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._prints: list[bytes] = []
        self._call_ids: set[str] = set()
        self._result_ids: set[str] = set()

    def _append(self, msg: dict[str, Any]) -> None:
        if not msg["parts"]:
            return
        for p in msg["parts"]:
            if p["type"] == "tool_call" and p["id"]:
                self._call_ids.add(p["id"])
            elif p["type"] == "tool_result" and p["call_id"]:
                self._result_ids.add(p["call_id"])
        self.messages.append(msg)
        self._prints.append(fingerprint(msg))

    def _resolve_by_name(self, msg: dict[str, Any]) -> None:
        """Results that name their call only by tool name (Gemini) take the call's id."""
        for p in msg["parts"]:
            if p["type"] != "tool_result" or not p["call_id"] or p["call_id"] in self._call_ids:
                continue
            calls = [
                c
                for m in self.messages
                for c in m["parts"]
                if c["type"] == "tool_call" and c["name"] == p["call_id"] and c["id"]
            ]
            waiting = [c for c in calls if c["id"] not in self._result_ids]
            if waiting or calls:
                p["call_id"] = (waiting or calls[-1:])[0]["id"]

    def add_history(self, history: list[dict[str, Any]]) -> None:
        """Add the messages of an LLM call's input that the conversation lacks."""
        cursor = 0
        for msg in history:
            self._resolve_by_name(msg)
            fp = fingerprint(msg)
            try:
                cursor = self._prints.index(fp, cursor) + 1
                continue
            except ValueError:
                pass
            if self._already_linked(msg):
                continue
            self._append(msg)
            cursor = len(self._prints)

    def add_output(self, output: list[dict[str, Any]]) -> None:
        """Add an LLM call's output unless an identical message ends the conversation."""
        for msg in output:
            self._resolve_by_name(msg)
            fp = fingerprint(msg)
            if fp in self._prints or self._already_linked(msg):
                continue
            self._append(msg)

    def _already_linked(self, msg: dict[str, Any]) -> bool:
        """A tool call or result already present (by id) is not added twice."""
        ids = [p["id"] for p in msg["parts"] if p["type"] == "tool_call" and p["id"]]
        ids += [p["call_id"] for p in msg["parts"] if p["type"] == "tool_result" and p["call_id"]]
        if not ids or len(ids) != len(msg["parts"]):
            return False
        return all(i in self._call_ids or i in self._result_ids for i in ids) and all(
            (p["type"] == "tool_call" and p["id"] in self._call_ids)
            or (p["type"] == "tool_result" and p["call_id"] in self._result_ids)
            for p in msg["parts"]
        )

    def _adopt_pending_call(self, name: str, call_id: str) -> str:
        """Match a tool step to the oldest call of `name` still waiting for its result.

        A call that the LLM step logged without an id takes the tool step's id.
        """
        for msg in self.messages:
            for p in msg["parts"]:
                if p["type"] != "tool_call" or p["name"] != name or p["id"] in self._result_ids:
                    continue
                if not p["id"]:
                    p["id"] = call_id or f"call_{len(self._call_ids) + 1}"
                    self._call_ids.add(p["id"])
                    return p["id"]
                if not call_id:
                    return p["id"]
        return call_id

    def finish(self) -> list[dict[str, Any]]:
        """The conversation, with every tool call given an id and results linked to calls."""
        from app.traces.importers.messages import link_tool_results

        return link_tool_results(self.messages)

    def add_tool_step(
        self, call_id: str, name: str, arguments: Any, result: Any, is_error: bool
    ) -> None:
        """A tool execution step: its call (if no LLM step showed it) and its result."""
        from app.traces.importers.messages import tool_call_part, tool_result_part

        if not call_id or call_id not in self._call_ids:
            call_id = self._adopt_pending_call(name, call_id)
        if not call_id or call_id not in self._call_ids:
            part = tool_call_part(call_id, name, arguments, "tool")
            if not part["id"]:
                part["id"] = f"call_{len(self._call_ids) + 1}"
            call_id = part["id"]
            self._append(message("assistant", part))
        if call_id not in self._result_ids and result is not None:
            self._append(message("tool", tool_result_part(call_id, result, is_error)))
