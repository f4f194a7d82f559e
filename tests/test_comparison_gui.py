"""The blind comparison view and the Models screen through real widgets (offscreen), on a
stored evaluation: nothing on screen names a model, keys 1/2/3 and Ctrl+Enter judge, the
verdict lands in the workspace resolved to the right model; the Models screen shows the
lineage tree, the gate and refuses, forces with a reason, rolls back."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QLineEdit,
    QTextEdit,
    QTreeWidget,
)
from sqlalchemy import select

from app.review.reviews import get_or_create_judge
from app.sample import JUDGES, build_sample
from app.training import comparison as cmp
from app.training.registry import current
from app.workspace import audit
from app.workspace.db import open_workspace
from app.workspace.models import (
    ComparisonVerdict,
    EvalItem,
    EvalOutput,
    Evaluation,
    Judge,
    RegisteredModel,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE, CAND = "Zephyrbase-7B", "Quokkarun-42"  # names that must never reach the judge's screen


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def text_output(text: str) -> dict:
    return {"role": "assistant", "parts": [{"type": "text", "text": text}]}


@pytest.fixture
def ws(tmp_path):
    """A sample workspace with a stored evaluation of 3 items (outputs written directly: the
    trainer's part is tested in test_evaluation.py)."""
    w = open_workspace(str(tmp_path / "ws.sqlite"))
    build_sample(w, n_traces=20)
    with w.session() as s:
        base = RegisteredModel(name=BASE, kind="base", path=str(tmp_path / BASE))
        s.add(base)
        s.flush()
        cand = RegisteredModel(
            name=CAND,
            kind="candidate",
            parent_id=base.id,
            path=str(tmp_path / "adapter"),
            lineage={"parent": BASE, "rubric_version_ids": [1], "graders": []},
        )
        s.add(cand)
        s.flush()
        ev = Evaluation(
            name="ev",
            candidate_id=cand.id,
            baseline_id=base.id,
            tasks="heldout",
            decoding={"max_new_tokens": 8},
            graders=[{"name": "match", "weight": 1.0}],
            eval_dir=str(tmp_path / "ev"),
            status="finished",
        )
        s.add(ev)
        s.flush()
        for i in range(3):
            item = EvalItem(
                evaluation_id=ev.id,
                position=i,
                prompt=[
                    {"role": "system", "content": "You are a support agent."},
                    {"role": "user", "content": f"Where is order {i}?"},
                ],
                reference={"answer": f"Order {i} ships today."},
            )
            s.add(item)
            s.flush()
            for side, model, text in (
                ("baseline", base, f"BASE-TEXT-{i}"),
                ("candidate", cand, f"CAND-TEXT-{i}"),
            ):
                s.add(
                    EvalOutput(
                        item_id=item.id,
                        side=side,
                        model_id=model.id,
                        text=text,
                        message=text_output(text),
                        scores={"match": 0.5},
                        score=0.5,
                    )
                )
        judges = [get_or_create_judge(s, n).id for n, _ in JUDGES]
        cmp.create_round(s, "ab1", "ev", judges, k=3, seed=11)
    yield w
    w.close()


def judge(ws, name):
    with ws.session() as s:
        return s.scalar(select(Judge).where(Judge.name == name))


def all_texts(widget) -> str:
    """Every text a widget tree shows: labels, buttons, combos, editors, titles, tooltips."""
    out = [widget.windowTitle()]
    for w in widget.findChildren(object):
        if isinstance(w, QLabel | QAbstractButton):
            out.append(w.text())
        if isinstance(w, QComboBox):
            out += [w.itemText(i) for i in range(w.count())]
        if isinstance(w, QTextEdit):
            out.append(w.toPlainText())
        if isinstance(w, QLineEdit):
            out += [w.text(), w.placeholderText()]
        if hasattr(w, "toolTip"):
            out.append(w.toolTip())
    return "\n".join(out)


def test_judge_view_is_blind_and_keyboard_first(qtbot, ws):
    from ui.review.comparison_view import ComparisonDialog

    ines = judge(ws, JUDGES[0][0])
    dlg = ComparisonDialog(ws, ines)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.rounds.currentText() == "ab1" and len(dlg.queue) == 3
    seen_sides = []
    for step in range(3):
        text = all_texts(dlg)
        for forbidden in (BASE, CAND, "baseline", "candidate", "Zephyr", "Quokka", "0.5"):
            assert forbidden not in text, (step, forbidden)
        assert "Where is order" in dlg.prompt.plain_text()
        a, b = dlg.pane_a.browser.toPlainText(), dlg.pane_b.browser.toPlainText()
        assert {a.split("-TEXT-")[0][-4:], b.split("-TEXT-")[0][-4:]} == {"BASE", "CAND"}
        seen_sides.append("CAND" in a)
        with ws.session() as s:
            v = s.get(ComparisonVerdict, dlg.queue[dlg.index])
            assert ("CAND" in a) == (v.a_side == "candidate")
        # a digit typed into the rationale is text, not a verdict
        dlg.rationale.setFocus()
        qtbot.keyClicks(dlg.rationale, "2 is long")
        assert dlg.choice is None
        dlg.setFocus()
        qtbot.keyClick(dlg, Qt.Key.Key_1)  # A is better
        assert dlg.buttons["A"].isChecked()
        qtbot.keyClick(dlg, Qt.Key.Key_3)  # changed my mind: tie
        assert dlg.choice == "tie" and not dlg.buttons["A"].isChecked()
        qtbot.keyClick(dlg, Qt.Key.Key_1 if step < 2 else Qt.Key.Key_3)
        with qtbot.waitSignal(dlg.submitted):
            qtbot.keyClick(dlg, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    with ws.session() as s:
        vs = cmp.queue(s, cmp.get_round(s, "ab1").id, ines.id)
        assert [v.choice for v in vs] == ["A", "A", "tie"]
        assert all(v.rationale == "2 is long" for v in vs)
        resolved = [cmp.winner(v) for v in vs]
        assert resolved[:2] == ["candidate" if s_ else "baseline" for s_ in seen_sides[:2]]
    dlg.grab().save("/tmp/chambers-comparison.png")


def test_submit_without_a_choice_is_refused_and_says_how(qtbot, ws):
    from ui.review.comparison_view import ComparisonDialog

    dlg = ComparisonDialog(ws, judge(ws, JUDGES[1][0]))
    qtbot.addWidget(dlg)
    assert dlg.submit() is False and "1, 2 or 3" in dlg.message.text()


def test_models_screen_tree_gate_force_and_rollback(qtbot, ws):
    from ui.training.models_screen import ModelsDialog

    with ws.session() as s:
        lead = s.scalar(select(Judge).where(Judge.role == "lead"))
    dlg = ModelsDialog(ws, lead)
    qtbot.addWidget(dlg)
    tree: QTreeWidget = dlg.tree
    top = tree.topLevelItem(0)
    assert top.text(0) == BASE and top.child(0).text(0) == CAND
    tree.setCurrentItem(top.child(0))
    html = dlg.details.toPlainText()
    assert "Gate (win-rate CI lower bound > 0.5" in html and "FAILED" in html
    assert "✘ comparison: round ab1: 0 verdicts" in html
    assert dlg.promote(force_reason="") is False  # forced without a reason: refused
    assert "needs a --reason" in dlg.status.text()
    assert dlg.promote(force_reason="demo for the team") is True
    assert "current" in tree.topLevelItem(0).child(0).text(2)
    with ws.session() as s:
        assert current(s).name == CAND
        forced = [e for e in audit.entries(s, "model") if e.action == "force_promote"]
        assert forced and forced[0].details["reason"] == "demo for the team"
    assert dlg.rollback() is False and "only one model" in dlg.status.text()
    dlg.grab().save("/tmp/chambers-models.png")


def test_models_screen_follows_changes_made_elsewhere(qtbot, ws):
    """A promotion by another lead (another window, the command line) shows up by itself."""
    from app.training import gate
    from app.training.registry import get_model
    from ui.training.models_screen import ModelsDialog

    with ws.session() as s:
        lead = s.scalar(select(Judge).where(Judge.role == "lead"))
    dlg = ModelsDialog(ws, lead, poll_ms=50)
    qtbot.addWidget(dlg)
    row = dlg.tree.topLevelItem(0).child(0)
    assert row.text(0) == CAND and "current" not in row.text(2)
    with ws.session() as s:
        gate.promote(s, get_model(s, CAND), lead.name, reason="done elsewhere", force=True)
    qtbot.waitUntil(lambda: "current" in dlg.tree.topLevelItem(0).child(0).text(2), timeout=10_000)
    dlg.close()
