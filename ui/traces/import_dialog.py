"""File -> Import traces: the importer off the UI thread, with progress and errors."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
)

from app.workspace.db import Workspace

# ---------------------------------------------------------------------------------------------
# Judge profile


# ---------------------------------------------------------------------------------------------
# Import


class ImportWorker(QObject):
    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, ws_url: str, paths: list[str]):
        super().__init__()
        self.ws_url = ws_url
        self.paths = paths
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
                    progress=lambda f, r, n: self.progress.emit(f, r, n),
                    should_cancel=lambda: self.cancelled,
                )
            finally:
                ws.close()
            self.finished.emit(report)
        except ChambersError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class ImportDialog(QDialog):
    """Runs an import off the UI thread, can be cancelled, lists errors at the end."""

    done = Signal(object)

    def __init__(self, ws: Workspace, paths: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import traces")
        self.resize(720, 420)
        lay = QVBoxLayout(self)
        self.label = QLabel(f"Importing {len(paths)} path(s)…")
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
        self.report = None
        self.thread = QThread(self)
        self.worker = ImportWorker(ws.url, paths)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.thread.start()

    def _progress(self, file: str, records: int, imported: int) -> None:
        self.label.setText(
            f"{Path(file).name}: {records:,} records read · {imported:,} traces imported"
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
        self._stop_thread()
        self.report = report
        verb = "Cancelled" if report.cancelled else "Done"
        self.label.setText(
            f"{verb}: {report.imported:,} imported, {report.duplicates:,} duplicates, {len(report.errors):,} errors."
        )
        if report.errors:
            self.errors.setVisible(True)
            self.errors.setPlainText(
                "\n".join(
                    f"{e['file']}: {e['record'] + ': ' if e['record'] else ''}{e['message']}"
                    for e in report.errors
                )
            )
        self.done.emit(report)

    def _failed(self, message: str) -> None:
        self._stop_thread()
        self.label.setText(f"Import failed: {message}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.thread.isRunning():
            self.worker.cancelled = True
            self.thread.quit()
            self.thread.wait()
        super().closeEvent(event)
