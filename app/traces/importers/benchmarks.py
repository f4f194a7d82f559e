"""Benchmark dumps with a shape of their own: SWE-agent, mini-SWE-agent, ToolBench, tau-bench,
AgentBench.

Each keeps the agent's messages somewhere different and its outcome under its own name; the
benchmark's ground truth (tau-bench's expected actions, a grader's target) goes to
`metadata["reference"]` so that a judge can check the agent against it.
"""

from __future__ import annotations

from typing import Any

from app.traces.importers.conversations import (
    find_id,
    longest_of_prefixes,
    normalize_outcome,
    normalize_tools,
)
from app.traces.importers.messages import (
    RecordError,
    normalize_messages,
    to_text,
    type_name,
)
from app.traces.model import TraceRecord, message, text_part

# ---------------------------------------------------------------------------------------------
# Detection


def _dicts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value[:3])


def is_swe_agent(value: Any) -> bool:
    """SWE-agent `.traj`: `trajectory` steps (action/observation/thought) beside `history`."""
    if not isinstance(value, dict) or not isinstance(value.get("trajectory"), list):
        return False
    steps = value["trajectory"]
    step_like = _dicts(steps) and any("action" in s or "observation" in s for s in steps[:3])
    return (step_like or not steps) and (
        isinstance(value.get("history"), list) or isinstance(value.get("info"), dict)
    )


def is_mini_swe_agent(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and str(value.get("trajectory_format", "")).startswith("mini-swe-agent")
        and isinstance(value.get("messages"), list)
    )


def is_toolbench(value: Any) -> bool:
    ag = value.get("answer_generation") if isinstance(value, dict) else None
    return isinstance(ag, dict) and (
        isinstance(ag.get("train_messages"), list) or isinstance(ag.get("chain"), list)
    )


def is_tau_bench(value: Any) -> bool:
    info = value.get("info") if isinstance(value, dict) else None
    return (
        isinstance(value.get("traj") if isinstance(value, dict) else None, list)
        and isinstance(info, dict)
        and (isinstance(info.get("task"), dict) or isinstance(info.get("reward_info"), dict))
    )


def is_agentbench(value: Any) -> bool:
    out = value.get("output") if isinstance(value, dict) else None
    return (
        isinstance(out, dict)
        and isinstance(out.get("history"), list)
        and "status" in out
        and "index" in value
    )


# ---------------------------------------------------------------------------------------------
# SWE-agent and mini-SWE-agent


def _exit_status(info: Any) -> tuple[float | None, str | None]:
    status = info.get("exit_status") if isinstance(info, dict) else None
    if status is None:
        return None, None
    number, label = normalize_outcome(status)
    return number, label or str(status)[:80]


def _info_meta(info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        return {}
    meta: dict[str, Any] = {
        k: v
        for k, v in info.items()
        if isinstance(v, (str, int, float, bool)) and k != "submission"
    }
    if isinstance(info.get("submission"), str):
        meta["submission"] = info["submission"]
    if isinstance(info.get("model_stats"), dict):
        meta["model_stats"] = {
            k: v for k, v in info["model_stats"].items() if isinstance(v, (int, float))
        }
    return meta


def _swe_history_item(item: Any) -> Any:
    """SWE-agent names a tool result's call in `tool_call_ids` (a list)."""
    if isinstance(item, dict) and "tool_call_id" not in item:
        ids = item.get("tool_call_ids")
        if isinstance(ids, list) and ids and isinstance(ids[0], str):
            return {**item, "tool_call_id": ids[0]}
    return item


def _steps_as_messages(steps: list[Any], field: str) -> list[dict[str, Any]]:
    """Without `history`, the steps themselves: the model's response, then what it observed."""
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise RecordError(f"{field}[{i}]", f"expected a step object, got {type_name(step)}")
        said = step.get("response") or step.get("thought") or ""
        action = step.get("action")
        text = to_text(said)
        if isinstance(action, str) and action.strip() and action.strip() not in text:
            text = f"{text}\n\n```\n{action.strip()}\n```" if text else action
        if text:
            out.append(message("assistant", text_part(text)))
        if step.get("observation") not in (None, ""):
            out.append(message("user", text_part(to_text(step["observation"]))))
    return out


def swe_agent_record(value: dict[str, Any]) -> TraceRecord:
    history = value.get("history")
    demos = 0
    if isinstance(history, list) and history:
        kept = []
        for item in history:
            if isinstance(item, dict) and item.get("is_demo"):
                demos += 1
                continue
            kept.append(_swe_history_item(item))
        messages = normalize_messages(kept, "history")
    else:
        messages = _steps_as_messages(value.get("trajectory") or [], "trajectory")
    info = value.get("info")
    outcome, label = _exit_status(info)
    meta = _info_meta(info)
    meta["n_steps"] = len(value.get("trajectory") or [])
    if demos:
        meta["demonstration_messages_left_out"] = demos
    if isinstance(value.get("environment"), str):
        meta["environment"] = value["environment"]
    return TraceRecord(
        source="swe-agent",
        messages=messages,
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source="swe-agent:info.exit_status" if label or outcome is not None else None,
    ).finish()


def mini_swe_agent_record(value: dict[str, Any]) -> TraceRecord:
    raw = value["messages"]
    exit_extra: dict[str, Any] = {}
    kept = []
    for item in raw:
        if isinstance(item, dict) and item.get("role") == "exit":  # the run's end, not a turn
            if isinstance(item.get("extra"), dict):
                exit_extra = item["extra"]
            continue
        kept.append(item)
    messages = normalize_messages(kept, "messages")
    info = value.get("info") if isinstance(value.get("info"), dict) else {}
    outcome, label = _exit_status(info or exit_extra)
    meta = _info_meta(info or exit_extra)
    meta["trajectory_format"] = str(value.get("trajectory_format"))
    return TraceRecord(
        source="mini-swe-agent",
        messages=messages,
        external_id=find_id(value, None),
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source="mini-swe-agent:info.exit_status" if label else None,
    ).finish()


# ---------------------------------------------------------------------------------------------
# ToolBench / StableToolBench


def _chain_messages(ag: dict[str, Any]) -> list[dict[str, Any]]:
    """A ToolBench `chain` (Thought / Action / Action Input nodes), used when no train
    messages were kept (a failed run keeps none)."""
    messages: list[dict[str, Any]] = []
    if isinstance(ag.get("query"), str):
        messages.append(message("user", text_part(ag["query"])))
    name = None
    for i, node in enumerate(ag.get("chain") or []):
        if not isinstance(node, dict):
            raise RecordError(
                f"answer_generation.chain[{i}]", f"expected a node, got {type_name(node)}"
            )
        kind, desc = node.get("node_type"), node.get("description")
        if kind == "Thought" and desc:
            messages.append(message("assistant", text_part(to_text(desc))))
        elif kind == "Action":
            name = to_text(desc) or "action"
        elif kind == "Action Input":
            raw = [
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": name or "action", "arguments": to_text(desc)},
                }
            ]
            if "observation" in node:
                raw.append(
                    {
                        "role": "function",
                        "name": name or "action",
                        "content": to_text(node["observation"]),
                    }
                )
            messages.extend(normalize_messages(raw, f"answer_generation.chain[{i}]"))
            name = None
    return messages


def toolbench_record(value: dict[str, Any]) -> TraceRecord:
    ag = value["answer_generation"]
    train = ag.get("train_messages")
    warnings: list[str] = []
    if isinstance(train, list) and train:
        longest, warnings = longest_of_prefixes(train, "answer_generation.train_messages")
        messages = normalize_messages(longest, "answer_generation.train_messages")
    else:
        messages = _chain_messages(ag)
    outcome = label = None
    source = None
    if isinstance(value.get("win"), bool):
        outcome, label = normalize_outcome(value["win"])
        source = "toolbench:win"
    meta: dict[str, Any] = {
        k: ag[k]
        for k in ("valid_data", "finish_type", "query_count", "total_tokens")
        if isinstance(ag.get(k), (str, int, float, bool))
    }
    if isinstance(ag.get("final_answer"), str):
        meta["final_answer"] = ag["final_answer"]
    if isinstance(value.get("try_count"), int):
        meta["try_count"] = value["try_count"]
    if warnings:
        meta["import_warnings"] = warnings
    return TraceRecord(
        source="toolbench",
        messages=messages,
        external_id=find_id(value, None),
        task=ag.get("query") if isinstance(ag.get("query"), str) else None,
        tools=normalize_tools(ag.get("function"), "answer_generation.function"),
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source=source,
    ).finish()


# ---------------------------------------------------------------------------------------------
# tau-bench


def _expected_actions(actions: Any) -> list[dict[str, Any]]:
    out = []
    for a in actions if isinstance(actions, list) else []:
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            args = a.get("kwargs", a.get("arguments", {}))
            out.append({"name": a["name"], "arguments": args if isinstance(args, dict) else {}})
    return out


def tau_bench_reference(info: dict[str, Any]) -> dict[str, Any]:
    """The task's instruction, expected actions with their arguments, and the reward details."""
    task = info.get("task") if isinstance(info.get("task"), dict) else {}
    ref: dict[str, Any] = {}
    if isinstance(task.get("instruction"), str):
        ref["instruction"] = task["instruction"]
    if task.get("actions") is not None:
        ref["expected_actions"] = _expected_actions(task["actions"])
    if isinstance(task.get("outputs"), list):
        ref["expected_outputs"] = [to_text(o) for o in task["outputs"]]
    if isinstance(task.get("user_id"), str):
        ref["user_id"] = task["user_id"]
    if isinstance(info.get("reward_info"), dict):
        ref["reward_info"] = info["reward_info"]
    return ref


def tau_bench_record(value: dict[str, Any]) -> TraceRecord:
    messages = normalize_messages(value["traj"], "traj")
    info = value["info"]
    outcome = label = None
    if value.get("reward") is not None:
        outcome, label = normalize_outcome(value["reward"])
        if outcome is None and label is None:
            raise RecordError("reward", f"expected a number, got {type_name(value['reward'])}")
    meta: dict[str, Any] = {
        k: v for k, v in info.items() if isinstance(v, (str, int, float, bool)) or v is None
    }
    for key in ("task_id", "trial"):
        if isinstance(value.get(key), (int, str)):
            meta[key] = value[key]
    meta["reference"] = tau_bench_reference(info)
    task_id, trial = value.get("task_id"), value.get("trial")
    ext = None
    if isinstance(task_id, (int, str)) and not isinstance(task_id, bool):
        ext = f"{task_id}" if trial is None else f"{task_id}#trial{trial}"
    return TraceRecord(
        source="tau-bench",
        messages=messages,
        external_id=ext,
        task=meta["reference"].get("instruction"),
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source="tau-bench:reward" if outcome is not None else None,
    ).finish()


# ---------------------------------------------------------------------------------------------
# AgentBench

_AGENTBENCH_ROLES = {"user": "user", "agent": "assistant"}
_AGENTBENCH_SCORES = ("result", "is_correct", "success", "reward", "score", "f1")


def _agentbench_outcome(result: Any) -> tuple[float | None, str | None, str | None]:
    number, label = normalize_outcome(result) if not isinstance(result, dict) else (None, None)
    if number is not None or label is not None:
        return number, label, "output.result"
    if isinstance(result, dict):
        for key in _AGENTBENCH_SCORES:
            if key in result and not isinstance(result[key], (dict, list)):
                number, label = normalize_outcome(result[key])
                if number is not None or label is not None:
                    return number, label, f"output.result.{key}"
    return None, None, None


def agentbench_record(value: dict[str, Any]) -> TraceRecord:
    out = value["output"]
    items = []
    for i, turn in enumerate(out["history"]):
        if not isinstance(turn, dict):
            raise RecordError(
                f"output.history[{i}]", f"expected a turn object, got {type_name(turn)}"
            )
        role = (
            _AGENTBENCH_ROLES.get(turn.get("role")) if isinstance(turn.get("role"), str) else None
        )
        if role is None:
            raise RecordError(
                f"output.history[{i}].role",
                f"expected 'user' or 'agent', got {to_text(turn.get('role'))[:40]!r}",
            )
        items.append({"role": role, "content": turn.get("content")})
    messages = normalize_messages(items, "output.history")
    outcome, label, where = _agentbench_outcome(out.get("result"))
    status = out.get("status")
    meta: dict[str, Any] = {"status": status} if isinstance(status, str) else {}
    if out.get("result") is not None:
        meta["result"] = out["result"]
    result = out.get("result") if isinstance(out.get("result"), dict) else {}
    truth = {k: result[k] for k in ("ground_truth", "answer", "std", "label") if k in result}
    if truth:
        meta["reference"] = truth
    index = value.get("index")
    return TraceRecord(
        source="agentbench",
        messages=messages,
        external_id=str(index)
        if isinstance(index, (int, str)) and not isinstance(index, bool)
        else None,
        metadata=meta,
        outcome=outcome,
        outcome_label=label or (status if outcome is None and isinstance(status, str) else None),
        outcome_source=f"agentbench:{where}"
        if where
        else ("agentbench:output.status" if status else None),
    ).finish()
