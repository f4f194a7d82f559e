"""Chambers domain core: storage, traces, importers, rubrics, reviews, pairs, runs.

This package never imports Qt, torch, transformers, peft or trl (checked by import-linter).
"""

__version__ = "0.1.0"
