"""Judges' step labels side by side (adjudication): one row per labelled step, one column
per judge, rows where the judges differ tinted."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.traces.display import printable
from app.traces.outline import outline

WORDS = {"good": "good", "wrong": "wrong", "first_error": "FIRST ERROR"}


def label_text(label: dict[str, Any] | None) -> str:
    if not label:
        return "—"
    text = WORDS.get(label.get("label", ""), str(label.get("label")))
    if label.get("reason"):
        text += f": {label['reason']}"
    if label.get("comment"):
        text += f" — {label['comment']}"
    return printable(text)


def step_names(messages: list[dict[str, Any]]) -> dict[int, str]:
    names: dict[int, str] = {}
    for e in outline(messages):
        names.setdefault(e.step, e.label)
    return names


class StepLabelsTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("step_labels_side_by_side")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(True)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def fill(self, messages: list[dict[str, Any]], judges: list[tuple[str, list | None]]) -> None:
        """`judges`: (name, that judge's step_labels) in column order."""
        by_judge = [{int(x["step"]): x for x in labels or []} for _name, labels in judges]
        steps = sorted({s for labels in by_judge for s in labels})
        names = step_names(messages)
        self.clear()
        self.setColumnCount(len(judges))
        self.setRowCount(len(steps))
        self.setHorizontalHeaderLabels([name for name, _ in judges])
        self.setVerticalHeaderLabels(
            [printable(f"Step {s} {names.get(s, '')}")[:60] for s in steps]
        )
        for i, step in enumerate(steps):
            cells = [label_text(labels.get(step)) for labels in by_judge]
            kinds = {labels[step]["label"] if step in labels else None for labels in by_judge}
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if len(kinds) > 1:
                    item.setBackground(QColor("#fde2e1"))
                    item.setForeground(QColor("#3b0d0c"))
                self.setItem(i, j, item)
        self.resizeRowsToContents()
