"""Rubrics and their immutable versions.

A rubric version is frozen as soon as a review uses it: edits then create a new version,
and every review keeps the version it was made under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import Criterion, Review, Rubric, RubricVersion
from app.workspace.types import DECISIONS, SCALES


class RubricError(ChambersError):
    pass


@dataclass
class CriterionSpec:
    key: str
    title: str
    scale: str
    description: str = ""
    # ordinal: [{"value": 1, "label": "Poor", "anchor": "..."}, ...]; nominal: [{"value": "x", "label": ...}]
    levels: list[dict[str, Any]] = field(default_factory=list)
    weight: float = 1.0
    required_for: list[str] = field(default_factory=lambda: list(DECISIONS))

    def validate(self) -> None:
        if not self.key or not self.key.replace("_", "").replace("-", "").isalnum():
            raise RubricError(f"criterion key {self.key!r}: use letters, digits, '_' or '-'")
        if self.scale not in SCALES:
            raise RubricError(f"criterion {self.key}: scale must be one of {', '.join(SCALES)}")
        if self.scale == "ordinal":
            values = [lv.get("value") for lv in self.levels]
            if len(values) < 2 or values != list(range(1, len(values) + 1)):
                raise RubricError(f"criterion {self.key}: ordinal levels must be 1..k (k >= 2)")
        if self.scale == "nominal" and len(self.levels) < 2:
            raise RubricError(
                f"criterion {self.key}: a nominal scale needs at least two categories"
            )
        if self.weight < 0:
            raise RubricError(f"criterion {self.key}: weight must be >= 0")
        bad = set(self.required_for) - set(DECISIONS)
        if bad:
            raise RubricError(
                f"criterion {self.key}: required_for has unknown decisions {sorted(bad)}"
            )

    @classmethod
    def from_row(cls, c: Criterion) -> CriterionSpec:
        return cls(
            c.key, c.title, c.scale, c.description, list(c.levels), c.weight, list(c.required_for)
        )


def categories(c: Criterion | CriterionSpec) -> list[Any]:
    """The scale's full category set, in order (unused categories still count in statistics)."""
    if c.scale == "binary":
        return [0, 1]
    return [lv["value"] for lv in c.levels]


def _add_criteria(session: Session, version: RubricVersion, specs: list[CriterionSpec]) -> None:
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise RubricError("criterion keys must be unique within a rubric")
    if not specs:
        raise RubricError("a rubric needs at least one criterion")
    for pos, spec in enumerate(specs):
        spec.validate()
        session.add(
            Criterion(
                rubric_version=version,
                position=pos,
                key=spec.key,
                title=spec.title,
                description=spec.description,
                scale=spec.scale,
                levels=spec.levels,
                weight=spec.weight,
                required_for=spec.required_for,
            )
        )


def create_rubric(
    session: Session,
    name: str,
    criteria: list[CriterionSpec],
    description: str = "",
    created_by: int | None = None,
) -> RubricVersion:
    if session.scalar(select(Rubric).where(Rubric.name == name)) is not None:
        raise RubricError(f"a rubric named {name!r} exists already")
    rubric = Rubric(name=name, description=description)
    session.add(rubric)
    version = RubricVersion(rubric=rubric, version=1, notes="first version", created_by=created_by)
    session.add(version)
    _add_criteria(session, version, criteria)
    session.flush()
    audit.record(
        session, "create", "rubric_version", version.id, created_by, rubric=name, version=1
    )
    return version


def new_version(
    session: Session,
    rubric_name: str,
    criteria: list[CriterionSpec],
    notes: str = "",
    created_by: int | None = None,
) -> RubricVersion:
    rubric = get_rubric(session, rubric_name)
    number = (
        session.scalar(
            select(func.max(RubricVersion.version)).where(RubricVersion.rubric_id == rubric.id)
        )
        or 0
    ) + 1
    version = RubricVersion(rubric=rubric, version=number, notes=notes, created_by=created_by)
    session.add(version)
    _add_criteria(session, version, criteria)
    session.flush()
    audit.record(
        session,
        "create",
        "rubric_version",
        version.id,
        created_by,
        rubric=rubric_name,
        version=number,
    )
    return version


def get_rubric(session: Session, name: str) -> Rubric:
    rubric = session.scalar(select(Rubric).where(Rubric.name == name))
    if rubric is None:
        raise NotFound(f"no rubric named {name!r}")
    return rubric


def get_version(
    session: Session, rubric_name: str | None = None, version: int | None = None
) -> RubricVersion:
    """A rubric's version (latest if None); with no name, the only or most recent rubric."""
    q = select(RubricVersion).join(Rubric)
    if rubric_name:
        q = q.where(Rubric.name == rubric_name)
    if version is not None:
        q = q.where(RubricVersion.version == version)
    found = session.scalar(
        q.order_by(RubricVersion.created_at.desc(), RubricVersion.id.desc()).limit(1)
    )
    if found is None:
        what = f"rubric {rubric_name!r}" if rubric_name else "any rubric"
        raise NotFound(
            f"no version {version} of {what}" if version else f"no {what} in this workspace"
        )
    return found


def is_frozen(session: Session, version_id: int) -> bool:
    """True once any review (draft or submitted) uses the version."""
    return (
        session.scalar(
            select(func.count()).select_from(Review).where(Review.rubric_version_id == version_id)
        )
        > 0
    )


def validate_value(c: Criterion, value: Any) -> str | None:
    """None if `value` fits the criterion's scale, else a message."""
    if c.scale == "binary":
        return (
            None
            if value in (0, 1, True, False) and not isinstance(value, float)
            else f"{c.key}: expected pass (1) or fail (0)"
        )
    allowed = categories(c)
    return None if value in allowed else f"{c.key}: {value!r} is not one of {allowed}"


def validate_scores(version: RubricVersion, decision: str, scores: dict[str, Any]) -> list[str]:
    """Messages for missing required criteria and out-of-scale values (empty when valid)."""
    problems = []
    by_key = {c.key: c for c in version.criteria}
    for key in scores:
        if key not in by_key:
            problems.append(f"{key}: not a criterion of this rubric version")
    for c in version.criteria:
        if c.key in scores and scores[c.key] is not None:
            msg = validate_value(c, scores[c.key])
            if msg:
                problems.append(msg)
        elif decision in c.required_for:
            problems.append(f"{c.key}: required for {decision}")
    return problems


def specs_of(version: RubricVersion) -> list[CriterionSpec]:
    return [CriterionSpec.from_row(c) for c in version.criteria]


def save_rubric(
    session: Session,
    name: str,
    specs: list[CriterionSpec],
    description: str | None = None,
    notes: str = "",
    created_by: int | None = None,
) -> tuple[RubricVersion, str]:
    """Save edits: creates the rubric, edits an unused latest version in place, or (once a
    review uses the latest version) creates a new version. Returns (version, what happened):
    "created", "unchanged", "edited" or "new version"."""
    rubric = session.scalar(select(Rubric).where(Rubric.name == name))
    if rubric is None:
        return create_rubric(session, name, specs, description or "", created_by), "created"
    if description is not None:
        rubric.description = description
    latest = get_version(session, name)
    if specs_of(latest) == specs:
        return latest, "unchanged"
    if not is_frozen(session, latest.id):
        for c in list(latest.criteria):
            session.delete(c)
        session.flush()
        session.expire(latest, ["criteria"])
        _add_criteria(session, latest, specs)
        if notes:
            latest.notes = notes
        session.flush()
        session.expire(latest, ["criteria"])
        audit.record(
            session,
            "edit",
            "rubric_version",
            latest.id,
            created_by,
            rubric=name,
            version=latest.version,
        )
        return latest, "edited"
    return new_version(session, name, specs, notes, created_by), "new version"


def diff_versions(old: list[CriterionSpec], new: list[CriterionSpec]) -> list[str]:
    """What changed between two versions, one line per change, in reading order."""
    out: list[str] = []
    old_by = {c.key: c for c in old}
    new_by = {c.key: c for c in new}
    for c in old:
        if c.key not in new_by:
            out.append(f"- removed criterion {c.key} ({c.title})")
    for c in new:
        if c.key not in old_by:
            out.append(f"+ added criterion {c.key} ({c.title}, {c.scale})")
            continue
        o = old_by[c.key]
        for attr in ("title", "description", "scale", "weight", "required_for"):
            a, b = getattr(o, attr), getattr(c, attr)
            if a != b:
                out.append(f"~ {c.key}.{attr}: {_show(a)} → {_show(b)}")
        if o.levels != c.levels:
            o_lv = {str(lv.get("value")): lv for lv in o.levels}
            n_lv = {str(lv.get("value")): lv for lv in c.levels}
            for v in o_lv:
                if v not in n_lv:
                    out.append(f"- {c.key}: level {v} removed")
            for v, lv in n_lv.items():
                if v not in o_lv:
                    out.append(f"+ {c.key}: level {v} added ({lv.get('label', '')})")
                    continue
                for field_ in ("label", "anchor"):
                    a, b = o_lv[v].get(field_, ""), lv.get(field_, "")
                    if a != b:
                        out.append(f"~ {c.key}.levels[{v}].{field_}: {_show(a)} → {_show(b)}")
    common_old = [c.key for c in old if c.key in new_by]
    common_new = [c.key for c in new if c.key in old_by]
    if common_old != common_new:
        out.append(f"~ order: {', '.join(common_old)} → {', '.join(common_new)}")
    return out


def _show(v: Any) -> str:
    s = repr(v) if not isinstance(v, str) else f'"{v}"'
    return s if len(s) <= 120 else s[:117] + '…"'


def version_choices(session: Session) -> list[tuple[str, RubricVersion]]:
    """Every rubric version, labelled "name vN", newest version first within each rubric."""
    return [
        (f"{r.name} v{v.version}", v)
        for r in session.scalars(select(Rubric).order_by(Rubric.name))
        for v in reversed(r.versions)
    ]


def rubric_names(session: Session) -> list[str]:
    return list(session.scalars(select(Rubric.name).order_by(Rubric.name)))
