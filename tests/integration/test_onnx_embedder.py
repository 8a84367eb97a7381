"""The ONNX embedder: graphs built from safetensors without PyTorch, matching an
independent forward pass; the default model's hash check and its cached verdict;
the on-disk graph cache under concurrent builders; what shapes the model id."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import build_embedder
from ingest.embedding.local import LocalEmbedder
from ingest.embedding.model_cache import DigestCache
from ingest.embedding.model_files import resolve_model
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.embedding.onnx_graph import BUILDER_VERSION, build_graph, load_weights
from ingest.errors import ConfigError
from ingest.pipeline.chunking import load_tokenizer
from ingest.pipeline.pipeline import Pipeline
from ingest.settings import Settings
from tests.support.tiny_bert import make_tiny_bert, reference_embeddings

TEXTS = [
    "Signing keys rotate every ninety days.",
    "A worker lease expires and the job is queued again after a crash.",
    "dead letter",
    "The query and the passage share a vector index for search, and a retry of a "
    "durable job never duplicates a chunk of the document it parses and embeds.",
    "model token",
]
HAS_TORCH = importlib.util.find_spec("torch") is not None and (
    importlib.util.find_spec("sentence_transformers") is not None
)


def tiny_embedder(folder: Path, cache: Path, **settings: object) -> OnnxEmbedder:
    embedder = build_embedder(
        Settings(embedding_model=str(folder), model_cache_dir=cache, **settings)  # type: ignore[arg-type]
    )
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.mark.parametrize("activation", ["gelu", "gelu_new", "relu"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_a_bert_folder_embeds_as_its_forward_pass_computed_in_numpy(
    tmp_path: Path, activation: str, pooling: str
) -> None:
    folder = make_tiny_bert(tmp_path / "model", hidden_act=activation, pooling=pooling)
    embedder = tiny_embedder(folder, tmp_path / "cache", embedding_precision="fp32")
    vectors = embedder.embed(TEXTS)  # one batch of mixed lengths: padding must not matter
    expected = reference_embeddings(folder, TEXTS, pooling=pooling, max_length=64)
    assert vectors.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_prefixes_and_pooling_come_from_the_folder_unless_settings_say_otherwise(
    tmp_path: Path,
) -> None:
    prompts = {"query": "query: ", "document": "passage: "}
    folder = make_tiny_bert(tmp_path / "model", pooling="cls", prompts=prompts)
    from_folder = tiny_embedder(folder, tmp_path / "cache", embedding_precision="fp32")
    text = ["signing keys rotate"]
    np.testing.assert_allclose(
        from_folder.embed_queries(text),
        reference_embeddings(folder, ["query: signing keys rotate"], pooling="cls", max_length=64),
        atol=1e-4,
    )
    np.testing.assert_allclose(
        from_folder.embed(text),
        reference_embeddings(
            folder, ["passage: signing keys rotate"], pooling="cls", max_length=64
        ),
        atol=1e-4,
    )
    overridden = tiny_embedder(
        folder,
        tmp_path / "cache",
        embedding_precision="fp32",
        embedding_pooling="mean",
        embedding_query_prefix="",
        embedding_document_prefix="",
    )
    np.testing.assert_allclose(
        overridden.embed(text),
        reference_embeddings(folder, text, pooling="mean", max_length=64),
        atol=1e-4,
    )
    assert overridden.model_id != from_folder.model_id, "other vectors, another identity"


def test_texts_are_truncated_at_the_models_max_seq_length_not_tokenizer_json(
    tmp_path: Path,
) -> None:
    """The folder's tokenizer.json truncates at 8 tokens (MiniLM's at 128); the model
    reads max_seq_length (sentence_bert_config.json) tokens, and chunks are sized so."""
    folder = make_tiny_bert(tmp_path / "model", max_seq_length=24)
    embedder = tiny_embedder(folder, tmp_path / "cache", embedding_precision="fp32")
    long_text = " ".join(["signing keys rotate every ninety days"] * 2 + ["worker lease"] * 8)
    expected = reference_embeddings(folder, [long_text], pooling="mean", max_length=24)
    np.testing.assert_allclose(embedder.embed([long_text]), expected, atol=1e-4)
    assert embedder.max_tokens == 24 - 2


def test_the_document_prefix_counts_against_the_chunk_size(tmp_path: Path) -> None:
    folder = make_tiny_bert(tmp_path / "model", max_seq_length=24)
    embedder = tiny_embedder(
        folder, tmp_path / "cache", embedding_document_prefix="passage: durable "
    )
    assert embedder.max_tokens == 24 - 2 - 3  # "passage", ":", "durable"


def test_int8_stays_close_to_fp32(tmp_path: Path) -> None:
    folder = make_tiny_bert(tmp_path / "model", hidden=64, layers=2)
    fp32 = tiny_embedder(folder, tmp_path / "cache", embedding_precision="fp32").embed(TEXTS)
    int8 = tiny_embedder(folder, tmp_path / "cache", embedding_precision="int8").embed(TEXTS)
    assert (fp32 * int8).sum(axis=1).min() > 0.95
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").glob("*.onnx")) == sorted(
        f"{name}-b{BUILDER_VERSION}-{precision}.onnx"
        for name in [DigestCache(tmp_path / "cache").sha256(folder / "model.safetensors")[:16]]
        for precision in ("fp32", "int8")
    )


def test_int8_graph_computes_what_onnxruntimes_quantiser_makes_of_the_fp32_graph(
    tmp_path: Path,
) -> None:
    """int8 is built directly, without the `onnx` package that ONNX Runtime's own
    quantiser needs: its outputs must equal quantize_dynamic's, bit for bit."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = make_tiny_bert(tmp_path / "model", hidden=64, layers=2)
    config = json.loads((folder / "config.json").read_text())
    weights = load_weights(folder / "model.safetensors")
    fp32 = tmp_path / "fp32.onnx"
    fp32.write_bytes(build_graph(weights, config, "fp32"))
    reference = tmp_path / "reference.onnx"
    quantize_dynamic(
        str(fp32),
        str(reference),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    ids = np.random.default_rng(5).integers(4, 40, size=(3, 20)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 12:] = 0  # padding
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def run(model: bytes | str) -> np.ndarray:  # type: ignore[type-arg]
        import onnxruntime as ort

        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        return session.run(None, feed)[0]  # type: ignore[no-any-return]

    ours, theirs = run(build_graph(weights, config, "int8")), run(str(reference))
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, run(str(fp32))), "int8 must differ from fp32 at all"


def test_a_new_builder_version_removes_the_graphs_older_versions_built(tmp_path: Path) -> None:
    folder = make_tiny_bert(tmp_path / "model")
    key = DigestCache(tmp_path / "cache").sha256(folder / "model.safetensors")[:16]
    graphs = tmp_path / "cache" / "onnx"
    graphs.mkdir(parents=True)
    older = [graphs / f"{key}-b{BUILDER_VERSION - 1}-{p}.onnx" for p in ("fp32", "int8")]
    other_weights = graphs / f"{'0' * 16}-b{BUILDER_VERSION - 1}-int8.onnx"
    for path in [*older, other_weights]:
        path.write_bytes(b"an older build")
    tiny_embedder(folder, tmp_path / "cache", embedding_precision="int8").embed(["model token"])
    assert sorted(p.name for p in graphs.glob("*.onnx")) == sorted(
        [f"{key}-b{BUILDER_VERSION}-int8.onnx", other_weights.name]
    )


def test_runtime_precision_and_weights_are_part_of_the_pipeline_fingerprint(
    tmp_path: Path,
) -> None:
    folder = make_tiny_bert(tmp_path / "model")
    cache = tmp_path / "cache"

    def fingerprint(**settings: object) -> str:
        s = Settings(embedding_model=str(folder), model_cache_dir=cache, **settings)  # type: ignore[arg-type]
        from ingest.context import build_pipeline

        pipeline: Pipeline = build_pipeline(s, build_embedder(s))
        return pipeline.fingerprint

    int8 = fingerprint(embedding_precision="int8")
    assert fingerprint(embedding_precision="int8") == int8, "nothing changed: no re-embedding"
    assert fingerprint(embedding_precision="fp32") != int8
    assert fingerprint(embedding_runtime="torch") != int8
    make_tiny_bert(folder, seed=1)  # new weights in the same folder
    assert fingerprint(embedding_precision="int8") != int8


def test_a_folder_that_is_not_a_supported_model_is_refused_with_its_reason(
    tmp_path: Path,
) -> None:
    folder = make_tiny_bert(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"missing model\.safetensors"):
        tiny_embedder(folder, tmp_path / "cache")
    folder = make_tiny_bert(tmp_path / "other")
    config = (folder / "config.json").read_text().replace('"bert"', '"xlm-roberta"')
    (folder / "config.json").write_text(config)
    with pytest.raises(ConfigError, match="'xlm-roberta' is not supported"):
        tiny_embedder(folder, tmp_path / "cache")


def test_weights_that_do_not_match_the_pinned_hash_are_refused(tmp_path: Path) -> None:
    folder = make_tiny_bert(tmp_path / "model")
    model = dataclasses.replace(resolve_model(str(folder)), pinned_sha256="0" * 64)
    embedder = OnnxEmbedder(model, cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="does not match the pinned SHA-256"):
        embedder.warm_up()
    assert not (tmp_path / "cache" / "onnx").exists(), "nothing is built from untrusted weights"


def test_the_hash_verdict_is_cached_by_path_size_and_mtime(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    cache = DigestCache(tmp_path / "cache")
    first = cache.sha256(weights)
    stat = weights.stat()
    # Same size and mtime: the remembered verdict, no re-hash (a fresh object, as a
    # new process would have).
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert DigestCache(tmp_path / "cache").sha256(weights) == first
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert DigestCache(tmp_path / "cache").sha256(weights) != first


BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingest.embedding.model_cache import DigestCache
    from ingest.embedding.model_files import resolve_model
    from ingest.embedding.onnx_graph import cached_graph
    model = resolve_model(sys.argv[1])
    cache = Path(sys.argv[2])
    sha = DigestCache(cache).sha256(model.weights)
    print(cached_graph(model.weights, sha, model.config, "int8", cache))
    """
)


@pytest.mark.slow
def test_two_processes_building_the_same_graph_at_once_both_get_it_whole(
    tmp_path: Path,
) -> None:
    folder = make_tiny_bert(tmp_path / "model", hidden=64, layers=4)
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_SCRIPT, str(folder), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    leftovers = [p.name for p in (cache / "onnx").iterdir() if p.suffix == ".tmp"]
    assert leftovers == []
    embedder = tiny_embedder(folder, cache, embedding_precision="int8")
    assert embedder.embed(TEXTS).shape == (len(TEXTS), 64)


# --- the real default model ---------------------------------------------------------


@pytest.mark.slow
def test_default_embedder_is_onnx_and_reads_past_128_tokens(real_embedder: OnnxEmbedder) -> None:
    assert real_embedder.model_id.startswith("onnx-int8:all-MiniLM-L6-v2@53aa5117/mean-256")
    assert real_embedder.max_tokens == 254
    head = "Durable ingestion keeps every accepted document safe across crashes. " * 12
    tail_a = "The signing keys are rotated every ninety days by the security team."
    tail_b = "Bananas ripen faster when stored next to apples in a paper bag."
    tokens = len(load_tokenizer(real_embedder.tokenizer_path).encode(head).ids)
    assert 130 < tokens < 200, "the tail sits past token 128 and within 256"
    a, b = real_embedder.embed([head + tail_a, head + tail_b])
    assert float(a @ b) < 0.9999, "text past token 128 shapes the vector"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (the ingest[torch] extra)")
def test_onnx_fp32_matches_sentence_transformers(tmp_path: Path) -> None:
    settings = Settings(embedding_precision="fp32")
    onnx_embedder = build_embedder(settings)
    torch_embedder = build_embedder(settings.model_copy(update={"embedding_runtime": "torch"}))
    assert isinstance(torch_embedder, LocalEmbedder)
    texts = [*TEXTS, *(t * 6 for t in TEXTS)] * 2  # short ones, and ones past 128 tokens
    cosines = (onnx_embedder.embed(texts) * torch_embedder.embed(texts)).sum(axis=1)
    assert cosines.min() >= 0.9999


@pytest.mark.skipif(HAS_TORCH, reason="PyTorch is installed: the torch runtime loads")
def test_the_torch_runtime_without_torch_says_which_extra_to_install() -> None:
    embedder = build_embedder(Settings(embedding_runtime="torch"))
    with pytest.raises(ConfigError, match=r"pip install 'ingest\[torch\]'"):
        embedder.warm_up()


@pytest.mark.slow
def test_a_texts_vector_does_not_depend_on_what_it_is_embedded_with(
    real_embedder: OnnxEmbedder,
) -> None:
    """Vectors are cached by text: int8 quantises activations per run, so a text
    batched with longer ones would get another vector than alone."""
    alone = real_embedder.embed(["Signing keys rotate every ninety days."])
    with_others = real_embedder.embed(
        ["Signing keys rotate every ninety days.", *(t * 5 for t in TEXTS)]
    )
    np.testing.assert_array_equal(with_others[0], alone[0])
