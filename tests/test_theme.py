"""The light and dark palettes: WCAG contrast of every text/background pair a judge reads, in
the window and in the trace view, and the theme following the system's colour scheme."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from tests.test_queue_gui import _isolated_settings, db  # noqa: F401 - fixtures
from ui.widgets.theme import apply_theme, contrast_ratio, draft_color, is_dark, palette_for
from ui.widgets.trace_view import palette_colors

Role = QPalette.ColorRole
PALETTE_PAIRS = [
    (Role.WindowText, Role.Window),
    (Role.Text, Role.Base),
    (Role.Text, Role.AlternateBase),
    (Role.ButtonText, Role.Button),
    (Role.HighlightedText, Role.Highlight),
    (Role.ToolTipText, Role.ToolTipBase),
    (Role.PlaceholderText, Role.Base),
    (Role.PlaceholderText, Role.Window),
    (Role.Link, Role.Base),
]
TRACE_PAIRS = [
    ("text", "base"),
    ("text", "card"),
    ("muted", "base"),
    ("muted", "card"),
    ("accent", "base"),
    ("error", "error_bg"),
    ("error", "base"),
    ("final", "final_bg"),
    ("text", "mark"),
]


def test_contrast_ratio_matches_published_values():
    # WCAG 2.1 definition; reference values from the WebAIM contrast checker.
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_palette_pair_reads_at_wcag_aa(dark):
    p = palette_for(dark)
    assert is_dark(p) == dark
    low = {
        f"{fg.name}/{bg.name}": round(contrast_ratio(p.color(fg), p.color(bg)), 2)
        for fg, bg in PALETTE_PAIRS
    }
    assert min(low.values()) >= 4.5, low


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_trace_and_queue_colours_read_at_wcag_aa(dark):
    p = palette_for(dark)
    c = palette_colors(p)
    ratios = {
        f"{a}/{b}": round(contrast_ratio(getattr(c, a), getattr(c, b)), 2) for a, b in TRACE_PAIRS
    }
    for row in (Role.Base, Role.AlternateBase):
        ratios[f"draft/{row.name}"] = round(contrast_ratio(draft_color(p), p.color(row)), 2)
    assert min(ratios.values()) >= 4.5, ratios


def test_the_app_follows_the_system_colour_scheme(monkeypatch):
    from ui.application import make_app

    monkeypatch.delenv("CHAMBERS_THEME", raising=False)
    app = make_app()
    apply_theme(app, dark=True)
    assert is_dark(app.palette())
    apply_theme(app, dark=False)
    assert not is_dark(app.palette())
    monkeypatch.setenv("CHAMBERS_THEME", "dark")  # stands in for the system switching
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert is_dark(app.palette())
    monkeypatch.setenv("CHAMBERS_THEME", "light")
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not is_dark(app.palette())


def test_an_open_window_redraws_the_trace_in_the_new_scheme(qtbot, db):  # noqa: F811
    from PySide6.QtWidgets import QApplication

    from tests.test_queue_gui import window_for

    w = window_for(qtbot, db, "Lee")
    light, dark = (palette_colors(palette_for(d)).card for d in (False, True))
    try:
        apply_theme(QApplication.instance(), dark=False)
        assert light in w.trace_view.browser.toHtml()
        apply_theme(QApplication.instance(), dark=True)
        qtbot.wait_until(lambda: dark in w.trace_view.browser.toHtml())
        assert light not in w.trace_view.browser.toHtml()
    finally:
        apply_theme(QApplication.instance(), dark=False)
