"""The Pairs and Runs screens driven through the real widgets: filters and snapshots, a DPO
run launched from the config dialog and watched live, reattaching after the window closes,
cancel, and a crash shown without taking the app down."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from sqlalchemy import select

from app.training import pairs as pr
from app.training import runs
from app.workspace.db import open_workspace
from app.workspace.models import DatasetSnapshot, Judge, TrainingRun
from tests.test_training import TINY, db, events_of, sample_db  # noqa: F401 - fixtures
from ui.training.pairs_screen import PAIR_COLUMNS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def user(ws, name="Rosa Lindqvist"):
    with ws.session() as s:
        return s.scalar(select(Judge).where(Judge.name == name))


def applied(qtbot, dlg) -> None:
    """Apply the filters and wait for the executor's rows (the UI thread never blocks)."""
    with qtbot.waitSignal(dlg.loaded, timeout=60_000):
        dlg.refresh()
    qtbot.waitUntil(lambda: dlg.diff.toPlainText() != "", timeout=10_000)


def cells(dlg, col: int) -> set[str]:
    return {PAIR_COLUMNS[col].text(r) for r in dlg.rows}


def test_pairs_screen_filters_shows_diff_and_snapshots(qtbot, db):  # noqa: F811
    from ui.training.pairs_screen import PairsDialog

    ws = open_workspace(db)
    dlg = PairsDialog(ws, user(ws))
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: not dlg.busy, timeout=60_000)
    everything = len(dlg.rows)
    dlg.rules["ranked"].setChecked(False)
    dlg.rules["reject_with_answer"].setChecked(False)
    dlg.rules["first_error"].setChecked(False)
    with qtbot.waitSignal(dlg.pair_shown, timeout=10_000):
        applied(qtbot, dlg)
    assert 0 < len(dlg.rows) < everything
    # first_error pairs are modify pairs the judge localised: the modify rule keeps them
    assert cells(dlg, 1) <= {"modify", "first_error"}
    text = dlg.diff.toPlainText()
    assert "Rejected → chosen" in text and "+++ chosen" in text
    assert f"{len(dlg.rows)} pairs" in dlg.counts.text()
    dlg.judges.setText("Hana Sato")
    applied(qtbot, dlg)
    hana = len(dlg.rows)
    # pairs several judges made alike list them all (merged provenance)
    assert hana > 0 and all("Hana Sato" in PAIR_COLUMNS[5].text(r) for r in dlg.rows)
    dlg.since.setText("2999-01-01")
    applied(qtbot, dlg)
    assert dlg.rows == [] and "No pairs match" in dlg.diff.toPlainText()
    dlg.judges.clear()
    dlg.since.clear()
    applied(qtbot, dlg)
    with qtbot.waitSignal(dlg.snapshot_created, timeout=30_000):
        assert dlg.create_snapshot("gui-modify")
    with ws.session() as s:
        snap = s.scalar(select(DatasetSnapshot).where(DatasetSnapshot.name == "gui-modify"))
        assert sum(snap.counts["by_rule"].values()) == len(dlg.rows)
        assert set(snap.counts["by_rule"]) <= {"modify", "first_error"}
    with qtbot.waitSignal(dlg.snapshot_failed, timeout=30_000):
        assert dlg.create_snapshot("gui-modify")
    assert "exists already" in dlg.message.text()
    dlg.close()
    assert not dlg.executor.running
    ws.close()


def test_pairs_screen_works_off_the_ui_thread_in_a_lazy_table(
    qtbot,
    qtmodeltester,
    db,  # noqa: F811
    monkeypatch,
):
    import threading

    from app.training import pair_table
    from ui.training import pairs_screen
    from ui.widgets.lazy_model import BATCH

    threads: list[str] = []
    real = pair_table.pair_table

    def spy(*a, **k):
        threads.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(pairs_screen, "pair_table", spy)
    ws = open_workspace(db)
    dlg = pairs_screen.PairsDialog(ws, user(ws))
    qtbot.addWidget(dlg)
    # opening returns at once: busy, Apply off, the work queued on the executor's thread
    assert dlg.busy and not dlg.apply_button.isEnabled()
    assert "Deriving" in dlg.counts.text()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=60_000)
    assert threads == ["chambers-db"] and dlg.apply_button.isEnabled()
    qtmodeltester.check(dlg.model)
    n = len(dlg.rows)
    assert n == dlg.model.total and dlg.model.rowCount() == min(n, BATCH)
    while dlg.model.canFetchMore():
        dlg.model.fetchMore()
    assert dlg.model.rowCount() == n
    qtmodeltester.check(dlg.model)
    first = dlg.model.index(0, 0).data()
    assert first == str(dlg.rows[0].pair_id)
    dlg.close()
    ws.close()


def test_runs_screen_launches_watches_reattaches_and_cancels(
    qtbot,
    qtmodeltester,
    db,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from ui.training.run_config import RunConfigDialog
    from ui.training.runs_screen import RunsDialog

    monkeypatch.setenv("CHAMBERS_HOME", str(tmp_path / "home"))
    ws = open_workspace(db)
    cfg = RunConfigDialog(ws)
    qtbot.addWidget(cfg)
    cfg.snapshot.setCurrentIndex(cfg.snapshot.findData("all"))
    cfg.model.setText(str(TINY))
    cfg._defaults()
    assert cfg.lr.value() == pytest.approx(5e-4)  # tiny model: the small-model defaults
    cfg.max_steps.setValue(3)
    cfg.name.setText("gui-dpo")
    cfg.accept()
    assert cfg.run_id is not None, cfg.problems.text()
    dlg = RunsDialog(ws, user(ws), poll_ms=200)
    qtbot.addWidget(dlg)
    dlg.select_run(cfg.run_id)
    qtbot.waitUntil(lambda: "finished" in dlg.title.text(), timeout=120_000)
    ev = events_of(tmp_path / "home" / "runs" / "gui-dpo")
    losses = [e["metrics"]["loss"] for e in ev if e["event"] == "log" and "loss" in e["metrics"]]
    assert dlg.plotted()["loss"] == losses and len(losses) == 3
    assert len(dlg.plotted()["rewards/margins"]) == 3
    assert dlg.progress.value() == dlg.progress.maximum() == 3
    png = tmp_path / "plots.png"
    dlg.fig.savefig(png)
    assert png.read_bytes()[:4] == b"\x89PNG"

    # a long run, the window closed while it trains, reopened: it reattaches, then cancels
    with ws.session() as s:
        run = runs.prepare_run(
            s,
            "dpo",
            "all",
            TINY,
            tmp_path / "long",
            {"max_steps": 400, "save_steps": 1000},
            name="long",
        )
        runs.launch(s, run)
        long_id = run.id
    dlg.close()
    deadline = time.time() + 120
    while time.time() < deadline and not any(
        e["event"] == "log" for e in runs.read_events(tmp_path / "long")[0]
    ):
        time.sleep(0.2)
    again = RunsDialog(ws, user(ws), poll_ms=200)
    qtbot.addWidget(again)
    again.select_run(long_id)  # the list is read on the executor
    qtbot.waitUntil(lambda: "running" in again.title.text() and bool(again.history), timeout=30_000)
    qtmodeltester.check(again.model)
    assert [again.model.index(i, 0).data() for i in range(again.model.rowCount())] == [
        "gui-dpo",
        "long",
    ]
    assert again.cancel_button.isEnabled()
    again.cancel()
    qtbot.waitUntil(lambda: "cancelled" in again.title.text(), timeout=120_000)
    with ws.session() as s:
        assert s.get(TrainingRun, long_id).status == "cancelled"
    # Resume: from the checkpoint the cancel saved, to a nearer end
    qtbot.waitUntil(lambda: again.resume_button.isEnabled(), timeout=10_000)
    at = int(Path(again.checkpoint).name.split("-")[1])
    cfg = json.loads((tmp_path / "long" / "config.json").read_text())
    cfg["training"]["max_steps"] = at + 1
    (tmp_path / "long" / "config.json").write_text(json.dumps(cfg))
    assert again.resume()
    assert not again.resume_button.isEnabled()
    qtbot.waitUntil(lambda: "finished" in again.title.text(), timeout=180_000)
    steps = [e["step"] for e in events_of(tmp_path / "long") if e["event"] == "log"]
    assert steps[-1] == at + 1
    ws.close()


def test_run_dialog_offers_sft_and_snapshots_the_verdicts(qtbot, db, tmp_path, monkeypatch):  # noqa: F811
    from ui.training.run_config import RunConfigDialog
    from ui.training.runs_screen import RunsDialog

    monkeypatch.setenv("CHAMBERS_HOME", str(tmp_path / "home"))
    ws = open_workspace(db)
    cfg = RunConfigDialog(ws)
    qtbot.addWidget(cfg)
    assert [cfg.algorithm.itemData(i) for i in range(cfg.algorithm.count())] == [
        "sft",
        "kto",
        "dpo",
        "grpo",
    ]
    cfg.algorithm.setCurrentIndex(cfg.algorithm.findData("sft"))
    assert "approved steps and corrected steps" in cfg.method_help.text()
    assert cfg.snapshot.findData("all") == -1  # a snapshot of pairs does not feed SFT
    cfg.model.setText(str(TINY))
    cfg._defaults()
    cfg.name.setText("gui-sft")
    cfg.max_steps.setValue(2)
    assert cfg.launch() is None and "snapshot the verdicts now" in cfg.problems.text()
    name = cfg.snapshot_verdicts()
    assert name and cfg.snapshot.currentData() == name
    assert "desirable" in cfg.method_help.text()
    assert cfg.config().lora_alpha is None and cfg.config().resolved().lora_alpha == 2 * 8
    cfg.accept()
    assert cfg.run_id is not None, cfg.problems.text()
    dlg = RunsDialog(ws, user(ws), poll_ms=200)
    qtbot.addWidget(dlg)
    dlg.select_run(cfg.run_id)
    qtbot.waitUntil(lambda: "finished" in dlg.title.text(), timeout=180_000)
    assert len(dlg.plotted()["loss"]) == 2 and len(dlg.plotted()["mean_token_accuracy"]) == 2
    manifest = json.loads((tmp_path / "home" / "runs" / "gui-sft" / "manifest.json").read_text())
    assert manifest["algorithm"] == "sft" and manifest["data"]["source"] == "verdicts"
    cfg.algorithm.setCurrentIndex(cfg.algorithm.findData("dpo"))
    assert cfg.snapshot.findData("all") >= 0 and cfg.snapshot.findData(name) == -1
    ws.close()


def test_a_crashed_run_shows_its_error(qtbot, db, tmp_path):  # noqa: F811
    from ui.training.runs_screen import RunsDialog

    ws = open_workspace(db)
    with ws.session() as s:
        run = runs.prepare_run(
            s, "dpo", "all", TINY, tmp_path / "crash", {"max_steps": 2}, name="crash"
        )
        cfg = json.loads((tmp_path / "crash" / "config.json").read_text())
        cfg["fail_for_test"] = "the dataset could not be tokenised"
        (tmp_path / "crash" / "config.json").write_text(json.dumps(cfg))
        runs.launch(s, run)
        rid = run.id
    dlg = RunsDialog(ws, user(ws), poll_ms=200)
    qtbot.addWidget(dlg)
    dlg.select_run(rid)
    qtbot.waitUntil(lambda: "failed" in dlg.title.text(), timeout=120_000)
    assert "RuntimeError: the dataset could not be tokenised" in dlg.title.text()
    assert not dlg.cancel_button.isEnabled()
    ws.close()


def test_pairs_filter_object_round_trip():
    f = pr.PairFilter(rules=["modify"], min_margin=0.2)
    # the per-task cap of ranked pairs is part of every selection (and so of its snapshot)
    assert f.as_dict() == {
        "rules": ["modify"],
        "min_margin": 0.2,
        "max_per_task": pr.DEFAULT_MAX_PER_TASK,
        "heldout": 0.1,
        "seed": 0,
    }
