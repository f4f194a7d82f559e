"""Agreement on a workspace, rubrics as YAML and their versions, rounds, adjudication, and the
lead commands of the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from app.agreement import coefficients as ag
from app.agreement import reliability as rel
from app.cli import main
from app.review import adjudication, rubric_yaml
from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.review.rubrics import (
    CriterionSpec,
    RubricError,
    create_rubric,
    diff_versions,
    get_version,
    save_rubric,
)
from app.sample import build_sample
from app.workspace.db import open_workspace
from app.workspace.models import Adjudication, AuditEntry, Judge, Review, Rubric

SPECS = [
    CriterionSpec("ok", "OK", "binary"),
    CriterionSpec(
        "quality", "Quality", "ordinal", levels=[{"value": v, "label": str(v)} for v in (1, 2, 3)]
    ),
]


def _traces(ws, n, tmp=None):
    import tempfile
    from pathlib import Path

    from app.traces.ingest import import_paths

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {
                        "id": f"t{i}",
                        "messages": [
                            {"role": "user", "content": f"q{i}"},
                            {"role": "assistant", "content": "a"},
                        ],
                        "scores": {"ok": 1.0 if i % 2 else 0.0},
                    }
                )
                + "\n"
                for i in range(n)
            )
        )
        report = import_paths(ws, [path])
    assert report.imported == n


@pytest.fixture
def small(db_url):
    """4 traces, 3 judges with known ratings, one lead."""
    ws = open_workspace(db_url)
    _traces(ws, 4)
    with ws.session() as s:
        lead = get_or_create_judge(s, "Lead", "lead")
        judges = [get_or_create_judge(s, n) for n in ("A", "B", "C")]
        v = create_rubric(s, "R", SPECS, created_by=lead.id)
        from app.workspace.models import Trace

        ids = list(s.scalars(select(Trace.id).order_by(Trace.external_id)))
        # ok: A,B agree everywhere; C flips trace 0. quality: as below.
        table = {
            "A": [(1, 3), (0, 1), (1, 2), (0, 1)],
            "B": [(1, 3), (0, 1), (1, 3), (0, 2)],
            "C": [(0, 2), (0, 1), (1, 2), (0, 1)],
        }
        for j in judges:
            for tid, (ok, q) in zip(ids, table[j.name], strict=True):
                decision = "approve" if ok else "reject"
                submit_review(
                    s,
                    tid,
                    j.id,
                    v.id,
                    ReviewInput(decision, {"ok": ok, "quality": q}, "" if ok else "wrong"),
                )
        vid = v.id
    yield ws, vid, ids, table
    ws.close()


def test_workspace_ratings_match_the_engine_on_the_same_matrix(small):
    ws, vid, ids, table = small
    with ws.session() as s:
        rep = rel.version_report(s, vid, n_boot=0)
    q = rep.target("quality").result
    assert q.judges == ["A", "B", "C", "auto:quality"][:3]
    rows = [(i, j, table[j][i][1]) for j in table for i in range(4)]
    ref = ag.compute(ag.Ratings.from_long(rows, "ordinal", [1, 2, 3]), n_boot=0)
    assert q.alpha.value == pytest.approx(ref.alpha.value)
    # the automated "ok" score joins as one more judge
    ok = rep.target("ok").result
    assert ok.judges == ["A", "B", "C", "auto:ok"]
    assert rep.target("ok").result.n_judges == 4
    decision = rep.target("decision").result
    assert decision.categories == ["approve", "modify", "reject"]
    # A and B agree on every "ok": their kappa is 1
    assert ok.pairwise["cohen_kappa"][0, 1] == pytest.approx(1.0)
    # the trace with the most disagreement is trace 0 (C differs on ok, quality, decision)
    assert rep.disagreements[0].trace_id == ids[0]
    assert "ok: fail×1, pass×2" in rep.disagreements[0].summary


def test_drafts_do_not_count_and_excluding_auto(small):
    ws, vid, ids, _ = small
    with ws.session() as s:
        d = get_or_create_judge(s, "D")
        from app.review.reviews import save_draft

        save_draft(s, ids[0], d.id, vid, ReviewInput("approve", {"ok": 0}))
        rep = rel.version_report(s, vid, n_boot=0, include_auto=False)
    assert rep.target("ok").result.judges == ["A", "B", "C"]


def test_adjudication_is_gold_validated_and_audited(small):
    ws, vid, ids, _ = small
    with ws.session() as s:
        lead = s.scalar(select(Judge).where(Judge.name == "Lead"))
        a = s.scalar(select(Judge).where(Judge.name == "A"))
        with pytest.raises(adjudication.AdjudicationError, match="only a lead"):
            adjudication.adjudicate(s, ids[0], vid, a.id, "approve", {"ok": 1, "quality": 3})
        with pytest.raises(adjudication.AdjudicationError, match="quality: required for approve"):
            adjudication.adjudicate(s, ids[0], vid, lead.id, "approve", {"ok": 1})
        adjudication.adjudicate(
            s, ids[0], vid, lead.id, "approve", {"ok": 1, "quality": 3}, "A and B"
        )
        adjudication.adjudicate(
            s, ids[1], vid, lead.id, "reject", {"ok": 0, "quality": 1}, "all agree"
        )
        adjudication.adjudicate(
            s, ids[0], vid, lead.id, "approve", {"ok": 1, "quality": 2}, "on reflection"
        )
    with ws.session() as s:
        golds = s.scalars(select(Adjudication).order_by(Adjudication.trace_id)).all()
        assert [(g.trace_id, g.scores["quality"]) for g in golds] == [(ids[0], 2), (ids[1], 1)]
        actions = [
            e.action
            for e in s.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "adjudication")
                .order_by(AuditEntry.id)
            )
        ]
        assert actions == ["adjudicate", "adjudicate", "amend"]
        rep = rel.version_report(s, vid, n_boot=0)
    lines = {j.judge: j for j in rep.target("quality").judges}
    # gold quality: trace0=2, trace1=1. A: 3,1 -> 1 of 2; C: 2,1 -> 2 of 2.
    assert lines["A"].n_gold == 2 and lines["A"].gold_percent == pytest.approx(0.5)
    assert lines["C"].gold_percent == pytest.approx(1.0)
    assert lines["C"].vs_gold.value == pytest.approx(1.0)


def test_single_judge_round_gives_documented_undefined(db_url):
    ws = open_workspace(db_url)
    _traces(ws, 3)
    with ws.session() as s:
        j = get_or_create_judge(s, "Solo")
        v = create_rubric(s, "R", SPECS)
        from app.workspace.models import Trace

        for tid in s.scalars(select(Trace.id)):
            submit_review(s, tid, j.id, v.id, ReviewInput("approve", {"ok": 1, "quality": 2}))
        rep = rel.version_report(s, v.id, n_boot=100, include_auto=False)
    alpha = rep.target("quality").result.alpha
    assert alpha.value is None and alpha.note == "undefined: fewer than two judges"
    assert rep.target("quality").band == "undefined"
    ws.close()


def test_trend_shows_rewording_raised_alpha(tmp_path):
    ws = open_workspace(str(tmp_path / "s.sqlite"))
    build_sample(ws, n_traces=150)
    with ws.session() as s:
        rubric_id = s.scalar(select(Rubric.id))
        points = rel.trend(s, rubric_id, n_boot=0)
    comm = [(p.version, p.round_name, p.alpha.value) for p in points if p.key == "communication"]
    assert [(v, r) for v, r, _ in comm] == [(1, "Calibration round 1"), (2, "Calibration round 2")]
    assert comm[1][2] > comm[0][2] + 0.1
    ws.close()


# --- rubrics --------------------------------------------------------------------------------


def test_save_rubric_edits_unused_versions_and_versions_used_ones(ws):
    with ws.session() as s:
        v, what = save_rubric(s, "R", SPECS)
        assert (what, v.version) == ("created", 1)
        v, what = save_rubric(s, "R", SPECS)
        assert what == "unchanged"
        edited = [SPECS[1], SPECS[0]]
        v, what = save_rubric(s, "R", edited)
        assert (what, v.version) == ("edited", 1)
        assert [c.key for c in get_version(s, "R").criteria] == ["quality", "ok"]
    _traces(ws, 1)
    with ws.session() as s:
        j = get_or_create_judge(s, "J")
        from app.workspace.models import Trace

        tid = s.scalar(select(Trace.id))
        submit_review(
            s, tid, j.id, get_version(s, "R").id, ReviewInput("approve", {"ok": 1, "quality": 2})
        )
        v, what = save_rubric(s, "R", SPECS, notes="back to the old order")
        assert (what, v.version) == ("new version", 2)
        # the review keeps the version it was made under
        review = s.scalar(select(Review))
        assert review.rubric_version_id == get_version(s, "R", 1).id
        assert [c.key for c in get_version(s, "R", 1).criteria] == ["quality", "ok"]


def test_diff_versions_names_each_change():
    new = [
        CriterionSpec(
            "quality",
            "Quality!",
            "ordinal",
            levels=[
                {"value": 1, "label": "1"},
                {"value": 2, "label": "two", "anchor": "x"},
                {"value": 3, "label": "3"},
            ],
        ),
        CriterionSpec("tone", "Tone", "binary"),
    ]
    lines = diff_versions(SPECS, new)
    assert lines == [
        "- removed criterion ok (OK)",
        '~ quality.title: "Quality" → "Quality!"',
        '~ quality.levels[2].label: "2" → "two"',
        '~ quality.levels[2].anchor: "" → "x"',
        "+ added criterion tone (Tone, binary)",
    ]


def test_yaml_round_trip_and_line_numbered_errors(tmp_path, ws):
    with ws.session() as s:
        v = create_rubric(s, "Support", SPECS, "desc")
        text = rubric_yaml.dump(v)
    doc = rubric_yaml.load(text, "r.yaml")
    assert doc["name"] == "Support" and doc["criteria"] == SPECS
    bad = text.replace("scale: ordinal", "scale: likert")
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if "likert" in ln)
    with pytest.raises(RubricError, match=rf"r.yaml:{line}: criteria\[1\].scale: 'likert' is not"):
        rubric_yaml.load(bad, "r.yaml")
    with pytest.raises(RubricError, match=r"r.yaml:4: not valid YAML: expected <block end>"):
        rubric_yaml.load("rubric: x\ncriteria:\n  - key: a\n  scale: b: c\n", "r.yaml")
    gap = text.replace("- value: 2", "- value: 5")
    with pytest.raises(
        RubricError,
        match=r"criteria\[1\].levels\[1\].value: ordinal levels are "
        r"numbered 1..k in order; expected 2",
    ):
        rubric_yaml.load(gap, "r.yaml")
    dup = text.replace("key: quality", "key: ok")
    with pytest.raises(RubricError, match=r"criteria\[1\].key: 'ok' is also criteria\[0\]"):
        rubric_yaml.load(dup, "r.yaml")
    with pytest.raises(RubricError, match="r.yaml:1: colour: unknown field"):
        rubric_yaml.load("colour: red\n" + text, "r.yaml")


# --- CLI ------------------------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_agreement_csv_json_matches_published_alpha(tmp_path, capsys):
    from tests.test_agreement import KRIPP_C

    path = tmp_path / "labels.csv"
    lines = ["item,judge,value"] + [
        f"u{u},obs{o},{v}"
        for o, obs in enumerate(KRIPP_C)
        for u, v in enumerate(obs)
        if v is not None
    ]
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(
        capsys,
        "agreement",
        "--csv",
        str(path),
        "--level",
        "nominal",
        "--categories",
        "1,2,3,4,5",
        "--json",
        "--bootstrap",
        "200",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["n_items"] == 12 and data["n_judges"] == 4
    assert data["krippendorff_alpha"]["value"] == pytest.approx(0.743, abs=5e-4)
    for key in ("percent_agreement", "fleiss_kappa", "gwet_ac1", "cohen_kappa"):
        assert {"value", "ci_low", "ci_high"} <= set(data[key])
    code, out, _ = run(
        capsys, "agreement", "--csv", str(path), "--level", "ordinal", "--json", "--bootstrap", "0"
    )
    data = json.loads(out)
    assert data["krippendorff_alpha"]["value"] == pytest.approx(0.815, abs=5e-4)
    assert "cohen_kappa_linear" in data and "cohen_kappa_quadratic" in data
    code, _, err = run(
        capsys, "agreement", "--csv", str(tmp_path / "nope.csv"), "--level", "nominal"
    )
    assert code == 2 and "nope.csv: cannot read" in err and "Traceback" not in err


def test_cli_workspace_agreement_report_rubric_and_round(tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    assert run(capsys, "--db", db, "sample", "--traces", "60")[0] == 0
    code, out, err = run(
        capsys,
        "--db",
        db,
        "agreement",
        "--version",
        "1",
        "--round",
        "Calibration round 1",
        "--json",
        "--bootstrap",
        "100",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["round"] == "Calibration round 1" and data["n_traces"] == 18
    crit = data["criteria"]["tool_use"]
    assert crit["level"] == "ordinal" and crit["band"] in ("reliable", "tentative", "unreliable")
    assert "cohen_kappa_quadratic" in crit and len(crit["pairwise_cohen_kappa"]) == 3
    # the same numbers as the engine through the app
    ws = open_workspace(db)
    with ws.session() as s:
        rnd = s.scalar(
            select(rel.ReviewRound.id).where(rel.ReviewRound.name == "Calibration round 1")
        )
        rep = rel.version_report(s, get_version(s, version=1).id, rnd, n_boot=100)
    ws.close()
    assert crit["krippendorff_alpha"]["value"] == pytest.approx(
        rep.target("tool_use").result.alpha.value, abs=1e-6
    )

    out_html = tmp_path / "report.html"
    code, out, err = run(
        capsys, "--db", db, "report", "agreement", "--out", str(out_html), "--bootstrap", "50"
    )
    assert code == 0, err
    html = out_html.read_text()
    assert html.count("data:image/png;base64,") >= 4 and "http://" not in html.replace(
        "http://www.w3.org", ""
    )
    assert "Krippendorff" in html and "tool_use" in html

    yaml_path = tmp_path / "rubric.yaml"
    assert (
        run(
            capsys, "--db", db, "rubric", "export", "Support agent quality", "--out", str(yaml_path)
        )[0]
        == 0
    )
    text = yaml_path.read_text().replace("Judge only the final answer", "Judge the answer")
    yaml_path.write_text(text)
    code, out, _ = run(capsys, "--db", db, "rubric", "import", str(yaml_path))
    assert code == 0 and "new version (v3" in out
    code, out, _ = run(capsys, "--db", db, "rubric", "diff", "Support agent quality", "2", "3")
    assert out.startswith("~ communication.description:")
    code, out, _ = run(
        capsys,
        "--db",
        db,
        "round",
        "create",
        "Round 3",
        "--judges",
        "Ines Moreau,Hana Sato",
        "--overlap",
        "2",
        "--sample",
        "10",
        "--seed",
        "3",
    )
    assert code == 0 and "10 traces, overlap 2" in out
    code, out, _ = run(capsys, "--db", db, "round", "progress", "Round 3", "--json")
    assert json.loads(out) == [
        {"judge": "Hana Sato", "assigned": 10, "submitted": 0},
        {"judge": "Ines Moreau", "assigned": 10, "submitted": 0},
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rubric: X\ncriteria:\n  - key: a\n    scale: likert\n")
    code, _, err = run(capsys, "--db", db, "rubric", "import", str(bad))
    assert code == 2 and "bad.yaml:4: criteria[0].scale: 'likert'" in err


def test_pairwise_matrix_is_symmetric_with_nan_diagonal():
    r = ag.Ratings(np.array([[0, 0, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0]]), [0, 1], "nominal")
    m = ag.compute(r, n_boot=0).pairwise["cohen_kappa"]
    assert np.isnan(np.diag(m)).all() and np.allclose(m, m.T, equal_nan=True)
