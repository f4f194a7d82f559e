"""One worker thread for a workspace's database work; results come back to the UI by signal.

The shape of Anki's `CollectionOp`: a screen submits `fn(session) -> result`; `fn` runs on the
worker thread in its own transaction on the worker's session (a Session is never shared
across threads), and the job's `done(result)` or `failed(error)` signal fires on the UI thread.
`fn` must not touch widgets, and should return plain values: the worker's session is cleared
after each job, so a returned ORM object cannot lazily query from the UI thread later.

Jobs run one at a time in submission order, so a read submitted after a write sees it.

While a job runs the cyclic garbage collector is paused: a job that loads 100,000 reviews
allocates millions of objects, and a full collection over them holds the interpreter for
100+ ms, which the UI thread would feel as a stall. What a job allocates is freed by
reference counting (ORM instances hold their state by weak reference); the collector resumes
when the job ends.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot
from sqlalchemy.orm import Session

from app.workspace.db import Workspace

_STOP = object()


@contextlib.contextmanager
def _collector_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Job(QObject):
    """One submitted piece of work; its signals fire on the UI thread."""

    done = Signal(object)
    failed = Signal(object)  # the exception

    def __init__(self, fn: Callable[[Session], Any], label: str = ""):
        super().__init__()
        self.fn = fn
        self.label = label
        self.cancelled = False
        self.finished = False

    def cancel(self) -> None:
        """Drop the result: neither signal fires (a newer search replaced this one)."""
        self.cancelled = True


class WorkspaceExecutor(QObject):
    """A single worker thread holding a long-lived session of the workspace."""

    busy_changed = Signal(bool)
    _finished = Signal(object, object, object)  # job, result, error (from the worker)

    def __init__(self, ws: Workspace, parent: QObject | None = None):
        super().__init__(parent)
        self.ws = ws
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0
        self._closed = False
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._thread = threading.Thread(target=self._loop, name="chambers-db", daemon=True)
        self._thread.start()

    # --- UI thread ---------------------------------------------------------------------------
    def submit(
        self,
        fn: Callable[[Session], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        label: str = "",
    ) -> Job:
        """Queue `fn(session)`; `on_done(result)` / `on_error(exc)` run on the UI thread."""
        job = Job(fn, label)
        if on_done is not None:
            job.done.connect(on_done)
        if on_error is not None:
            job.failed.connect(on_error)
        if self._closed:
            job.cancel()
            return job
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        self._queue.put(job)
        return job

    @property
    def busy(self) -> bool:
        return self._pending > 0

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Run the event loop until every submitted job has delivered (a screenshot waits
        for the screen to be filled); False if it is still busy after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return not self.busy

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Finish the job in hand, drop the queued ones, stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    @Slot(object, object, object)
    def _deliver(self, job: Job, result: Any, error: BaseException | None) -> None:
        self._pending = max(self._pending - 1, 0)
        job.finished = True
        if not job.cancelled and not self._closed:
            if error is None:
                job.done.emit(result)
            else:
                job.failed.emit(error)
        if self._pending == 0:
            self.busy_changed.emit(False)

    # --- worker thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        session = self.ws.sessions()
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    return
                if self._closed or job.cancelled:
                    self._emit(job, None, None)
                    continue
                self._emit(job, *self._run(session, job))
        finally:
            session.close()

    @staticmethod
    def _run(session: Session, job: Job) -> tuple[Any, BaseException | None]:
        try:
            with session.begin(), _collector_paused():
                result = job.fn(session)
            return result, None
        except Exception as exc:  # noqa: BLE001 - delivered to the screen, which says what
            return None, exc
        finally:
            session.close()  # detach what was loaded: the next job reads fresh rows

    def _emit(self, job: Job, result: Any, error: BaseException | None) -> None:
        # RuntimeError: the executor's Qt object is gone (the app is closing): nothing to tell
        with contextlib.suppress(RuntimeError):
            self._finished.emit(job, result, error)
