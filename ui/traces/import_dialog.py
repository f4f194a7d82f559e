"""File -> Import traces: choose the format and keys, preview what each file will import,
then import off the UI thread with progress, cancel and the errors listed once each."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.traces.display import printable
from app.traces.importers import FORMATS
from app.traces.importers.conversations import KeyOptions
from app.workspace.db import Workspace

PREVIEW_RECORDS = 5
PREVIEW_COLUMNS = ("File", "Format", "Record", "Id", "Messages", "Tool calls", "Outcome", "Error")


class ImportWorker(QObject):
    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, ws_url: str, paths: list[str], fmt: str | None, options: KeyOptions):
        super().__init__()
        self.ws_url = ws_url
        self.paths = paths
        self.fmt = fmt
        self.options = options
        self.cancelled = False

    def run(self) -> None:
        from app.traces.ingest import import_paths
        from app.workspace.db import open_workspace
        from app.workspace.errors import ChambersError

        try:
            ws = open_workspace(self.ws_url)  # a connection of this thread's own
            try:
                report = import_paths(
                    ws,
                    [Path(p) for p in self.paths],
                    self.fmt,
                    self.options,
                    progress=lambda f, r, n: self.progress.emit(f, r, n),
                    should_cancel=lambda: self.cancelled,
                    catch_up_index=False,  # the window's SearchIndexer does it afterwards
                )
            finally:
                ws.close()
            self.finished.emit(report)
        except ChambersError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class PreviewWorker(QObject):
    """Reads the first records of every file (a big single-object file takes a while)."""

    finished = Signal(object)

    def __init__(self, paths: list[str], fmt: str | None, options: KeyOptions):
        super().__init__()
        self.args = ([Path(p) for p in paths], fmt, options)

    def run(self) -> None:
        from app.traces.preview import preview_paths

        try:
            self.finished.emit(preview_paths(*self.args, limit=PREVIEW_RECORDS))
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.finished.emit(f"{type(exc).__name__}: {exc}")


class ImportDialog(QDialog):
    """Options and a preview first; Import runs the import off the UI thread."""

    done = Signal(object)
    previewed = Signal(object)

    def __init__(self, ws: Workspace, paths: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import traces")
        self.resize(960, 560)
        self.ws_url = ws.url
        self.paths = list(paths)
        self.report = None
        self.thread: QThread | None = None
        self.worker: ImportWorker | None = None
        self._preview_thread: QThread | None = None
        self.pages = QStackedWidget()
        self.pages.addWidget(self._options_page())
        self.pages.addWidget(self._progress_page())
        lay = QVBoxLayout(self)
        lay.addWidget(self.pages)
        self.refresh_preview()

    # -- page 1: options and preview ----------------------------------------------------------

    def _options_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        names = ", ".join(Path(p).name for p in self.paths[:4])
        more = f" and {len(self.paths) - 4} more" if len(self.paths) > 4 else ""
        lay.addWidget(QLabel(f"Import {len(self.paths)} path(s): {printable(names)}{more}"))
        form = QFormLayout()
        self.format_combo = QComboBox()
        self.format_combo.addItem("Detect from the content", None)
        for key, what in FORMATS.items():
            self.format_combo.addItem(f"{key} — {what}", key)
        self.messages_key = QLineEdit()
        self.outcome_key = QLineEdit()
        self.id_key = QLineEdit()
        for edit, example in (
            (self.messages_key, "e.g. answer_generation.train_messages"),
            (self.outcome_key, "e.g. win, reward, info.exit_status"),
            (self.id_key, "e.g. task_id, instance_id"),
        ):
            edit.setPlaceholderText(f"detected ({example})")
            edit.editingFinished.connect(self.refresh_preview)
        self.format_combo.currentIndexChanged.connect(self.refresh_preview)
        form.addRow("Format", self.format_combo)
        form.addRow("Messages key", self.messages_key)
        form.addRow("Outcome key", self.outcome_key)
        form.addRow("Id key", self.id_key)
        lay.addLayout(form)
        self.preview_label = QLabel("Reading the first records…")
        self.preview_label.setWordWrap(True)
        lay.addWidget(self.preview_label)
        self.preview = QTableWidget(0, len(PREVIEW_COLUMNS))
        self.preview.setHorizontalHeaderLabels(PREVIEW_COLUMNS)
        self.preview.horizontalHeader().setSectionResizeMode(
            len(PREVIEW_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.preview.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.preview, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.back_button = QPushButton("Cancel")
        self.back_button.clicked.connect(self.reject)
        row.addWidget(self.back_button)
        self.import_button = QPushButton("Import")
        self.import_button.setDefault(True)
        self.import_button.clicked.connect(self.start)
        row.addWidget(self.import_button)
        lay.addLayout(row)
        return page

    def choice(self) -> tuple[str | None, KeyOptions]:
        """The format and key options as chosen (empty fields: detected)."""
        keys = [
            e.text().strip() or None for e in (self.messages_key, self.outcome_key, self.id_key)
        ]
        return self.format_combo.currentData(), KeyOptions(*keys)

    def refresh_preview(self) -> None:
        if self._preview_thread is not None and self._preview_thread.isRunning():
            self._preview_thread.quit()
            self._preview_thread.wait()
        fmt, options = self.choice()
        self.preview_label.setText("Reading the first records…")
        self._preview_thread = QThread(self)
        self._preview_worker = PreviewWorker(self.paths, fmt, options)
        self._preview_worker.moveToThread(self._preview_thread)
        self._preview_thread.started.connect(self._preview_worker.run)
        self._preview_worker.finished.connect(self._show_preview)
        self._preview_thread.start()

    def _show_preview(self, previews) -> None:
        self._preview_thread.quit()
        self._preview_thread.wait()
        if isinstance(previews, str):
            self.preview_label.setText(f"Preview failed: {previews}")
            self.previewed.emit(previews)
            return
        rows = [row for p in previews for row in _preview_rows(p)]
        self.preview.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(printable(text))
                item.setToolTip(printable(text))
                self.preview.setItem(r, c, item)
        self.preview.resizeColumnsToContents()
        readable = [p for p in previews if not p.unreadable and not p.skipped]
        self.preview_label.setText(
            f"First {PREVIEW_RECORDS} records of each of {len(readable)} file(s)"
            + (
                f"; {len(previews) - len(readable)} unreadable or skipped"
                if len(readable) < len(previews)
                else ""
            )
            + ". Change the format or keys to see what they would import."
        )
        self.previewed.emit(previews)

    # -- page 2: progress ---------------------------------------------------------------------

    def _progress_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.label = QLabel(f"Importing {len(self.paths)} path(s)…")
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        lay.addWidget(self.bar)
        self.errors = QTextBrowser()
        self.errors.setVisible(False)
        lay.addWidget(self.errors, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        row.addWidget(self.cancel_button)
        self.close_button = QPushButton("Close")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self.accept)
        row.addWidget(self.close_button)
        lay.addLayout(row)
        return page

    def start(self) -> None:
        fmt, options = self.choice()
        self.pages.setCurrentIndex(1)
        self.thread = QThread(self)
        self.worker = ImportWorker(self.ws_url, self.paths, fmt, options)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.thread.start()

    def _progress(self, file: str, records: int, imported: int) -> None:
        self.label.setText(
            f"{printable(Path(file).name)}: {records:,} records read · {imported:,} traces imported"
        )

    def _cancel(self) -> None:
        self.worker.cancelled = True
        self.label.setText("Cancelling after the current batch…")
        self.cancel_button.setEnabled(False)

    def _stop_thread(self) -> None:
        self.thread.quit()
        self.thread.wait()
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self.close_button.setDefault(True)

    def _finished(self, report) -> None:
        from app.traces.ingest import error_line

        self._stop_thread()
        self.report = report
        verb = "Cancelled" if report.cancelled else "Done"
        self.label.setText(
            f"{verb}: {report.imported:,} imported, {report.duplicates:,} duplicates, "
            f"{len(report.errors):,} errors, {len(report.warnings):,} warnings, "
            f"{len(report.skipped):,} files skipped."
        )
        lines = [f"error: {error_line(e)}" for e in report.errors]
        lines += [f"warning: {error_line(w)}" for w in report.warnings]
        lines += [f"skipped: {s['file']}: {s['reason']}" for s in report.skipped]
        if lines:
            self.errors.setVisible(True)
            self.errors.setPlainText(printable("\n".join(lines)))
        self.done.emit(report)

    def _failed(self, message: str) -> None:
        self._stop_thread()
        self.label.setText(f"Import failed: {printable(message)}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        for thread in (self.thread, self._preview_thread):
            if thread is not None and thread.isRunning():
                if self.worker is not None:
                    self.worker.cancelled = True
                thread.quit()
                thread.wait()
        super().closeEvent(event)


def _preview_rows(p) -> list[list[str]]:
    name = Path(p.path).name
    if p.skipped:
        return [[name, "", "", "", "", "", "", f"skipped: {p.skipped}"]]
    if p.unreadable:
        message = p.unreadable.removeprefix(f"{p.path}: ")
        return [[name, "", "", "", "", "", "", message]]
    rows = []
    for r in p.records:
        error = r.error or "; ".join(f"warning: {w}" for w in r.warnings)
        rows.append(
            [
                name,
                p.format or "",
                r.locator,
                r.external_id or "",
                "" if r.error else str(r.n_messages),
                "" if r.error else str(r.n_tool_calls),
                r.outcome,
                error,
            ]
        )
    return rows or [[name, p.format or "", "", "", "", "", "", "no records"]]
