"""What the importer's child processes share: they never outlive their parent, and chunks of
rows move between the processes cheaply.

A child blocked on a full queue would wait forever if its parent were killed (kill -9, a
closed terminal), holding multiprocessing's resource tracker with it: a watchdog thread exits
the child as soon as the parent is gone, and a put gives up when it is. Light on purpose: a
spawned child imports this, not the database layer.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue as queue_mod
import sys
import threading
import time
from typing import Any

WATCH_SECONDS = 0.2  # how often a child checks that its parent is alive
PIPE_BYTES = 1 << 20


def watch_parent(parent: int) -> None:
    """Exit the child as soon as its parent dies (it is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(0)


def start_child(parent: int) -> None:
    """In a child, first: the watchdog, and the cyclic collector off. A child allocates
    millions of short-lived containers and no reference cycles: automatic collections (a tenth
    of a parser's time) only re-scan them. It calls `gc.collect()` once per chunk instead,
    over what is younger than its modules (frozen)."""
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    gc.freeze()
    gc.disable()


def put_while_parent_lives(q: Any, item: Any, parent: int) -> None:
    while True:
        try:
            q.put(item, timeout=WATCH_SECONDS)
            return
        except queue_mod.Full:
            if os.getppid() != parent:
                os._exit(0)


def pickled(value: Any) -> bytes:
    """Pickled by the child's own thread rather than the queue's feeder thread: the two would
    contend for the interpreter."""
    return pickle.dumps(value, protocol=5)


def widen_pipe(q: Any) -> None:
    """A chunk is megabytes: a 1 MB pipe (Linux) moves it in a few writes rather than a
    hundred 64 KB ones, each waking the other process. Elsewhere, or where the system's limit
    is lower, the default pipe works, a little slower."""
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    size_op = getattr(fcntl, "F_SETPIPE_SZ", None)
    if size_op is not None:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            fcntl.fcntl(q._writer.fileno(), size_op, PIPE_BYTES)


def unpickle(data: bytes) -> Any:
    """Unpickling a chunk creates tens of thousands of containers: with automatic collection
    on, that triggers dozens of collections re-scanning them (more than half the cost of
    unpickling); the next collection after it scans them once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        if enabled:
            gc.enable()
