"""Import batches left unfinished by an importer that was killed (kill -9, a power cut).

An import writes whole batches in their own transactions; killed, it leaves its batch row with
`finished_at` NULL. Opening the workspace closes such a row when its importer is provably gone,
counting the traces it kept. Another process may be importing right now (on PostgreSQL, from
another machine too), so the test is the importing process itself, recorded on the batch:
- same host, and no process with that pid (or only its zombie): gone, the batch is closed;
- another host, or a batch from before 0007 (no pid recorded): left open, as we cannot tell.
  Re-importing the same file closes it (app.traces.ingest.finish_interrupted).
A pid reused by an unrelated process keeps the batch open: the safe way to be wrong.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.workspace.models import ImportBatch, Trace


def importer_identity() -> tuple[str, int]:
    """(host, pid) of this process, recorded on the batches it imports."""
    return socket.gethostname()[:255], os.getpid()


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): it exists
    return state != "Z"


def close_batch(s: Session, batch: ImportBatch, why: str) -> int:
    """Close an unfinished batch with the number of traces it kept; returns that number."""
    kept = s.scalar(select(func.count()).where(Trace.batch_id == batch.id)) or 0
    batch.n_imported = kept
    batch.errors = [
        {"file": batch.path, "record": None, "message": f"interrupted after {kept} traces; {why}"}
    ]
    batch.finished_at = datetime.now(UTC)
    return kept


def close_abandoned(sessions: sessionmaker) -> int:
    """Close the unfinished batches of importers on this host that are gone; returns how many."""
    host, me = importer_identity()
    with sessions.begin() as s:
        open_here = s.scalars(
            select(ImportBatch).where(
                ImportBatch.finished_at.is_(None),
                ImportBatch.importer_host == host,
                ImportBatch.importer_pid.is_not(None),
                ImportBatch.importer_pid != me,
            )
        ).all()
        gone = [b for b in open_here if not process_alive(b.importer_pid)]
        for batch in gone:
            close_batch(
                s,
                batch,
                f"its importer (process {batch.importer_pid}) had ended when the workspace "
                "was next opened",
            )
        return len(gone)
