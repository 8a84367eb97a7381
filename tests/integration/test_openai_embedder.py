"""OpenAIEmbedder against a fake OpenAI-compatible server speaking real HTTP.

The server is the stdlib ThreadingHTTPServer on 127.0.0.1 and a free port. It
answers POST /v1/embeddings the way OpenAI, TEI, vLLM and Ollama do, with
deterministic vectors: a signed, hashed bag of words in 64 dimensions, so texts
that share words get similar vectors. It records every request and can be told
to fail the next few requests with a given status (tests/support/fake_openai.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.embedding.http import OpenAIEmbedder
from ingest.errors import EmbeddingError
from ingest.pipeline.chunking import text_hash
from ingest.settings import Settings
from tests.fixtures_docs import make_txt
from tests.support.fake_openai import API_KEY, DIM, MODEL, FakeOpenAI, bag_of_words


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.stop()


MakeEmbedder = Callable[..., OpenAIEmbedder]


@pytest.fixture
def make_embedder(server: FakeOpenAI) -> Iterator[MakeEmbedder]:
    """OpenAIEmbedders aimed at the fake server, with fast retries; closed afterwards."""
    made: list[OpenAIEmbedder] = []

    def make(**overrides: Any) -> OpenAIEmbedder:
        options: dict[str, Any] = {
            "url": server.url,
            "model": MODEL,
            "api_key": API_KEY,
            "timeout_s": 5.0,
            "attempts": 4,
            "backoff_s": 0.001,
        }
        options.update(overrides)
        embedder = OpenAIEmbedder(**options)
        made.append(embedder)
        return embedder

    yield make
    for embedder in made:
        embedder.close()


TEXTS = [
    "Rotating the signing keys happens every ninety days.",
    "Backups of the ledger database go to cold storage nightly.",
    "The onboarding checklist covers laptops and badges.",
    "Quarterly revenue grew in the northern region.",
    "Vault console access requires two approvers.",
]


def test_sends_model_inputs_and_bearer_key(server: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    vectors = make_embedder().embed(TEXTS[:2])

    assert vectors.shape == (2, DIM)
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"model": MODEL, "input": TEXTS[:2], "encoding_format": "float"}


def test_rows_are_unit_length_in_input_order_when_data_is_shuffled(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    server.state.shuffle = True

    vectors = make_embedder().embed(TEXTS)

    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for text, row in zip(TEXTS, vectors, strict=True):
        expected = np.asarray(bag_of_words(text), dtype=np.float32)
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), rtol=1e-5)
    # The fake really did shuffle: otherwise this test proves nothing.
    [sent] = server.state.sent_indexes
    assert sorted(sent) == list(range(len(TEXTS)))
    assert sent != sorted(sent)


def test_dimensions_are_probed_from_the_endpoint(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder()
    assert embedder.dimensions == DIM
    assert embedder.dimensions == DIM
    assert len(server.requests) == 1
    assert embedder.embed([]).shape == (0, DIM)
    assert len(server.requests) == 1
    assert embedder.model_id == f"openai:{MODEL}"


@pytest.mark.parametrize("status", [429, 503])
def test_busy_answers_are_retried(
    server: FakeOpenAI, make_embedder: MakeEmbedder, status: int
) -> None:
    server.fail_next(2, status)

    vectors = make_embedder().embed(TEXTS[:3])

    assert vectors.shape == (3, DIM)
    assert len(server.requests) == 3
    assert all(r.body["input"] == TEXTS[:3] for r in server.requests)


def test_persistent_503_gives_up_after_the_configured_attempts(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    server.fail_next(10, 503, "overloaded, try later")

    with pytest.raises(EmbeddingError) as caught:
        make_embedder(attempts=3).embed(TEXTS[:1])

    assert len(server.requests) == 3
    message = str(caught.value)
    assert f"{server.url}/embeddings" in message
    assert "503" in message
    assert "overloaded, try later" in message


def test_wrong_key_fails_at_once_with_the_servers_message(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    with pytest.raises(EmbeddingError) as caught:
        make_embedder(api_key="sk-wrong").embed(TEXTS[:1])

    assert len(server.requests) == 1
    assert server.requests[0].headers["authorization"] == "Bearer sk-wrong"
    message = str(caught.value)
    assert "401" in message
    assert "Incorrect API key provided" in message
    assert f"{server.url}/embeddings" in message


def test_missing_key_is_refused(server: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    with pytest.raises(EmbeddingError, match="401"):
        make_embedder(api_key=None).embed(TEXTS[:1])
    [request] = server.requests
    assert "authorization" not in request.headers


def test_bad_request_fails_at_once_with_the_servers_message(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    server.fail_next(1, 400, "This model's maximum context length is 8192 tokens")

    with pytest.raises(EmbeddingError, match="maximum context length") as caught:
        make_embedder().embed(TEXTS[:1])

    assert len(server.requests) == 1
    assert "400" in str(caught.value)


def test_connection_refused_is_an_embedding_error(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder(attempts=2)
    embedder.embed(TEXTS[:1])  # leaves a keep-alive connection in the pool
    server.stop()

    with pytest.raises(EmbeddingError, match=f"127.0.0.1:{server.port}/v1/embeddings"):
        embedder.embed(TEXTS[:1])
    assert len(server.requests) == 1


def test_mismatched_vector_count_is_an_embedding_error(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    server.state.drop_last_vector = True

    with pytest.raises(EmbeddingError, match="returned 2 vectors for 3 inputs"):
        make_embedder().embed(TEXTS[:3])
    assert len(server.requests) == 1


def test_a_body_that_is_not_an_embeddings_list_is_an_embedding_error(
    server: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    server.state.raw_body = b"<html><body>Gateway login</body></html>"

    with pytest.raises(EmbeddingError, match="not an OpenAI embeddings list"):
        make_embedder().embed(TEXTS[:1])
    assert len(server.requests) == 1


DOCS = {
    "keys.txt": "Rotating the signing keys happens every ninety days through the vault console.",
    "backups.txt": "Backups of the ledger database are copied to cold storage each night.",
    "onboarding.txt": "The onboarding checklist covers laptops, badges, and payroll access.",
    "revenue.txt": "Quarterly revenue grew fastest in the northern sales region.",
}


def test_end_to_end_ingest_and_search_through_the_http_embedder(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        make_txt(docs, name, text)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        embedder="openai",
        embedding_url=server.url,
        embedding_model=MODEL,
        embedding_api_key=SecretStr(API_KEY),
    )
    ctx = Context(settings)
    embedder = ctx.embedder
    assert isinstance(embedder, OpenAIEmbedder)
    try:
        assert embedder.model_id == f"openai:{MODEL}"

        first = add_paths(ctx, [docs], collection="default")

        assert (first.added, first.failed) == (len(DOCS), 0), first.errors
        assert first.embedded == first.chunks == len(DOCS)
        embedded_inputs = [text for r in server.requests for text in r.body["input"]]
        assert len(embedded_inputs) == len(DOCS)
        assert all(r.body["model"] == MODEL for r in server.requests)
        counts = ctx.store.counts()
        assert (counts["documents"], counts["chunks"], counts["vectors"]) == (4, 4, 4)
        # The vectors are keyed by the endpoint's model id, not the offline model's.
        hashes = [text_hash(t) for t in embedded_inputs]
        assert set(ctx.store.cached_vectors(f"openai:{MODEL}", hashes)) == set(hashes)
        assert ctx.store.cached_vectors("sentence-transformers/all-MiniLM-L6-v2", hashes) == {}

        for mode in ("vector", "hybrid"):
            hits = ctx.searcher.search("ledger backups cold storage", k=3, mode=mode)
            assert Path(hits[0].source).name == "backups.txt", mode
            hits = ctx.searcher.search("signing keys vault", k=3, mode=mode)
            assert Path(hits[0].source).name == "keys.txt", mode

        before = len(server.requests)
        again = add_paths(ctx, [docs], collection="default")

        assert (again.skipped, again.embedded) == (len(DOCS), 0)
        assert len(server.requests) == before, "a second ingest must not call the endpoint"
        assert ctx.store.counts()["vectors"] == 4
    finally:
        embedder.close()  # Context.close() closes only the store
        ctx.close()
