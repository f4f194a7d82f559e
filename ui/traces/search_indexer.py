"""The full-text index catching up after an import, on a thread of its own.

An import in the app stores its traces and ends (they are in the queue at once); this then
writes their full-text index (app.traces.search_index) with a connection of its own, showing
its progress in the status bar. The window starts it after an import and when it opens (a
killed import may have left traces to index); closing the window stops it between two batches,
and what is left is indexed the next time.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal


class _CatchUp(QObject):
    progress = Signal(int, int)
    finished = Signal(int, str)  # traces indexed, an error ("" when none)

    def __init__(self, ws_url: str):
        super().__init__()
        self.ws_url = ws_url
        self.stopped = False

    def run(self) -> None:
        from app.traces.search_index import catch_up
        from app.workspace.db import open_workspace

        done = 0
        try:
            ws = open_workspace(self.ws_url)
            try:
                done = catch_up(
                    ws, lambda n, total: self.progress.emit(n, total), lambda: self.stopped
                )
            finally:
                ws.close()
        except Exception as exc:  # noqa: BLE001 - shown in the status bar, never a crash
            self.finished.emit(done, f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(done, "")


class SearchIndexer(QObject):
    """Start it as often as you like: a run in progress picks up what was added meanwhile."""

    progress = Signal(int, int)  # indexed so far, pending when the run started
    finished = Signal(int, str)  # indexed by the run, an error ("" when none)

    def __init__(self, ws_url: str, parent: QObject | None = None):
        super().__init__(parent)
        self.ws_url = ws_url
        self._thread: QThread | None = None
        self._worker: _CatchUp | None = None
        self._again = False
        self._stopped = False  # for good: the window is closing

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._stopped:
            return
        if self.running:
            self._again = True  # another import stored more: one more pass when this ends
            return
        self._thread = QThread(self)
        self._worker = _CatchUp(self.ws_url)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self.progress)
        self._worker.finished.connect(self._finished)
        self._thread.start()

    def _finished(self, done: int, error: str) -> None:
        if self._stopped:
            return  # a stopped run's last word, delivered late
        self._join()
        self.finished.emit(done, error)
        if self._again and not error:
            self._again = False
            self.start()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread.deleteLater()
        self._thread = None
        self._worker = None

    def stop(self) -> None:
        """Stop between two batches (each is its own transaction: nothing is half-done), for
        good: a later start() does nothing."""
        self._stopped = True
        self._again = False
        if self._worker is not None:
            self._worker.stopped = True
        self._join()
