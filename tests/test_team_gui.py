"""The profile picker follows the team rules: first profile is the lead, only a lead creates."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from sqlalchemy import select

from app.review.team import create_profile
from app.workspace.db import open_workspace
from app.workspace.models import AuditEntry, Judge


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture
def picker(qtbot, monkeypatch):
    """pick_judge with the dialog 'filled in' by the test instead of a person."""
    from ui.application import make_app
    from ui.review import profile_dialog

    make_app()
    shown, warnings = [], []

    def run(ws, typed: str, role: str = "judge", acting=None):
        def fake_exec(dlg):
            shown.append(dlg)
            dlg.combo.setEditText(typed) if dlg.combo.isEditable() else None
            dlg.role.setCurrentText(role) if dlg.role.isEnabled() else None
            return 1

        monkeypatch.setattr(profile_dialog.ProfileDialog, "exec", fake_exec)
        monkeypatch.setattr(profile_dialog.QMessageBox, "warning", lambda *a: warnings.append(a[2]))
        return profile_dialog.pick_judge(ws, None, acting=acting)

    return run, shown, warnings


def test_first_profile_made_in_the_picker_is_the_lead(tmp_path, picker):
    run, shown, _ = picker
    ws = open_workspace(str(tmp_path / "w.sqlite"))
    j = run(ws, "Ann", "judge")
    assert (j.name, j.role) == ("Ann", "lead")
    dlg = shown[0]
    assert dlg.combo.isEditable() and not dlg.role.isEnabled()
    assert "first profile" in dlg.hint.text()


def test_without_a_lead_acting_the_picker_only_picks(tmp_path, picker):
    run, shown, warnings = picker
    ws = open_workspace(str(tmp_path / "w.sqlite"))
    with ws.session() as s:
        lead = create_profile(s, "Ann", "lead", None)
        create_profile(s, "Bob", "judge", lead)
    j = run(ws, "Mallory", "lead")
    assert not shown[0].combo.isEditable() and "Only a lead" in shown[0].hint.text()
    assert j.name in ("Ann", "Bob")  # whatever was selected, never a new profile
    with ws.session() as s:
        assert sorted(s.scalars(select(Judge.name))) == ["Ann", "Bob"]
    assert not warnings


def test_a_judge_switching_cannot_create_a_lead_and_a_lead_can(tmp_path, picker):
    run, shown, warnings = picker
    ws = open_workspace(str(tmp_path / "w.sqlite"))
    with ws.session() as s:
        lead = create_profile(s, "Ann", "lead", None)
        bob = create_profile(s, "Bob", "judge", lead)
    run(ws, "Mallory", "lead", acting=bob)
    assert not shown[-1].combo.isEditable()
    j = run(ws, "Cleo", "lead", acting=lead)
    assert (j.name, j.role) == ("Cleo", "lead")
    with ws.session() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.entity == "judge", AuditEntry.entity_id == j.id)
        ).one()
        assert (entry.action, entry.actor_id) == ("create", lead.id)
        assert "Mallory" not in set(s.scalars(select(Judge.name)))


def test_app_judge_option_never_creates_a_profile_in_a_team(tmp_path):
    from app.review.team import named_judge
    from app.workspace.errors import NotFound

    ws = open_workspace(str(tmp_path / "w.sqlite"))

    def _named_judge(ws, name):
        with ws.session() as s:
            return named_judge(s, name)

    first = _named_judge(ws, "Ann")  # an empty workspace: the first profile, its lead
    assert (first.name, first.role) == ("Ann", "lead")
    assert _named_judge(ws, "Ann").id == first.id
    with pytest.raises(NotFound, match="a lead creates it"):
        _named_judge(ws, "Mallory")
    with ws.session() as s:
        assert list(s.scalars(select(Judge.name))) == ["Ann"]
