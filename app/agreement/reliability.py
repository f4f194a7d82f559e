"""Agreement on a workspace: reviews of a rubric version turned into reliability matrices.

For each criterion and for the overall decision this builds an items x judges matrix from
submitted reviews (drafts never count), optionally adds the automated scores imported with
the traces as one more judge each (`auto:<name>`, when the score's name is a criterion key,
or "decision"), runs the engine in app.agreement.coefficients, and adds what a lead reads next to the
coefficients: each judge against the adjudicated gold and against the rest, the traces with
the most disagreement, and the trend across rubric versions and rounds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement.coefficients import (
    DEFAULT_BOOT,
    Coefficient,
    Ratings,
    Result,
    band,
    compute,
    resample_weights,
)
from app.workspace.errors import NotFound
from app.workspace.models import (
    Adjudication,
    Assignment,
    Criterion,
    Judge,
    Review,
    ReviewRound,
    RubricVersion,
    Trace,
)
from app.workspace.types import DECISIONS, STEP_LABELS

DECISION = "decision"


@dataclass(frozen=True)
class Target:
    """What is rated: a criterion or the overall decision."""

    key: str
    title: str
    scale: str  # binary | ordinal | nominal | decision
    categories: tuple[Any, ...]

    @property
    def level(self) -> str:
        return "ordinal" if self.scale == "ordinal" else "nominal"

    @classmethod
    def of(cls, c: Criterion) -> Target:
        cats = (0, 1) if c.scale == "binary" else tuple(lv["value"] for lv in c.levels)
        return cls(c.key, c.title, c.scale, cats)


DECISION_TARGET = Target(DECISION, "Overall decision", "decision", DECISIONS)


def targets(version: RubricVersion) -> list[Target]:
    return [Target.of(c) for c in version.criteria] + [DECISION_TARGET]


def _coerce(target: Target, value: Any) -> Any:
    """A stored or automated value as one of the target's categories, or None."""
    if value is None:
        return None
    if target.scale == "binary":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float):
            return 1 if value >= 0.5 else 0
        if isinstance(value, str) and value.lower() in (
            "pass",
            "true",
            "yes",
            "fail",
            "false",
            "no",
        ):
            return int(value.lower() in ("pass", "true", "yes"))
        return None
    if target.scale == "ordinal" and isinstance(value, int | float) and not isinstance(value, bool):
        v = round(value)
        return v if v in target.categories else None
    return value if value in target.categories else None


@dataclass
class _Row:
    trace_id: int
    judge: str
    decision: str | None
    scores: dict[str, Any]
    submitted_at: datetime | None


def _reviews(session: Session, version_id: int, round_id: int | None) -> list[_Row]:
    q = (
        select(Review.trace_id, Judge.name, Review.decision, Review.scores, Review.submitted_at)
        .join(Judge, Judge.id == Review.judge_id)
        .where(Review.rubric_version_id == version_id, Review.status == "submitted")
    )
    if round_id is not None:
        q = q.where(
            Review.trace_id.in_(select(Assignment.trace_id).where(Assignment.round_id == round_id))
        )
    return [_Row(*r) for r in session.execute(q.order_by(Review.trace_id, Judge.name))]


def _auto_scores(session: Session, trace_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(trace_ids), 900):
        chunk = trace_ids[start : start + 900]
        for tid, scores in session.execute(
            select(Trace.id, Trace.scores).where(Trace.id.in_(chunk))
        ):
            if scores:
                out[tid] = scores
    return out


def ratings_for(
    target: Target,
    rows: list[_Row],
    auto: dict[int, list[dict[str, Any]]] | None = None,
    items: list[int] | None = None,
) -> Ratings:
    triples = []
    for r in rows:
        value = r.decision if target.key == DECISION else r.scores.get(target.key)
        value = _coerce(target, value)
        if value is not None:
            triples.append((r.trace_id, r.judge, value))
    if auto:
        for tid, scores in auto.items():
            for s in scores:
                if isinstance(s, dict) and s.get("name") == target.key:
                    value = _coerce(target, s.get("value"))
                    if value is not None:
                        triples.append((tid, f"auto:{target.key}", value))
    judges = sorted({t[1] for t in triples}, key=lambda j: (j.startswith("auto:"), j))
    items = items if items is not None else sorted({t[0] for t in triples})
    return Ratings.from_long(triples, target.level, target.categories, items, judges)


@dataclass
class JudgeLine:
    judge: str
    n_rated: int
    vs_rest: float | None  # mean Cohen's kappa with each other judge
    vs_gold: Coefficient | None = None  # Cohen's kappa against the adjudicated verdict
    gold_percent: float | None = None
    n_gold: int = 0


@dataclass
class TargetReport:
    target: Target
    result: Result
    judges: list[JudgeLine]

    @property
    def band(self) -> str:
        return band(self.result.alpha.value)


@dataclass
class Disagreement:
    trace_id: int
    external_id: str
    score: float  # 0 = all agree, 1 = no two ratings agree on anything
    n_judges: int
    summary: str


@dataclass
class VersionReport:
    rubric: str
    version: int
    version_id: int
    round_name: str | None
    n_reviews: int
    n_traces: int
    judges: list[str]
    targets: list[TargetReport]
    disagreements: list[Disagreement] = field(default_factory=list)
    step_labels: StepAgreement | None = None
    n_boot: int = DEFAULT_BOOT
    seed: int = 0
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def target(self, key: str) -> TargetReport:
        for t in self.targets:
            if t.target.key == key:
                return t
        raise NotFound(f"no criterion {key!r} in {self.rubric} v{self.version}")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rubric": self.rubric,
            "version": self.version,
            "round": self.round_name,
            "n_reviews": self.n_reviews,
            "n_traces": self.n_traces,
            "judges": self.judges,
            "bootstrap": {"resamples": self.n_boot, "seed": self.seed, "confidence": 0.95},
            "criteria": {},
        }
        for t in self.targets:
            d = t.result.as_dict()
            d["level"] = t.result.level
            d["categories"] = t.result.categories
            d["band"] = t.band
            d["pairwise_cohen_kappa"] = (
                {
                    f"{a} | {b}": _num(t.result.pairwise["cohen_kappa"][i, j])
                    for i, a in enumerate(t.result.judges)
                    for j, b in enumerate(t.result.judges)
                    if i < j
                }
                if "cohen_kappa" in t.result.pairwise
                else {}
            )
            d["judges"] = [
                {
                    "judge": j.judge,
                    "n_rated": j.n_rated,
                    "kappa_vs_rest": _num(j.vs_rest),
                    "kappa_vs_gold": j.vs_gold.as_dict() if j.vs_gold else None,
                    "percent_vs_gold": _num(j.gold_percent),
                    "n_gold": j.n_gold,
                }
                for j in t.judges
            ]
            out["criteria"][t.target.key] = d
        out["most_disagreement"] = [
            {
                "trace_id": d.trace_id,
                "external_id": d.external_id,
                "score": round(d.score, 4),
                "n_judges": d.n_judges,
                "summary": d.summary,
            }
            for d in self.disagreements
        ]
        out["step_labels"] = self.step_labels.as_dict() if self.step_labels else None
        return out


def _num(x: float | None) -> float | None:
    if x is None or not np.isfinite(x):
        return None
    return round(float(x), 6)


def version_report(
    session: Session,
    version_id: int,
    round_id: int | None = None,
    criterion: str | None = None,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    include_auto: bool = True,
    top: int = 25,
) -> VersionReport:
    version = session.get(RubricVersion, version_id)
    if version is None:
        raise NotFound(f"no rubric version {version_id}")
    rnd = session.get(ReviewRound, round_id) if round_id is not None else None
    if round_id is not None and rnd is None:
        raise NotFound(f"no round {round_id}")
    rows = _reviews(session, version_id, round_id)
    items = sorted({r.trace_id for r in rows})
    auto = _auto_scores(session, items) if include_auto else None
    gold = _gold(session, version_id)
    wanted = targets(version)
    if criterion is not None:
        wanted = [t for t in wanted if t.key == criterion]
        if not wanted:
            keys = ", ".join(t.key for t in targets(version))
            raise NotFound(f"no criterion {criterion!r} in this version (criteria: {keys})")
    weights = resample_weights(len(items), n_boot, seed) if n_boot and len(items) > 1 else None
    reports = []
    for target in wanted:
        ratings = ratings_for(target, rows, auto, items)
        result = compute(ratings, n_boot=n_boot, seed=seed, weights=weights)
        reports.append(
            TargetReport(target, result, _judge_lines(target, ratings, result, gold, n_boot, seed))
        )
    disagreements = _disagreements(session, targets(version), rows, top) if top else []
    steps = step_agreement(session, version_id, round_id, n_boot, seed)
    return VersionReport(
        version.rubric.name,
        version.version,
        version.id,
        rnd.name if rnd else None,
        len(rows),
        len(items),
        sorted({r.judge for r in rows}),
        reports,
        disagreements,
        steps,
        n_boot,
        seed,
    )


# ---------------------------------------------------------------------------------------
# Step labels: do judges find the same first error, and label steps alike?


@dataclass
class StepAgreement:
    """Agreement on judges' step labels under one rubric version.

    `exact_step` is the share of judge pairs, among pairs who both marked a first error on the
    same trace, that marked the same step. `alpha` is Krippendorff's alpha (nominal) with
    (trace, step) as the unit and good / wrong / first_error as the values."""

    n_reviews: int  # submitted reviews with at least one step label
    n_steps: int  # (trace, step) units labelled by anyone
    first_error_pairs: int
    first_error_same: int
    alpha: Coefficient

    @property
    def exact_step(self) -> float | None:
        if not self.first_error_pairs:
            return None
        return self.first_error_same / self.first_error_pairs

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_reviews": self.n_reviews,
            "n_steps": self.n_steps,
            "first_error_pairs": self.first_error_pairs,
            "first_error_same_step": self.first_error_same,
            "exact_step_agreement": _num(self.exact_step),
            "krippendorff_alpha": self.alpha.as_dict(),
        }


def _labelled(session: Session, version_id: int, round_id: int | None):
    q = (
        select(Review.trace_id, Judge.name, Review.step_labels)
        .join(Judge, Judge.id == Review.judge_id)
        .where(
            Review.rubric_version_id == version_id,
            Review.status == "submitted",
            Review.step_labels.is_not(None),
        )
    )
    if round_id is not None:
        q = q.where(
            Review.trace_id.in_(select(Assignment.trace_id).where(Assignment.round_id == round_id))
        )
    return [(t, j, labels) for t, j, labels in session.execute(q) if labels]


def first_error_agreement(marks: dict[int, dict[str, int]]) -> tuple[int, int]:
    """(judge pairs who both marked a first error on a trace, pairs who marked the same step)
    from trace -> judge -> marked step."""
    pairs = same = 0
    for by_judge in marks.values():
        steps = list(by_judge.values())
        for i in range(len(steps)):
            for j in range(i + 1, len(steps)):
                pairs += 1
                same += steps[i] == steps[j]
    return pairs, same


def step_agreement(
    session: Session,
    version_id: int,
    round_id: int | None = None,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> StepAgreement:
    rows = _labelled(session, version_id, round_id)
    triples = []
    marks: dict[int, dict[str, int]] = {}
    for trace_id, judge, labels in rows:
        for lab in labels:
            if lab.get("label") in STEP_LABELS and isinstance(lab.get("step"), int):
                triples.append(((trace_id, lab["step"]), judge, lab["label"]))
                if lab["label"] == "first_error":
                    marks.setdefault(trace_id, {})[judge] = lab["step"]
    pairs, same = first_error_agreement(marks)
    ratings = Ratings.from_long(triples, "nominal", list(STEP_LABELS))
    if len(ratings.items) and len(ratings.judges) > 1:
        alpha = compute(ratings, n_boot=n_boot, seed=seed, pairs=False).alpha
    else:
        alpha = Coefficient(None, note="fewer than two judges labelled steps")
    return StepAgreement(len(rows), len(ratings.items), pairs, same, alpha)


def _gold(session: Session, version_id: int) -> dict[int, Adjudication]:
    return {
        a.trace_id: a
        for a in session.scalars(
            select(Adjudication).where(Adjudication.rubric_version_id == version_id)
        )
    }


def _judge_lines(
    target: Target,
    ratings: Ratings,
    result: Result,
    gold: dict[int, Adjudication],
    n_boot: int,
    seed: int,
) -> list[JudgeLine]:
    lines = []
    kappa = result.pairwise.get("cohen_kappa")
    gold_codes = np.full(ratings.n_items, -1, dtype=np.int16)
    cat_ix = {c: k for k, c in enumerate(ratings.categories)}
    for i, tid in enumerate(ratings.items):
        adj = gold.get(tid)
        if adj is not None:
            v = _coerce(
                target, adj.decision if target.key == DECISION else adj.scores.get(target.key)
            )
            if v is not None:
                gold_codes[i] = cat_ix[v]
    for j, name in enumerate(ratings.judges):
        col = ratings.codes[:, j]
        vs_rest = None
        if kappa is not None and ratings.n_judges > 1:
            others = np.delete(kappa[j], j)
            vs_rest = float(np.nanmean(others)) if np.isfinite(others).any() else None
        line = JudgeLine(str(name), int((col >= 0).sum()), vs_rest)
        both = (col >= 0) & (gold_codes >= 0)
        if both.any():
            pair = Ratings(
                np.stack([col[both], gold_codes[both]], axis=1),
                ratings.categories,
                ratings.level,
                judges=[name, "gold"],
            )
            res = compute(pair, n_boot=n_boot if both.sum() > 1 else 0, seed=seed)
            line.vs_gold = res.coefficients["cohen_kappa"]
            line.gold_percent = res.coefficients["percent_agreement"].value
            line.n_gold = int(both.sum())
        lines.append(line)
    return lines


def _disagreements(
    session: Session, all_targets: list[Target], rows: list[_Row], top: int
) -> list[Disagreement]:
    """Rank traces by how much their judges disagree, over every criterion and the decision.

    Per target: nominal scales count the share of disagreeing judge pairs; ordinal scales
    the mean absolute difference over pairs divided by the scale's range. The trace's score
    is the mean over targets that at least two judges rated.
    """
    by_trace: dict[int, list[_Row]] = {}
    for r in rows:
        by_trace.setdefault(r.trace_id, []).append(r)
    scored = []
    for tid, rs in by_trace.items():
        if len(rs) < 2:
            continue
        parts, notes = [], []
        for t in all_targets:
            vals = [
                _coerce(t, r.decision if t.key == DECISION else r.scores.get(t.key)) for r in rs
            ]
            vals = [v for v in vals if v is not None]
            if len(vals) < 2:
                continue
            pairs = [(a, b) for i, a in enumerate(vals) for b in vals[i + 1 :]]
            if t.scale == "ordinal":
                span = max(t.categories) - min(t.categories) or 1
                d = sum(abs(a - b) for a, b in pairs) / len(pairs) / span
            else:
                d = sum(a != b for a, b in pairs) / len(pairs)
            parts.append(d)
            if d > 0:
                counts = Counter(vals)
                notes.append(
                    f"{t.key}: "
                    + ", ".join(f"{_label(t, v)}×{n}" for v, n in sorted(counts.items(), key=str))
                )
        if parts:
            scored.append((sum(parts) / len(parts), tid, len(rs), "; ".join(notes)))
    scored.sort(key=lambda x: (-x[0], x[1]))
    scored = scored[:top]
    ext = dict(
        session.execute(
            select(Trace.id, Trace.external_id).where(Trace.id.in_([s[1] for s in scored] or [0]))
        ).all()
    )
    return [
        Disagreement(tid, ext.get(tid) or str(tid), score, n, note)
        for score, tid, n, note in scored
    ]


def _label(t: Target, v: Any) -> str:
    return ("fail", "pass")[v] if t.scale == "binary" else str(v)


# ---------------------------------------------------------------------------------------
# Trend: did rewording a criterion raise alpha?


@dataclass
class TrendPoint:
    version: int
    round_name: str | None
    when: datetime
    key: str
    alpha: Coefficient
    percent: float | None
    n_items: int


def trend(session: Session, rubric_id: int, n_boot: int = 200, seed: int = 0) -> list[TrendPoint]:
    """Alpha per criterion for each version, per round of that version (oldest first)."""
    points = []
    versions = session.scalars(
        select(RubricVersion)
        .where(RubricVersion.rubric_id == rubric_id)
        .order_by(RubricVersion.version)
    ).all()
    for v in versions:
        rounds = session.scalars(
            select(ReviewRound)
            .where(ReviewRound.rubric_version_id == v.id)
            .order_by(ReviewRound.created_at, ReviewRound.id)
        ).all()
        scopes: list[tuple[int | None, str | None, datetime]] = [
            (r.id, r.name, r.created_at) for r in rounds
        ] or [(None, None, v.created_at)]
        for round_id, round_name, when in scopes:
            rep = version_report(
                session, v.id, round_id, n_boot=n_boot, seed=seed, include_auto=False, top=0
            )
            for t in rep.targets:
                if t.result.alpha.value is None:
                    continue  # e.g. a backlog round where each trace has one judge
                points.append(
                    TrendPoint(
                        v.version,
                        round_name,
                        when,
                        t.target.key,
                        t.result.alpha,
                        t.result.coefficients["percent_agreement"].value,
                        t.result.n_items,
                    )
                )
    return points
