"""Bench only (bench/cpu_per_chunk.py): the CPU `ingest add` spends inside its
embedder's calls (`OnnxEmbedder._run`: tokenise, forward pass, pool: the work the bare
embedder does), summed over threads and written at exit to the file named by
$INGEST_BENCH_EMBEDDER_CPU. Dividing the whole run's CPU by it gives the ratio at
equal model cost, free of the model's own run-to-run noise (±3% between runs).
Loaded by Python at start-up because the bench puts this folder on PYTHONPATH."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import ingest.embedding.onnx_embedder as onnx_embedder

_spent = [0.0]
_lock = threading.Lock()
_run = onnx_embedder.OnnxEmbedder._run


def _timed_run(self: onnx_embedder.OnnxEmbedder, *args: Any) -> Any:
    started = time.thread_time()
    try:
        return _run(self, *args)
    finally:
        spent = time.thread_time() - started
        with _lock:
            _spent[0] += spent


@atexit.register
def _write() -> None:
    if path := os.environ.get("INGEST_BENCH_EMBEDDER_CPU"):
        Path(path).write_text(json.dumps({"cpu": _spent[0]}), encoding="utf-8")


onnx_embedder.OnnxEmbedder._run = _timed_run  # type: ignore[method-assign]
