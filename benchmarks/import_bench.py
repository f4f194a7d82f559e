"""Import throughput and peak memory, against a floor measured in the same run.

    python benchmarks/import_bench.py [--n 100000] [--repeat 1]

Generates N traces of about 12 messages (with tool calls) as JSONL, then, each in its own
subprocess so that peak RSS is the phase's own:
  floor:    orjson-parse every line and bulk-insert the raw line into a bare SQLite table
  chambers: `import_paths` into a fresh workspace (detection, normalisation, hashing,
            dedupe against the database, batched transactions), timed when the traces are
            stored (in the queue; the tool and score filters work) and again when the
            full-text index has caught up with them (app.traces.search_index)
Prints both, then the ratios of wall time and of CPU time (user + system, the process and its
child processes together): the target is the stored traces within 3x of the floor's wall
time, the goal 2x; the searchable time and the CPU ratios are printed beside it; peak RSS
< 400 MB. On a shared machine the CPU ratio is the steadier of the two (wall time counts the
waits for a core); --repeat N runs the pair N times, alternating, and prints the medians.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
T0 = [0.0, 0.0]  # when the phase started: wall, CPU


def generate(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    words = [
        "order",
        "refund",
        "parcel",
        "shipment",
        "account",
        "password",
        "ticket",
        "status",
        "policy",
        "customer",
        "delivered",
        "warehouse",
    ]
    with path.open("w") as f:
        for i in range(n):
            msgs = [
                {"role": "system", "content": "You are a support agent. Follow the policy."},
                {"role": "user", "content": " ".join(rng.choices(words, k=25))},
            ]
            for k in range(3):
                cid = f"call_{i}_{k}"
                msgs.append(
                    {
                        "role": "assistant",
                        "content": " ".join(rng.choices(words, k=8)),
                        "tool_calls": [
                            {
                                "id": cid,
                                "type": "function",
                                "function": {
                                    "name": rng.choice(["lookup", "refund", "track"]),
                                    "arguments": json.dumps(
                                        {
                                            "id": rng.randint(1, 10**6),
                                            "note": " ".join(rng.choices(words, k=4)),
                                        }
                                    ),
                                },
                            }
                        ],
                    }
                )
                msgs.append(
                    {
                        "role": "tool",
                        "tool_call_id": cid,
                        "content": json.dumps(
                            {
                                "status": rng.choice(words),
                                "detail": " ".join(rng.choices(words, k=30)),
                            }
                        ),
                    }
                )
                msgs.append({"role": "user", "content": " ".join(rng.choices(words, k=10))})
            msgs.append({"role": "assistant", "content": " ".join(rng.choices(words, k=40))})
            f.write(
                json.dumps({"id": f"bench-{i}", "messages": msgs, "reward": rng.random()}) + "\n"
            )


def phase_floor(path: Path, db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, body TEXT)")
    batch = []
    with path.open("rb") as f:
        for line in f:
            orjson.loads(line)
            batch.append((line.decode(),))
            if len(batch) >= 500:
                conn.executemany("INSERT INTO raw (body) VALUES (?)", batch)
                conn.commit()
                batch.clear()
    conn.executemany("INSERT INTO raw (body) VALUES (?)", batch)
    conn.commit()
    conn.close()


def phase_chambers(path: Path, db: Path) -> dict[str, float]:
    """The import in its two steps: the traces stored (in the queue, filters working), then
    the full-text index caught up (searchable). Returns the first step's wall and CPU time."""
    sys.path.insert(0, str(ROOT))
    from app.traces.ingest import import_paths
    from app.traces.search_index import catch_up, pending
    from app.workspace.db import open_workspace

    ws = open_workspace(str(db))
    report = import_paths(ws, [path], catch_up_index=False)
    assert report.imported > 0 and not report.errors, report.errors[:3]
    stored = {"stored_seconds": time.perf_counter() - T0[0], "stored_cpu": _cpu() - T0[1]}
    catch_up(ws)  # what the import did not index while it waited for its parser
    with ws.session() as s:
        assert pending(s) == 0
    return stored


def run_phase(name: str, path: Path, db: Path) -> dict[str, float]:
    db.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--file", str(path), "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--phase", choices=["floor", "chambers"])
    ap.add_argument("--file")
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.phase:
        T0[:] = [time.perf_counter(), _cpu()]
        phase = phase_floor if args.phase == "floor" else phase_chambers
        stored = phase(Path(args.file), Path(args.db)) or {}
        seconds = time.perf_counter() - T0[0]
        cpu = _cpu() - T0[1]
        # the parser may run in a child process: count the larger of the two
        peak = (
            max(
                resource.getrusage(who).ru_maxrss
                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            )
            / 1024
        )
        print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak, **stored}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "traces.jsonl"
        t0 = time.perf_counter()
        generate(path, args.n)
        size_mb = path.stat().st_size / 2**20
        print(
            f"generated {args.n:,} traces (~12 messages each), {size_mb:.0f} MB, in {time.perf_counter() - t0:.1f}s"
        )
        runs: dict[str, list[dict[str, float]]] = {"floor": [], "chambers": []}
        for _ in range(args.repeat):
            for name in runs:
                runs[name].append(run_phase(name, path, tmpdir / f"{name}.sqlite"))
    floor, ours = (_median(runs[k]) for k in ("floor", "chambers"))
    stored = {"seconds": ours["stored_seconds"], "cpu": ours["stored_cpu"]}
    for label, r in (
        ("floor    (orjson + raw bulk insert)", floor),
        ("chambers, stored (in the queue)", stored),
        ("chambers, searchable (index caught up)", ours),
    ):
        print(
            f"{label:<40} {r['seconds']:7.2f}s wall {r['cpu']:7.2f}s cpu "
            f"{args.n / r['seconds']:9,.0f} traces/s"
        )
    print(
        f"peak RSS {ours['peak_mb']:.0f} MB (floor {floor['peak_mb']:.0f} MB), target < 400 MB: "
        f"{'met' if ours['peak_mb'] < 400 else 'MISSED'}"
    )
    for name, r in (("stored", stored), ("searchable", ours)):
        for what in ("seconds", "cpu"):
            ratio = r[what] / floor[what]
            target = name == "stored" and what == "seconds"  # the target is on wall time
            print(
                f"ratio {name}/floor ({'CPU' if what == 'cpu' else 'wall'}): {ratio:.2f}x"
                + (
                    f" (target <= 3x: {'met' if ratio <= 3 else 'MISSED'}; goal <= 2x: "
                    f"{'met' if ratio <= 2 else 'missed'})"
                    if target
                    else " (measured)"
                )
            )


def _cpu() -> float:
    """User + system seconds of this process and its finished children."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


if __name__ == "__main__":
    main()
