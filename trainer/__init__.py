"""The trainer process: `python -m trainer run CONFIG.json`, `python -m trainer demo-model DIR`.

It holds the ML stack (torch, transformers, peft, trl); app/ and ui/ never import it. Files
in (config, the snapshot's data), files out (events.jsonl, checkpoints, adapter, manifest).
"""
