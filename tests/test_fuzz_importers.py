"""Property: no input makes an importer raise. Mutants of the shared corpus and of every
format fixture (truncated bytes, wrong types, deleted and duplicated fields, huge strings and
numbers, control characters, deep nesting) are read as `chambers import` reads them; each
ends as traces, record errors or "this file cannot be read", never an exception.

The mutations are benchmarks/fuzz_import.py's, which runs 10,000+ of them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.traces.importers.reader import FileUnreadable
from app.traces.ingest import import_paths

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz_import  # noqa: E402 - the benchmark's mutator, shared

SEEDS = fuzz_import.seeds()
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutant(tmp: Path, index: int, seed: int) -> Path:
    name, data = SEEDS[index]
    path = tmp / f"mutant{Path(name).suffix}"
    path.write_bytes(fuzz_import.mutate(name, data, random.Random(seed)))
    return path


@settings(max_examples=900, **SETTINGS)
@given(index=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32))
def test_no_mutant_makes_an_importer_raise(tmp_path_factory, index, seed):
    path = _mutant(tmp_path_factory.mktemp("m"), index, seed)
    try:
        fmt, traces, errors = fuzz_import.read_file(path)
    except FileUnreadable as exc:
        assert str(exc)  # a message for the user, naming the file
        return
    assert traces >= 0 and errors >= 0


@settings(max_examples=100, **SETTINGS)
@given(index=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32))
def test_no_mutant_breaks_an_import(ws, tmp_path_factory, index, seed):
    """Through the database too: every record is stored whole or reported."""
    path = _mutant(tmp_path_factory.mktemp("m"), index, seed)
    report = import_paths(ws, [path])
    assert all(e["file"] == str(path) and e["message"] for e in report.errors)
    [file_report] = report.files
    assert file_report.records >= file_report.imported + file_report.duplicates


def test_seeds_cover_every_format():
    if not fuzz_import.CORPUS.is_dir():
        pytest.skip("the shared corpus is absent")
    names = {n for n, _ in SEEDS}
    assert {"django__django-11099.traj", "inspect.eval", "basic.json", "all-spans.json"} <= names
