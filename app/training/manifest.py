"""Hashes of what a run read and wrote: the base model's files, the run's artifacts.

Standard library only, shared by the trainer process and the app (one sha256 routine). Every
weights file of the base model is hashed in full, sharded or not: a changed shard is caught.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.workspace.paths import file_sha256  # noqa: F401 - re-exported for the trainer

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def model_files(model_dir: Path) -> list[str]:
    """The files that define the model: config.json, the weights index if sharded, every
    weights file it names (or, without an index, every weights file in the directory)."""
    model_dir = Path(model_dir)
    names = ["config.json"]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        path = model_dir / index
        if path.exists():
            weight_map = json.loads(path.read_text(encoding="utf-8")).get("weight_map", {})
            return [*names, index, *sorted(set(weight_map.values()))]
    return names + sorted(
        p.name for p in model_dir.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES
    )


def base_model_hashes(model_dir: Path) -> dict[str, str]:
    """sha256 of every file `model_files` names (a missing shard is an error here)."""
    model_dir = Path(model_dir)
    out = {}
    for name in model_files(model_dir):
        path = model_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: named by the model's weights index but missing")
        out[name] = file_sha256(path)
    return out


def verify_manifest(run_dir: str | Path) -> tuple[bool, list[str]]:
    """Recompute every artifact's sha256 and the base model's hashes."""
    run_dir = Path(run_dir)
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    problems = []
    for rel, sha in m["artifacts"]["sha256"].items():
        p = run_dir / rel
        if not p.exists():
            problems.append(f"{rel}: missing")
        elif file_sha256(p) != sha:
            problems.append(f"{rel}: sha256 differs")
    for rel, sha in m["base_model"]["sha256"].items():
        p = Path(m["base_model"]["path"]) / rel
        if not p.exists() or file_sha256(p) != sha:
            problems.append(f"base model {rel}: changed or missing")
    return not problems, problems


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's newest Trainer checkpoint (checkpoints/checkpoint-STEP), if any."""
    ckpts = [
        p
        for p in (Path(run_dir) / "checkpoints").glob("checkpoint-*")
        if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1]), default=None)
