"""Team mode under load: judge processes and a lead on one workspace, nothing lost.

    python benchmarks/team_load.py                       # 20 judges + a lead, 180 s, PostgreSQL
    python benchmarks/team_load.py --judges 4 --seconds 20
    python benchmarks/team_load.py --db postgresql+psycopg://user@host/db   # an EMPTY database

Each judge process works as one judge in two "windows" (two machines) over a round with
overlapping assignments: it claims traces from its queue, drafts, submits, amends and undoes,
each window writing with the version it last read, so the windows race each other. The lead
process records verdicts as two leads over the same traces. Every write a process saw commit
(acknowledged) is logged with the version it wrote and the version it replaced. Afterwards the
database and the audit log are checked against those logs and the script prints:

  reviews written, adjudications written, conflicts detected (refused, shown, audited)
  lost             acknowledged writes not in the final state (the newest of each row)
  duplicated       rows or audit entries that exist twice
  overwritten      writes that replaced a version other than the one they read (silently)
  audit missing    acknowledged submissions, undos and verdicts with no audit entry
  unaccounted      committed writes no process acknowledged

All but the first three must be 0 (exit status 1 otherwise). Without a --db it creates a fresh
database on $CHAMBERS_TEST_PG_URL's server (default postgresql://postgres@127.0.0.1:5432) and
drops it afterwards (--keep to keep it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from app.review.adjudication import adjudicate, get_adjudication, record_adjudication_conflict  # noqa: E402
from app.review.queue import queue_rows  # noqa: E402
from app.review.reviews import (  # noqa: E402
    ReviewInput,
    record_conflict,
    save_draft,
    submit_review,
    withdraw_submission,
)
from app.review.rounds import create_round  # noqa: E402
from app.review.rubrics import CriterionSpec, create_rubric  # noqa: E402
from app.review.team import create_profile  # noqa: E402
from app.traces.ingest import import_paths  # noqa: E402
from app.workspace.db import open_workspace  # noqa: E402
from app.workspace.errors import ConflictError  # noqa: E402
from app.workspace.models import Adjudication, AuditEntry, Judge, Review  # noqa: E402

PG_SERVER = os.environ.get(
    "CHAMBERS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
).rsplit("/", 1)[0]
# --unsafe: windows write without naming the version they read (last writer wins, as before
# migration 0004): shows that the checks below do catch silent overwrites.
UNSAFE = os.environ.get("CHAMBERS_LOAD_UNSAFE") == "1"
MUST_BE_ZERO = ("lost", "duplicated", "overwritten", "audit_missing", "unaccounted")


# ---------------------------------------------------------------------------------------
# Set-up


def setup(url: str, n_judges: int, n_traces: int, overlap: int) -> dict[str, Any]:
    """Traces, a one-criterion rubric, two leads, n judges and a round with overlap."""
    ws = open_workspace(url)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "load.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {
                        "id": f"load-{i}",
                        "messages": [
                            {"role": "user", "content": f"task {i}"},
                            {"role": "assistant", "content": f"answer {i}"},
                        ],
                    }
                )
                + "\n"
                for i in range(n_traces)
            )
        )
        import_paths(ws, [path])
    with ws.session() as s:
        lead = create_profile(s, "Lead 1", "lead", None)
        lead2 = create_profile(s, "Lead 2", "lead", lead)
        judges = [create_profile(s, f"Judge {i:02d}", "judge", lead) for i in range(n_judges)]
        v = create_rubric(s, "Load", [CriterionSpec("ok", "OK", "binary")], created_by=lead.id)
        create_round(s, "load", v.id, [j.id for j in judges], overlap, created_by=lead.id)
        info = {
            "version_id": v.id,
            "judges": [j.name for j in judges],
            "leads": [lead.name, lead2.name],
        }
    ws.close()
    return info


# ---------------------------------------------------------------------------------------
# Workers: every acknowledged write goes to the log, one JSON line, flushed after commit


class Log:
    def __init__(self, path: str):
        self.f = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the worker

    def __call__(self, **rec: Any) -> None:
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


def wait_for_go(gate: Path, who: str) -> float:
    """Tell the driver this worker is connected, then wait for the common start; returns
    the time to stop (so slow starts under load do not eat into the measured run)."""
    (gate / f"ready-{who}").touch()
    go = gate / "go"
    while not go.exists():
        time.sleep(0.02)
    return float(go.read_text())


def _review_row(s, trace_id: int, judge_id: int, version_id: int) -> Review | None:
    return s.scalar(
        select(Review).where(
            Review.trace_id == trace_id,
            Review.judge_id == judge_id,
            Review.rubric_version_id == version_id,
        )
    )


def judge_worker(url: str, name: str, version_id: int, gate: Path, log: Log, seed: int) -> None:
    rng = random.Random(seed)
    ws = open_workspace(url)
    with ws.session() as s:
        judge = s.scalar(select(Judge).where(Judge.name == name))
    until = wait_for_go(gate, str(seed))
    windows: list[dict[int, int]] = [{}, {}]  # per window: trace id -> version read
    n = 0
    while time.time() < until:
        w = rng.choice(windows)
        if not w or rng.random() < 0.25:  # claim: open a trace from the queue
            with ws.session() as s:
                rows = queue_rows(s, judge, version_id, limit=40)
                if not rows:
                    return
                trace_id = rng.choice(rows).trace_id
                r = _review_row(s, trace_id, judge.id, version_id)
                w[trace_id] = r.version if r is not None else 0
            continue
        trace_id = rng.choice(list(w))
        action = rng.choices(["draft", "submit", "undo"], weights=[3, 4, 1])[0]
        n += 1
        token = f"{name}/{os.getpid()}/{n}"
        ok = rng.random() < 0.7
        data = ReviewInput(
            "approve" if ok else "reject", {"ok": int(ok)}, token, time_on_task_s=1.0
        )
        read = w[trace_id]
        expect = None if UNSAFE else read
        try:
            with ws.session() as s:
                if action == "draft":
                    r = save_draft(s, trace_id, judge.id, version_id, data, expect)
                elif action == "submit":
                    r = submit_review(s, trace_id, judge.id, version_id, data, expect)
                else:
                    r = _review_row(s, trace_id, judge.id, version_id)
                    if r is None or r.status != "submitted":
                        continue
                    r = withdraw_submission(s, r.id, judge.id, expect)
                rec = {
                    "entity": "review",
                    "id": r.id,
                    "version": r.version,
                    "status": r.status,
                    "rationale": r.rationale,
                    "replaced": read,
                    "kind": action,
                }
            if rec["version"] != read:  # committed: acknowledged
                log(**rec)
            w[trace_id] = rec["version"]
        except ConflictError as exc:  # refused, nothing written: audit both, reload theirs
            with ws.session() as s:
                theirs = record_conflict(s, exc, judge.id)
            log(entity="review", kind="conflict")
            w[trace_id] = theirs["version"] if theirs else 0
    ws.close()


def lead_worker(url: str, leads: list[str], version_id: int, gate: Path, log: Log, seed: int):
    rng = random.Random(seed)
    ws = open_workspace(url)
    with ws.session() as s:
        ids = [s.scalar(select(Judge.id).where(Judge.name == n)) for n in leads]
    until = wait_for_go(gate, str(seed))
    windows: list[dict[int, int]] = [{} for _ in ids]  # one per lead
    n = 0
    while time.time() < until:
        k = rng.randrange(len(ids))
        w = windows[k]
        if not w or rng.random() < 0.3:
            with ws.session() as s:
                traces = list(
                    s.scalars(
                        select(Review.trace_id)
                        .where(Review.status == "submitted", Review.rubric_version_id == version_id)
                        .distinct()
                        .limit(30)
                    )
                )
                if traces:
                    t = rng.choice(traces)
                    adj = get_adjudication(s, t, version_id)
                    w[t] = adj.version if adj is not None else 0
            time.sleep(0.02)
            continue
        trace_id = rng.choice(list(w))
        n += 1
        token = f"{leads[k]}/{os.getpid()}/{n}"
        ok = rng.random() < 0.5
        read = w[trace_id]
        try:
            with ws.session() as s:
                adj = adjudicate(
                    s,
                    trace_id,
                    version_id,
                    ids[k],
                    "approve" if ok else "reject",
                    {"ok": int(ok)},
                    token,
                    expected_version=None if UNSAFE else read,
                )
                rec = {
                    "entity": "adjudication",
                    "id": adj.id,
                    "version": adj.version,
                    "rationale": token,
                    "replaced": read,
                    "kind": "adjudicate",
                }
            log(**rec)
            w[trace_id] = rec["version"]
        except ConflictError as exc:
            with ws.session() as s:
                theirs = record_adjudication_conflict(s, exc, ids[k])
            log(entity="adjudication", kind="conflict")
            w[trace_id] = theirs["version"] if theirs else 0
    ws.close()


# ---------------------------------------------------------------------------------------
# Verification


def read_logs(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        if not p.exists():
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by kill -9 was never acknowledged
                continue
    return out


def verify(url: str, acks: list[dict[str, Any]]) -> dict[str, int]:
    writes = [a for a in acks if a["kind"] != "conflict"]
    by_row: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for a in writes:
        by_row[(a["entity"], a["id"])].append(a)
    counts = Counter()
    counts["reviews_written"] = sum(a["entity"] == "review" for a in writes)
    counts["adjudications_written"] = sum(a["entity"] == "adjudication" for a in writes)
    counts["conflicts_detected"] = sum(a["kind"] == "conflict" for a in acks)
    ws = open_workspace(url, migrate=False)
    try:
        with ws.session() as s:
            state = {("review", r.id): (r.version, r.rationale) for r in s.scalars(select(Review))}
            state.update(
                {
                    ("adjudication", a.id): (a.version, a.rationale)
                    for a in s.scalars(select(Adjudication))
                }
            )
            audit = list(s.scalars(select(AuditEntry)))
            counts["duplicated"] += _duplicate_rows(s)
    finally:
        ws.close()
    audited = Counter(
        (e.entity, e.entity_id, e.details.get("version"))
        for e in audit
        if e.action != "conflict" and e.entity in ("review", "adjudication")
    )
    counts["duplicated"] += sum(n - 1 for n in audited.values() if n > 1)
    counts["conflict_audit_entries"] = sum(e.action == "conflict" for e in audit)
    for key, rows in by_row.items():
        versions = Counter(a["version"] for a in rows)
        counts["overwritten"] += sum(n - 1 for n in versions.values() if n > 1)
        counts["overwritten"] += sum(a["version"] != a["replaced"] + 1 for a in rows)
        newest = max(rows, key=lambda a: a["version"])
        stored = state.get(key)
        if (
            stored is None
            or stored[0] < newest["version"]
            or stored[0] == newest["version"]
            and stored[1] != newest["rationale"]
        ):
            counts["lost"] += 1
        # versions go 1, 2, 3...: a committed write nobody acknowledged leaves a hole
        if stored is not None:
            counts["unaccounted"] += stored[0] - len(versions)
        for a in rows:
            audited_kind = a["entity"] == "adjudication" or a["kind"] in ("submit", "undo")
            if audited_kind and audited[(a["entity"], a["id"], a["version"])] == 0:
                counts["audit_missing"] += 1
    for key in state.keys() - by_row.keys():  # rows no process ever acknowledged writing
        counts["unaccounted"] += state[key][0]
    for k in MUST_BE_ZERO:
        counts.setdefault(k, 0)
    return dict(counts)


def _duplicate_rows(s) -> int:
    dup_reviews = s.execute(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM reviews GROUP BY trace_id, judge_id, "
            "rubric_version_id HAVING count(*) > 1) d"
        )
    ).scalar()
    dup_adj = s.execute(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM adjudications GROUP BY trace_id, "
            "rubric_version_id HAVING count(*) > 1) d"
        )
    ).scalar()
    return int(dup_reviews or 0) + int(dup_adj or 0)


# ---------------------------------------------------------------------------------------
# Driver


def spawn_worker(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, __file__, "--worker", *args], env=env)


def start(gate: Path, n: int, seconds: float, timeout: float = 300) -> None:
    """Once n workers are connected (or `timeout` passed), start them all for `seconds`."""
    deadline = time.time() + timeout
    while len(list(gate.glob("ready-*"))) < n and time.time() < deadline:
        time.sleep(0.05)
    tmp = gate / "go.part"
    tmp.write_text(str(time.time() + seconds))
    tmp.replace(gate / "go")


def run(url: str, n_judges: int, seconds: float, n_traces: int, overlap: int) -> dict[str, int]:
    info = setup(url, n_judges, n_traces, overlap)
    with tempfile.TemporaryDirectory() as d:
        gate = Path(d)
        logs = [Path(d) / f"judge{i}.jsonl" for i in range(n_judges)] + [Path(d) / "lead.jsonl"]
        procs = [
            spawn_worker(
                ["judge", url, name, str(info["version_id"]), str(gate), str(logs[i]), str(i)]
            )
            for i, name in enumerate(info["judges"])
        ]
        procs.append(
            spawn_worker(
                [
                    "lead",
                    url,
                    ",".join(info["leads"]),
                    str(info["version_id"]),
                    str(gate),
                    str(logs[-1]),
                    "99",
                ]
            )
        )
        start(gate, len(procs), seconds)
        failed = sum(p.wait() != 0 for p in procs)
        result = verify(url, read_logs(logs))
    result["processes_failed"] = failed
    return result


def _fresh_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"chambers_load_{uuid.uuid4().hex[:10]}"
    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}", name


def _drop_pg_database(name: str) -> None:
    import psycopg

    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(result: dict[str, int], n_judges: int, seconds: float) -> bool:
    print(
        f"team load: {n_judges} judge processes (two windows each) + 1 lead process "
        f"(two leads), {seconds:.0f} s"
    )
    for key in (
        "reviews_written",
        "adjudications_written",
        "conflicts_detected",
        "conflict_audit_entries",
        *MUST_BE_ZERO,
        "processes_failed",
    ):
        flag = (
            ""
            if key not in MUST_BE_ZERO and key != "processes_failed"
            else ("  ok" if result.get(key, 0) == 0 else "  FAIL (must be 0)")
        )
        print(f"  {key.replace('_', ' '):<24} {result.get(key, 0):>8}{flag}")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return all(result.get(k, 0) == 0 for k in (*MUST_BE_ZERO, "processes_failed"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        kind, url, who, version_id, gate, log, seed = argv[1:8]
        if kind == "judge":
            judge_worker(url, who, int(version_id), Path(gate), Log(log), int(seed))
        else:
            lead_worker(url, who.split(","), int(version_id), Path(gate), Log(log), int(seed))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="an empty PostgreSQL database URL (default: a fresh one)")
    p.add_argument("--judges", type=int, default=20)
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--traces", type=int, default=120)
    p.add_argument("--overlap", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the database created")
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="write without the version read (last writer wins): the checks must fail",
    )
    args = p.parse_args(argv)
    if args.unsafe:
        os.environ["CHAMBERS_LOAD_UNSAFE"] = "1"  # inherited by the workers
    url, created = (args.db, None) if args.db else _fresh_pg_database()
    try:
        result = run(url, args.judges, args.seconds, args.traces, args.overlap)
    finally:
        if created and not args.keep:
            _drop_pg_database(created)
    return 0 if report(result, args.judges, args.seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
