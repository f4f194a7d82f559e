"""Chambers desktop UI (PySide6). Depends on app/, never the reverse; no ML stack here."""
