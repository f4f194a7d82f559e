"""The lazy table model every growing table uses: batches as the view asks, Qt's model checks."""

from __future__ import annotations

from typing import NamedTuple

from PySide6.QtCore import Qt

from ui.widgets.lazy_model import BATCH, Column, LazyTableModel


class Row(NamedTuple):
    id: int
    name: str


COLUMNS = (Column("id", lambda r: str(r.id), numeric=True), Column("name", lambda r: r.name))


def test_rows_arrive_in_batches_and_pass_qtmodeltester(qtmodeltester):
    qtmodeltester.check(LazyTableModel(COLUMNS))  # empty
    model = LazyTableModel(COLUMNS)
    rows = [Row(i, f"row {i}") for i in range(BATCH * 2 + 17)]
    model.set_rows(rows)
    assert model.rowCount() == BATCH and model.total == len(rows) and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == BATCH * 2
    model.fetchMore()
    assert model.rowCount() == len(rows) and not model.canFetchMore()
    qtmodeltester.check(model)
    assert model.index(416, 1).data() == "row 416"
    assert model.index(3, 0).data(Qt.ItemDataRole.TextAlignmentRole) is not None
    assert model.headerData(1, Qt.Orientation.Horizontal) == "name"


def test_find_fetches_up_to_the_row_and_replace_repaints_one_row(qtbot):
    model = LazyTableModel(COLUMNS)
    model.set_rows([Row(i, "x") for i in range(1000)])
    assert model.find(lambda r: r.id == 730) == 730
    assert model.rowCount() == 800  # four batches, not all 1,000
    with qtbot.waitSignal(model.dataChanged) as sig:
        model.replace_row(5, Row(5, "changed"))
    assert sig.args[0].row() == sig.args[1].row() == 5
    assert model.index(5, 1).data() == "changed"
    assert model.find(lambda r: r.id == -1) is None
