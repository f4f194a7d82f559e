"""Widgets every screen shares: the safe trace renderer and view, the rubric panel, chart boxes."""
