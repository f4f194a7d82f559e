"""Agent GRPO in the GUI (issue 13), driven through the real widgets: the run dialog's
environment, β, ECHO λ and watch settings reach prepare_run; the Runs screen lists a run's
episodes and renders one with its tool calls, plots the watch and the observation
cross-entropy from the events, shows alerts, and sends the held-out episodes to judges once."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings
from sqlalchemy import func, select

from app import sample
from app.training import runs
from app.workspace.db import open_workspace
from app.workspace.models import Assignment, Judge, ReviewRound, Trace
from tests.test_episodes import write_agent_run
from tests.test_training import TINY, db, sample_db  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def lead(ws):
    with ws.session() as s:
        return s.scalar(select(Judge).where(Judge.role == "lead"))


def line_points(ax) -> list[list[tuple[float, float]]]:
    return [list(zip(ln.get_xdata(), ln.get_ydata(), strict=True)) for ln in ax.lines]


def test_run_dialog_passes_environment_echo_and_watch(qtbot, db, tmp_path, monkeypatch):  # noqa: F811
    from ui.training.run_config import RunConfigDialog

    env_file = tmp_path / "sample_environment.py"
    env_file.write_text("def lookup_order(order_id: str) -> str:\n    return order_id\n")
    calls: list[dict] = []

    def prepare(s, algorithm, snapshot, model, run_dir, cfg, graders, **kw):
        calls.append({"algorithm": algorithm, "cfg": cfg, **kw})
        return SimpleNamespace(id=7)

    monkeypatch.setattr(runs, "prepare_run", prepare)
    monkeypatch.setattr(runs, "launch", lambda s, run: 1)
    monkeypatch.setenv("CHAMBERS_HOME", str(tmp_path / "home"))
    ws = open_workspace(db)
    dlg = RunConfigDialog(ws)
    qtbot.addWidget(dlg)
    dlg.model.setText(str(TINY))
    dlg.algorithm.setCurrentIndex(dlg.algorithm.findData("grpo"))
    assert dlg.environment.isEnabled() and dlg.watch_steps.isEnabled()
    # the paper's warning is on screen before any λ is typed, red once λ passes 0.005
    assert "0.005 was stable" in dlg.echo_warning.text() and "0.05 collapsed" in (
        dlg.echo_warning.text()
    )
    assert "#b42318" not in dlg.echo_warning.styleSheet()
    dlg.echo_lambda.setValue(0.05)
    assert "#b42318" in dlg.echo_warning.styleSheet() and "⚠" in dlg.echo_warning.text()
    dlg.echo_lambda.setValue(0.005)
    assert "scored online by graders" in dlg.method_help.text()
    dlg.environment.setCurrentIndex(dlg.environment.findData(str(sample.SAMPLE_ENVIRONMENT)))
    assert "played as episodes in the environment" in dlg.method_help.text()
    dlg.beta.setValue(0.04)
    dlg.watch_steps.setValue(2)
    dlg.watch_prompts.setValue(3)
    dlg.max_steps.setValue(4)
    for box in dlg.grader_boxes.values():
        box.setValue(0)
    dlg.grader_boxes["tools"].setValue(1.0)
    dlg.name.setText("agent")
    assert dlg.launch() == 7, dlg.problems.text()
    c = calls[-1]
    assert c["algorithm"] == "grpo" and c["environment"] == str(sample.SAMPLE_ENVIRONMENT)
    cfg = c["cfg"]
    assert (cfg.echo_lambda, cfg.watch_steps, cfg.watch_prompts, cfg.beta) == (0.005, 2, 3, 0.04)
    # replay, and a file chosen in the file dialog
    dlg.environment.setCurrentIndex(dlg.environment.findData("replay"))
    dlg.launch()
    assert calls[-1]["environment"] == "replay"
    monkeypatch.setattr(
        "ui.training.run_config.QFileDialog.getOpenFileName",
        lambda *a, **k: (str(env_file), "Python (*.py)"),
    )
    dlg.env_browse.click()
    assert dlg.environment.currentData() == str(env_file)
    dlg.launch()
    assert calls[-1]["environment"] == str(env_file)
    # none: prepare_run is called as before, without the keyword
    dlg.environment.setCurrentIndex(0)
    dlg.launch()
    assert "environment" not in calls[-1]
    # SFT: ECHO applies, the environment and the watch do not
    dlg.algorithm.setCurrentIndex(dlg.algorithm.findData("sft"))
    assert dlg.echo_lambda.isEnabled() and not dlg.environment.isEnabled()
    assert dlg.environment_choice() is None
    dlg.echo_lambda.setValue(0.002)
    assert dlg.config().echo_lambda == 0.002
    ws.close()


def test_runs_screen_shows_episodes_watch_alerts_obs_ce_and_sends_once(qtbot, db, tmp_path):  # noqa: F811
    from ui.training.agent_views import WatchPane
    from ui.training.runs_screen import RunsDialog

    ws = open_workspace(db)
    run_dir = tmp_path / "run"
    rid = write_agent_run(ws, run_dir)
    me = lead(ws)
    dlg = RunsDialog(ws, me, poll_ms=100)
    qtbot.addWidget(dlg)
    dlg.resize(1400, 900)
    dlg.show()
    dlg.select_run(rid)
    qtbot.waitUntil(lambda: dlg.episodes_pane.model.total == 6, timeout=20_000)
    pane = dlg.episodes_pane
    setup = dlg.setup.text()
    assert "environment: sample_environment.py (tools " in setup and "lookup_order" in setup
    assert "refused at preparation: 3 tasks whose reference has no tool calls" in setup
    assert "β 0.04" in setup and "ECHO λ 0.005" in setup
    assert "watch every 1 step on 2 held-out prompts" in setup
    assert "6 episodes logged (4 held-out)" in pane.counts.text()
    assert [pane.model.index(i, 0).data() for i in range(6)] == ["2"] * 3 + ["1"] * 3
    pane.split.setCurrentIndex(pane.split.findData("heldout"))
    assert pane.model.total == 4 and {pane.model.row(i)["split"] for i in range(4)} == {"heldout"}
    assert pane.model.index(0, 3).data() == "match 0.50  tools 1.00"
    user = next(
        m["content"]
        for m in json.loads((run_dir / "data" / "heldout.jsonl").read_text().splitlines()[0])[
            "prompt"
        ]
        if m["role"] == "user"
    )
    tasks = {pane.model.index(i, 7).data() for i in range(4)}
    assert " ".join(user.split())[:120] in tasks
    # selecting an episode renders the task's prompt, the tool calls and their results
    pane.table.selectRow(0)
    ep = pane.selected()
    msgs = ep["messages"]
    call = next(c for m in msgs for c in m.get("tool_calls") or [])
    result = next(m["content"] for m in msgs if m["role"] == "tool")
    text = pane.view.plain_text()
    assert f"→ {call['function']['name']}" in text
    assert next(iter(call["function"]["arguments"].values())) in text
    assert f"← {call['function']['name']} result" in text
    assert next(iter(json.loads(result))) in text  # the JSON result, decoded
    assert "System" in text and "User" in text
    assert "step 2" in pane.view.title.text() and "reward 1.500" in pane.view.title.text()

    # the watch plotted over steps from the events; the alert prominent; observation CE
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    watches = [e for e in events if e["event"] == "watch"]
    shown = dlg.watch_pane.plotted()
    for key in ("reward_mean", "kl", "completion_length", "copy_share"):
        assert shown[key] == [(w["step"], w[key]) for w in watches]
    assert shown["reward/match"] == [(1, 0.2), (2, 0.4)]
    axes = dlg.watch_pane.watch_chart.fig.axes
    assert [ax.get_title() for ax in axes] == [
        "held-out reward",
        "KL to the base model",
        "completion length",
        "share copying the prompt",
    ]
    assert line_points(axes[1])[0] == [(1, 0.01), (2, 0.02)]
    assert any(ln.get_xdata()[0] == 2 for ln in axes[0].lines if ln.get_linestyle() == ":")
    assert dlg.alert_banner.isVisible()
    assert "step 2: reward rose while copy share rose" in dlg.alert_banner.text()
    assert shown["obs_ce/train"] == [(1, 2.0), (2, 1.0)]
    assert shown["obs_ce/heldout"] == [(1, 2.0), (2, 1.5)]
    (obs_ax,) = dlg.watch_pane.obs_chart.fig.axes
    assert line_points(obs_ax) == [[(1, 2.0), (2, 1.0)], [(1, 2.0), (2, 1.5)]]
    assert not obs_ax.texts  # the "no observation tokens" note is for runs without any
    empty = WatchPane()
    qtbot.addWidget(empty)
    empty.set_data([{"step": 1, "loss": 0.3}], [{**watches[0], "obs_ce": None}], [])
    (note,) = empty.obs_chart.fig.axes[0].texts
    assert note.get_text().startswith("no observation tokens logged")

    # the run writes on: a new step's episode (after a half-written line) and watch arrive
    extra = json.dumps({k: v for k, v in ep.items() if k != "line"} | {"step": 3})
    with open(run_dir / "episodes.jsonl", "a") as f:
        f.write(extra[:50])  # half written: not listed until the line is whole
    qtbot.wait(300)
    assert pane.model.total == 4
    with open(run_dir / "episodes.jsonl", "a") as f:
        f.write(extra[50:] + "\n" + extra.replace('"index": 0', '"index": 1') + "\n")
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps({**watches[-1], "step": 3, "kl": 0.5}) + "\n")
    qtbot.waitUntil(lambda: pane.model.total == 6, timeout=10_000)
    qtbot.waitUntil(lambda: len(dlg.watch_pane.plotted()["kl"]) == 3, timeout=10_000)
    assert dlg.watch_pane.plotted()["kl"][-1] == (3, 0.5)

    # one click sends the held-out episodes to judges; a second click adds nothing
    with ws.session() as s:
        n_before = s.scalar(select(func.count(Trace.id)))
        n_judges = s.scalar(
            select(func.count(Judge.id)).where(Judge.role == "judge", Judge.active.is_(True))
        )
    assert dlg.send_button.isEnabled()
    dlg.send_button.click()
    qtbot.waitUntil(lambda: dlg.sent.isVisible(), timeout=20_000)
    assert "Sent 6 held-out episodes" in dlg.sent.text(), dlg.sent.text()
    with ws.session() as s:
        sent = list(s.scalars(select(Trace).where(Trace.source == "run:agent-grpo")))
        assert len(sent) == 6 == s.scalar(select(func.count(Trace.id))) - n_before
        rnd = s.scalar(select(ReviewRound).where(ReviewRound.name == "agent-grpo held-out"))
        assert rnd.created_by == me.id and rnd.overlap == min(2, n_judges)
        rows = s.execute(
            select(Assignment.trace_id, func.count(Assignment.judge_id))
            .where(Assignment.round_id == rnd.id)
            .group_by(Assignment.trace_id)
        ).all()
        assert dict(rows) == {t.id: rnd.overlap for t in sent}
        n_assign = s.scalar(select(func.count(Assignment.id)))
    dlg.sent.hide()
    qtbot.waitUntil(lambda: dlg.send_button.isEnabled(), timeout=10_000)
    dlg.send_button.click()
    qtbot.waitUntil(lambda: dlg.sent.isVisible(), timeout=20_000)
    assert "already" in dlg.sent.text() and "agent-grpo held-out" in dlg.sent.text()
    with ws.session() as s:
        assert s.scalar(select(func.count(Trace.id))) == n_before + 6
        assert s.scalar(select(func.count(Assignment.id))) == n_assign
        assert (
            s.scalar(select(func.count(ReviewRound.id)).where(ReviewRound.name.like("agent%"))) == 1
        )
    for i, name in enumerate(("training", "watch", "episodes")):  # each tab paints
        dlg.tabs.setCurrentIndex(i)
        qtbot.wait(50)
        assert dlg.grab().save(str(tmp_path / f"runs-{name}.png"))
    dlg.close()
    ws.close()


def test_run_dialog_builds_the_demo_model_in_its_own_process(qtbot, db, tmp_path, monkeypatch):  # noqa: F811
    """A new user with no model: Build demo model runs `python -m trainer demo-model` (a short
    pre-training here), the dialog stays live, and the model field is filled when it is done;
    a second click reuses the build."""
    from transformers import AutoTokenizer

    from ui.training.run_config import RunConfigDialog

    monkeypatch.setenv("CHAMBERS_HOME", str(tmp_path / "home"))
    ws = open_workspace(db)
    dlg = RunConfigDialog(ws)
    qtbot.addWidget(dlg)
    dlg.demo_steps = 2
    assert dlg.model.text() == ""
    dlg.demo_button.click()
    assert not dlg.demo_button.isEnabled() and "Building the demo model" in dlg.demo_status.text()
    out = tmp_path / "home" / "demo-model"
    qtbot.waitUntil(lambda: dlg.model.text() == str(out), timeout=240_000)
    assert dlg.demo_button.isEnabled() and "Demo model ready" in dlg.demo_status.text()
    tok = AutoTokenizer.from_pretrained(out)
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "lookup_order", "parameters": {}}}],
        tokenize=False,
    )
    assert "lookup_order" in rendered  # the tool-aware template came with it
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    dlg.model.setText("")
    dlg.demo_button.click()  # built already: used as it is, nothing rebuilt
    assert dlg.model.text() == str(out) and dlg.demo_process is None
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    ws.close()
