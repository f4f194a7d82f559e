"""Export a registered model for serving: `merged` folds the LoRA adapter into the base weights
(peft merge_and_unload) and writes safetensors, the tokenizer (with its chat template) and the
lineage manifest, loadable by transformers alone; `adapter` writes the adapter alone with the
manifest. Files appear under a temporary name and are renamed into place when complete.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from app.training.manifest import file_sha256

LINEAGE_FILE = "chambers-lineage.json"


def export_merged(base: str, adapter: str, out: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    tok.save_pretrained(out)
    for name in ("chat_template.jinja", "generation_config.json"):
        if (Path(base) / name).exists() and not (out / name).exists():
            shutil.copy2(Path(base) / name, out / name)


def export_adapter(adapter: str, out: Path) -> None:
    shutil.copytree(adapter, out, dirs_exist_ok=True)


def main(config_path: str) -> int:
    job: dict[str, Any] = json.loads(Path(config_path).read_text())
    out = Path(job["out"])
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if job["mode"] == "merged":
            export_merged(job["base"], job["adapter"], tmp)
        else:
            export_adapter(job["adapter"], tmp)
        lineage = {
            "format": "chambers-model-export/1",
            "mode": job["mode"],
            **job["lineage"],
            "files": {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        (tmp / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str))
        if out.exists():
            out.rmdir()  # checked empty by the caller
        tmp.replace(out)
    except Exception as exc:  # noqa: BLE001 - reported in one line, nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"out": str(out), "mode": job["mode"]}))
    return 0
