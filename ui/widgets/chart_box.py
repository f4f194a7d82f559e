"""A matplotlib figure in a box with an Export as PNG button."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QFileDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.agreement import charts


class ChartBox(QWidget):
    """A matplotlib figure on a Qt canvas, with Export PNG."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.fig = None
        self.lay = QVBoxLayout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)
        self.canvas: FigureCanvasQTAgg | None = None
        self.export_button = QPushButton(f"Export {title} as PNG…")
        self.export_button.clicked.connect(self._export)
        self.export_button.setEnabled(False)
        self.lay.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)

    def set_figure(self, fig) -> None:
        if self.canvas is not None:
            self.lay.removeWidget(self.canvas)
            self.canvas.deleteLater()
        self.fig = fig
        self.canvas = FigureCanvasQTAgg(fig)
        self.canvas.setMinimumHeight(int(fig.get_figheight() * 80))
        self.lay.insertWidget(0, self.canvas, 1)
        self.canvas.draw_idle()
        self.export_button.setEnabled(True)

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {self.title}", f"{self.title.replace(' ', '-')}.png", "PNG (*.png)"
        )
        if path:
            self.save_png(path)

    def save_png(self, path: str) -> None:
        Path(path).write_bytes(charts.png_bytes(self.fig, dpi=150))
