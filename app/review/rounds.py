"""Review rounds: which traces, which judges, overlap k, shuffled per judge."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.traces.queries import TraceFilter
from app.traces.search_index import unseen_by
from app.workspace import audit
from app.workspace.errors import ChambersError
from app.workspace.models import Assignment, Judge, Review, ReviewRound, RubricVersion, Trace


class RoundError(ChambersError):
    pass


def create_round(
    session: Session,
    name: str,
    rubric_version_id: int,
    judge_ids: list[int],
    overlap: int,
    trace_filter: TraceFilter | None = None,
    sample_size: int | None = None,
    seed: int = 0,
    calibration_ids: list[int] | None = None,
    created_by: int | None = None,
) -> ReviewRound:
    """Assign each selected trace to `overlap` distinct judges, balancing load.

    Traces are chosen by filter, then optionally a seeded random sample. Judges take traces
    in turn (least-loaded first), so every trace gets exactly k distinct judges; each judge's
    queue is then shuffled with the round's seed. Calibration items go to every judge.
    """
    if len(set(judge_ids)) != len(judge_ids) or not judge_ids:
        raise RoundError("choose at least one judge, each once")
    if session.scalar(select(ReviewRound.id).where(ReviewRound.name == name)) is not None:
        raise RoundError(f"a round named {name!r} exists already")
    if not 1 <= overlap <= len(judge_ids):
        raise RoundError(f"overlap must be between 1 and the number of judges ({len(judge_ids)})")
    flt = trace_filter or TraceFilter()
    unindexed = unseen_by(session, flt)
    if unindexed:  # the selection would leave them out silently
        raise RoundError(
            f"{unindexed:,} traces just imported are still being indexed for search: "
            "choose by search once the index has caught up (the status bar says when)"
        )
    ids = list(session.scalars(flt.apply(select(Trace.id)).order_by(Trace.id)))
    rng = random.Random(seed)
    if sample_size is not None and sample_size < len(ids):
        ids = sorted(rng.sample(ids, sample_size))
    calibration = set(calibration_ids or [])
    ids = [i for i in ids if i not in calibration]
    if not ids and not calibration:
        raise RoundError("the selection holds no traces")
    rnd = ReviewRound(
        name=name,
        rubric_version_id=rubric_version_id,
        overlap=overlap,
        seed=seed,
        selection={
            "n_traces": len(ids),
            "sample_size": sample_size,
            "calibration": sorted(calibration),
        },
        created_by=created_by,
    )
    session.add(rnd)
    session.flush()
    load = dict.fromkeys(judge_ids, 0)
    queues: dict[int, list[tuple[int, bool]]] = {j: [] for j in judge_ids}
    for tid in ids:
        chosen = sorted(judge_ids, key=lambda j: (load[j], rng.random()))[:overlap]
        for j in chosen:
            load[j] += 1
            queues[j].append((tid, False))
    for tid in sorted(calibration):
        for j in judge_ids:
            queues[j].append((tid, True))
    for j, queue in queues.items():
        rng.shuffle(queue)
        for pos, (tid, is_cal) in enumerate(queue):
            session.add(
                Assignment(
                    round_id=rnd.id, trace_id=tid, judge_id=j, position=pos, is_calibration=is_cal
                )
            )
    session.flush()
    audit.record(
        session,
        "create",
        "review_round",
        rnd.id,
        created_by,
        name=name,
        overlap=overlap,
        n_traces=len(ids),
        judges=judge_ids,
    )
    return rnd


def progress(session: Session, round_id: int) -> list[dict[str, Any]]:
    """Per judge: assigned, submitted."""
    rnd = session.get(ReviewRound, round_id)
    if rnd is None:
        raise RoundError(f"no round {round_id}")
    rows = session.execute(
        select(Judge.name, func.count(Assignment.id), func.count(Review.id))
        .join(Assignment, Assignment.judge_id == Judge.id)
        .outerjoin(
            Review,
            (Review.trace_id == Assignment.trace_id)
            & (Review.judge_id == Judge.id)
            & (Review.rubric_version_id == rnd.rubric_version_id)
            & (Review.status == "submitted"),
        )
        .where(Assignment.round_id == round_id)
        .group_by(Judge.name)
        .order_by(Judge.name)
    ).all()
    return [{"judge": n, "assigned": a, "submitted": s} for n, a, s in rows]


def rounds_of_version(session: Session, version_id: int) -> list[tuple[int, str]]:
    """(id, name) of the rounds under a rubric version, oldest first."""
    return [
        (r.id, r.name)
        for r in session.execute(
            select(ReviewRound.id, ReviewRound.name)
            .where(ReviewRound.rubric_version_id == version_id)
            .order_by(ReviewRound.created_at, ReviewRound.id)
        )
    ]


def all_progress(session: Session) -> list[dict[str, Any]]:
    """Every round, newest first, with its version, overlap, date and per-judge progress."""
    out = []
    versions = dict(session.execute(select(RubricVersion.id, RubricVersion.version)).all())
    for rnd in session.scalars(select(ReviewRound).order_by(ReviewRound.created_at.desc())):
        out.append(
            {
                "name": rnd.name,
                "version": versions.get(rnd.rubric_version_id),
                "overlap": rnd.overlap,
                "created_at": rnd.created_at,
                "judges": progress(session, rnd.id),
            }
        )
    return out
