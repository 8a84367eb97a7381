"""One ingest run of a peer framework, as its own process (bench/peers/compare.py runs it).

    python bench/peers/peer_pipelines.py langchain|llamaindex --docs DIR --state DIR

Runs in the peers' venv (bench/peers/run.sh), never in the project's. Each peer gets
ingest's own ONNX embedder (same hash-pinned all-MiniLM-L6-v2, int8, one thread),
wrapped in the framework's embeddings interface, and a splitter sized by the same
tokenizer (254 tokens, 32 overlap: ingest's defaults), so that the model, the runtime
and the chunk size are the same in all three and the comparison is about the pipeline:
loading, splitting, dedup/record keeping, storing.

State (the record manager / docstore and the vector store) lives in --state, so the
second run (after the edit) is the framework's own incremental re-ingest. Prints one
JSON line: in-process seconds (after imports and model load), chunks written, texts
embedded, and the framework's own counters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK_TOKENS = 254  # ingest's INGEST_CHUNK_TOKENS default
OVERLAP_TOKENS = 32  # ingest's INGEST_CHUNK_OVERLAP_TOKENS default


class CountingEmbedder:
    """ingest's OnnxEmbedder, counting the texts it embeds."""

    def __init__(self) -> None:
        from ingest.embedding.model_files import resolve_model
        from ingest.embedding.onnx_embedder import OnnxEmbedder

        cache = Path(os.environ["INGEST_MODEL_CACHE_DIR"])
        model = resolve_model("all-MiniLM-L6-v2")
        self.inner = OnnxEmbedder(model, cache_dir=cache, precision="int8", threads=1)
        self.texts = 0

    def documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed(texts).tolist()

    def query(self, text: str) -> list[float]:
        return self.inner.embed_queries([text])[0].tolist()

    def token_count(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.inner.tokenizer_path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def run_langchain(docs: Path, state: Path, embedder: CountingEmbedder) -> dict[str, Any]:
    from langchain_classic.indexes import SQLRecordManager
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class OnnxEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return embedder.query(text)

    tokens = embedder.token_count()
    started = time.perf_counter()
    store_file = state / "vectors.json"
    embeddings = OnnxEmbeddings()
    if store_file.exists():
        store = InMemoryVectorStore.load(str(store_file), embeddings)
    else:
        store = InMemoryVectorStore(embeddings)
    records = SQLRecordManager("bench", db_url=f"sqlite:///{state / 'records.db'}")
    records.create_schema()
    loader = DirectoryLoader(
        str(docs), glob="*.txt", loader_cls=TextLoader, loader_kwargs={"encoding": "utf-8"}
    )
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_TOKENS,
        chunk_overlap=OVERLAP_TOKENS,
        length_function=lambda text: len(tokens(text)),
    )
    chunks = splitter.split_documents(loader.load())
    result = index(chunks, records, store, cleanup="incremental", source_id_key="source")
    store.dump(str(store_file))
    return {"seconds": time.perf_counter() - started, "chunks": len(chunks), "framework": result}


def run_llamaindex(docs: Path, state: Path, embedder: CountingEmbedder) -> dict[str, Any]:
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.vector_stores import SimpleVectorStore

    class OnnxEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.query(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return embedder.query(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return embedder.documents([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embedder.documents(texts)

    tokens = embedder.token_count()
    started = time.perf_counter()
    vectors_file = state / "vectors.json"
    if vectors_file.exists():
        store = SimpleVectorStore.from_persist_path(str(vectors_file))
    else:
        store = SimpleVectorStore()
    pipeline = IngestionPipeline(
        transformations=[
            SentenceSplitter(
                chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS, tokenizer=tokens
            ),
            OnnxEmbedding(model_name="ingest-onnx-int8"),
        ],
        docstore=SimpleDocumentStore(),
        vector_store=store,
        docstore_strategy=DocstoreStrategy.UPSERTS,
    )
    pipeline_dir = state / "pipeline"
    if pipeline_dir.exists():
        pipeline.load(str(pipeline_dir))
    documents = SimpleDirectoryReader(str(docs), required_exts=[".txt"], filename_as_id=True)
    nodes = pipeline.run(documents=documents.load_data())
    pipeline.persist(str(pipeline_dir))
    store.persist(str(vectors_file))
    return {"seconds": time.perf_counter() - started, "chunks": len(nodes), "framework": {}}


def warm_imports() -> None:
    """Import what the runs import, so that their bytecode is compiled before any
    timed run (compare.py sets PYTHONPYCACHEPREFIX for every system alike)."""
    import importlib

    for name in (
        "langchain_classic.indexes",
        "langchain_community.document_loaders",
        "langchain_core.indexing",
        "langchain_core.vectorstores",
        "langchain_text_splitters",
        "llama_index.core",
        "llama_index.core.ingestion",
        "llama_index.core.node_parser",
        "llama_index.core.storage.docstore",
        "llama_index.core.vector_stores",
    ):
        importlib.import_module(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("peer", choices=["langchain", "llamaindex", "warm-up"])
    p.add_argument("--docs", type=Path)
    p.add_argument("--state", type=Path)
    args = p.parse_args()
    embedder = CountingEmbedder()
    embedder.inner.warm_up()  # model load is not the pipeline: ingest's is timed whole, see docs
    embedder.texts = 0
    if args.peer == "warm-up":
        warm_imports()
        print(json.dumps({"model_id": embedder.inner.model_id}))
        return
    args.state.mkdir(parents=True, exist_ok=True)
    run = run_langchain if args.peer == "langchain" else run_llamaindex
    out = run(args.docs, args.state, embedder)
    out["embedded"] = embedder.texts
    out["model_id"] = embedder.inner.model_id
    print(json.dumps(out, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
