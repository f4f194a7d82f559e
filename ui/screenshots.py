"""Render the README's screenshots offscreen: `python -m ui.screenshots DIR`.

Builds the sample workspace in a temporary file, then captures the judge's main window, the
lead's view with every judge's review, the 40-step airline trace with its outline, side pane
and error, the Modify editor and its word diff, and the keyboard help.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(out_dir: str, tiny_model: str | None = None) -> int:
    tiny_model = tiny_model or str(
        Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-qwen2"
    )
    from PySide6.QtCore import QSettings
    from sqlalchemy import select

    from app.sample import build_sample
    from app.workspace.db import open_workspace
    from app.workspace.models import Judge
    from ui.application import make_app
    from ui.review.shortcuts import ShortcutsDialog
    from ui.review.window import MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
        app = make_app()
        ws = open_workspace(str(Path(tmp) / "sample.sqlite"))
        build_sample(ws)
        with ws.session() as s:
            judge = s.scalar(select(Judge).where(Judge.name == "Hana Sato"))
            lead = s.scalar(select(Judge).where(Judge.role == "lead"))

        def settle() -> None:
            for _ in range(5):
                app.processEvents()

        w = MainWindow(ws, judge)
        w.executor.wait_idle()  # counters and lists fill in from the workspace executor
        w.resize(1500, 920)
        w.show()
        settle()
        misread = next(
            i
            for i in range(w.model.rowCount())
            if w.model.queue_row(i).status == "todo"
            and "package" in w.model.queue_row(i).task
            and w.model.queue_row(i).outcome == 0
        )
        w.select_row(misread)
        settle()
        w.panel.digit(0)
        w.panel.digit(1)
        w.panel.digit(2)
        w.panel.digit(2)
        w.panel.set_decision("reject")
        w.panel.rationale.setPlainText(
            "The agent contradicts the carrier's status: the tool result says otherwise."
        )
        settle()
        w.grab().save(str(out / "review-bench.png"))
        w.dirty = False
        w.close()

        lw = MainWindow(ws, lead)
        lw.resize(1500, 920)
        lw.show()
        lw.select_row(lw.model.row_of(4) or 0)
        lw.tabs.setCurrentIndex(2)
        lw.executor.wait_idle()  # All reviews is read on the executor
        settle()
        lw.grab().save(str(out / "lead-all-reviews.png"))
        lw.close()
        trace_shots(ws, lead, out, settle)

        from ui.lead.adjudication import AdjudicationDialog
        from ui.lead.agreement_dashboard import AgreementDashboard
        from ui.lead.rubric_editor import RubricEditor

        editor = RubricEditor(ws, lead)
        editor.criteria.setCurrentRow(3)
        editor.show()
        settle()
        editor.grab().save(str(out / "rubric-editor.png"))
        editor.tabs.setCurrentIndex(2)
        settle()
        editor.grab().save(str(out / "rubric-diff.png"))
        editor.close()

        dash = AgreementDashboard(ws, lead)
        dash.version.setCurrentIndex(dash.version.findText("Support agent quality v1"))
        dash.round.setCurrentIndex(dash.round.findText("Calibration round 1"))
        dash.show()
        dash.refresh()
        while dash.report is None:
            app.processEvents()
        settle()
        dash.grab().save(str(out / "agreement-dashboard.png"))
        dash.table.selectRow(3)
        dash.tabs.setCurrentIndex(1)
        settle()
        dash.grab().save(str(out / "agreement-judges.png"))
        dash.tabs.setCurrentIndex(2)
        settle()
        dash.grab().save(str(out / "agreement-trend.png"))
        top = dash.report.disagreements[0].trace_id
        adj = AdjudicationDialog(ws, lead, top, dash.report.version_id)
        adj.show()
        settle()
        adj.grab().save(str(out / "adjudication.png"))
        adj.close()
        dash.close()

        from app.training import pairs as pr
        from app.training import runs as rn
        from ui.training.pairs_screen import PairsDialog

        pairs_dialog = PairsDialog(ws, lead)
        for step in ("open", "apply"):
            while pairs_dialog.busy:  # derived and selected on the workspace executor
                app.processEvents()
            if step == "open":
                pairs_dialog.rules["ranked"].setChecked(False)
                pairs_dialog.refresh()
        pairs_dialog.show()
        settle()
        pairs_dialog.grab().save(str(out / "pairs.png"))
        pairs_dialog.close()
        with ws.session() as s:
            pr.create_snapshot(s, "support-v1", pr.PairFilter())
            run = rn.prepare_run(
                s,
                "dpo",
                "support-v1",
                Path(tiny_model),
                Path(tmp) / "run",
                {"max_steps": 40, "logging_steps": 2},
                name="dpo-support-v1",
            )
            rn.launch(s, run)
            run_id = run.id
        runs_dialog = _run_to_end(app, ws, lead, run_id, (1400, 860), 300)
        settle()
        runs_dialog.grab().save(str(out / "runs.png"))
        runs_dialog.close()
        agent_run_shots(ws, lead, out, Path(tiny_model), Path(tmp), app)

        help_dialog = ShortcutsDialog()
        help_dialog.show()
        settle()
        help_dialog.grab().save(str(out / "shortcuts.png"))
        ws.close()
    print(f"screenshots written to {out}")
    return 0


AGENT_MODEL = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-qwen2-agent"


def _run_to_end(app, ws, lead, run_id: int, size: tuple[int, int], seconds: float):
    """The Runs screen on a launched run, once it has finished or failed (or `seconds`)."""
    import time

    from ui.training.runs_screen import RunsDialog

    dlg = RunsDialog(ws, lead, poll_ms=200)
    dlg.resize(*size)
    dlg.show()
    dlg.select_run(run_id)
    deadline = time.time() + seconds
    while not any(w in dlg.title.text() for w in ("finished", "failed")):
        if time.time() > deadline:
            break
        app.processEvents()
        time.sleep(0.05)
    return dlg


def agent_run_shots(ws, lead, out: Path, tiny_model: Path, tmp: Path, app) -> None:
    """Agent GRPO on the sample with its environment, the reward-hacking watch every step and
    ECHO, on the demo model pre-trained to call the sample's tools (`chambers demo-model`):
    the Runs screen's Watch tab, and its Episodes tab on an episode with a tool call."""

    from app.sample import SAMPLE_ENVIRONMENT
    from app.training import runs as rn
    from app.training.graders import parse

    with ws.session() as s:
        run = rn.prepare_run(
            s,
            "grpo",
            "support-v1",
            AGENT_MODEL if AGENT_MODEL.is_dir() else tiny_model,
            tmp / "agent-run",
            {
                "max_steps": 4,
                "num_generations": 2,
                "max_completion_length": 96,
                "beta": 0.04,
                "echo_lambda": 0.005,
                "watch_steps": 1,
                "watch_prompts": 2,
            },
            parse(["match:1.0", "tools:0.5"]),
            name="grpo-agent",
            force=True,
            environment=str(SAMPLE_ENVIRONMENT),
        )
        rn.launch(s, run)
        run_id = run.id
    dlg = _run_to_end(app, ws, lead, run_id, (1400, 900), 400)
    dlg.executor.wait_idle()
    dlg.tabs.setCurrentWidget(dlg.watch_pane)
    for _ in range(5):
        app.processEvents()
    dlg.grab().save(str(out / "runs-agent-watch.png"))
    pane = dlg.episodes_pane
    dlg.tabs.setCurrentWidget(pane)
    pane.poll()
    dlg.executor.wait_idle()
    for _ in range(5):
        app.processEvents()
    called = pane.model.find(lambda e: e["tool_calls"] > 0 and e["split"] == "train")
    if called is not None:
        pane.table.selectRow(called)
    for _ in range(5):
        app.processEvents()
    dlg.grab().save(str(out / "runs-agent-episodes.png"))
    dlg.close()


AIRLINE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tau_airline_40.jsonl"


def trace_shots(ws, lead, out: Path, settle) -> None:
    """The 40-step airline trace: outline, side pane and the error result; the editor on the
    wrong booking, the conversation around it, and its word diff; step labels."""
    import json

    from sqlalchemy import select

    from app.traces.ingest import import_paths
    from app.workspace.models import Trace
    from ui.review.window import MainWindow

    import_paths(ws, [AIRLINE])
    with ws.session() as s:
        trace_id = s.scalar(select(Trace.id).where(Trace.external_id == "tau-airline-17"))
    w = MainWindow(ws, lead)
    w.resize(1920, 1080)
    w.show()
    while w.model.row_of(trace_id) is None and w.model.canFetchMore():
        w.model.fetchMore()
    w.select_row(w.model.row_of(trace_id))
    w.splitter.setSizes([300, 1180, 440])
    if w.trace_view.context.isHidden():
        w.trace_view.toggle_context()  # the policy and tool schemas beside the trace
    w.trace_view.split.setSizes([250, 600, 330])
    settle()
    w.trace_view.jump("error", 1)
    w.trace_view.jump("tool", -1)  # the call that failed
    w.step_labels = {
        18: {
            "step": 18,
            "label": "first_error",
            "reason": "wrong arguments",
            "comment": "gift card 30, not 34",
        }
    }
    w.trace_view.set_labels(w.step_labels)
    w.trace_view.go_to_step(18)
    settle()
    w.grab().save(str(out / "trace-outline-policy-error.png"))
    w.open_editor(18)
    dlg = w.editor
    args = json.loads(dlg.args_edit.toPlainText())
    args["payment_methods"][1]["amount"] = 34
    dlg.args_edit.setPlainText(json.dumps(args, indent=2, ensure_ascii=False))
    settle()
    dlg.grab().save(str(out / "modify-step-editor.png"))
    dlg.tabs.setCurrentIndex(1)
    settle()
    dlg.grab().save(str(out / "modify-word-diff.png"))
    dlg.reject()
    w.dirty = False
    w.close()


def trace_only(out_dir: str) -> int:
    """Only the trace screenshots, on a small sample (quick to regenerate)."""
    from PySide6.QtCore import QSettings
    from sqlalchemy import select

    from app.sample import build_sample
    from app.workspace.db import open_workspace
    from app.workspace.models import Judge
    from ui.application import make_app
    from ui.review.shortcuts import ShortcutsDialog

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
        app = make_app()
        ws = open_workspace(str(Path(tmp) / "sample.sqlite"))
        build_sample(ws, n_traces=60)
        with ws.session() as s:
            lead = s.scalar(select(Judge).where(Judge.role == "lead"))

        def settle() -> None:
            for _ in range(5):
                app.processEvents()

        trace_shots(ws, lead, out, settle)
        help_dialog = ShortcutsDialog()
        help_dialog.show()
        settle()
        help_dialog.grab().save(str(out / "shortcuts.png"))
        ws.close()
    print(f"trace screenshots written to {out}")
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--trace-only"]
    target = args[0] if args else "resources/screenshots"
    sys.exit(trace_only(target) if "--trace-only" in sys.argv else main(target))
