"""Hybrid search on PostgreSQL runs its keyword leg while the query is embedded and
the vector leg runs, instead of after them: the search takes about the longer leg."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from ingest.embedding import Vectors
from ingest.errors import QueryError
from ingest.logs import log_context
from ingest.query.search import FusionConfig, Searcher
from ingest.store import Store
from tests.conftest import CountingEmbedder
from tests.support.postgres import PostgresServer

DEADLINE = 10.0  # seconds; each leg waits at most this long for the other


class KeywordLegStore:
    """The store, with its keyword search announcing that it started, then waiting
    (at most DEADLINE) until the query has been embedded."""

    def __init__(self, store: Store, fail: bool = False) -> None:
        self.store = store
        self.fail = fail
        self.started = threading.Event()
        self.embedded = threading.Event()
        self.log_fields: dict[str, str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def keyword_search(self, *args: Any, **kwargs: Any) -> list[tuple[int, float]]:
        self.log_fields = log_context.get()
        self.started.set()
        self.embedded.wait(DEADLINE)
        if self.fail:
            raise QueryError("the keyword leg failed")
        return self.store.keyword_search(*args, **kwargs)


class WaitingEmbedder(CountingEmbedder):
    """Embeds a query once the keyword leg has started, or after DEADLINE."""

    def __init__(self, inner: CountingEmbedder, legs: KeywordLegStore) -> None:
        super().__init__(inner.inner)
        self.legs = legs
        self.keyword_leg_was_running: bool | None = None

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.keyword_leg_was_running = self.legs.started.wait(DEADLINE)
        self.legs.embedded.set()
        return super().embed_queries(texts)


@pytest.fixture
def pg_store(postgres_server: PostgresServer) -> Any:
    s = Store.open(postgres_server.create_database())
    s.migrate()
    yield s
    s.close()


def test_the_keyword_leg_runs_while_the_query_is_embedded(
    pg_store: Store, embedder: CountingEmbedder
) -> None:
    legs = KeywordLegStore(pg_store)
    waiting = WaitingEmbedder(embedder, legs)
    searcher = Searcher(legs, waiting, FusionConfig())  # type: ignore[arg-type]
    assert searcher.search("harbour cranes", k=5) == []
    assert waiting.keyword_leg_was_running is True


def test_a_failing_keyword_leg_fails_the_search(
    pg_store: Store, embedder: CountingEmbedder
) -> None:
    legs = KeywordLegStore(pg_store, fail=True)
    searcher = Searcher(legs, WaitingEmbedder(embedder, legs), FusionConfig())  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="keyword leg failed"):
        searcher.search("harbour cranes", k=5)


def test_the_keyword_leg_logs_with_the_request_s_fields(
    pg_store: Store, embedder: CountingEmbedder
) -> None:
    legs = KeywordLegStore(pg_store)
    searcher = Searcher(legs, WaitingEmbedder(embedder, legs), FusionConfig())  # type: ignore[arg-type]
    token = log_context.set({"request_id": "r-42"})
    try:
        searcher.search("harbour cranes", k=5)
    finally:
        log_context.reset(token)
    assert legs.log_fields == {"request_id": "r-42"}
