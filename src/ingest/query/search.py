"""Hybrid search: the question's vector and its keywords each rank chunks; the two
rankings are fused with weighted reciprocal rank fusion."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

from ingest.embedding import Embedder, to_blob
from ingest.errors import QueryError
from ingest.query.fusion import reciprocal_rank_fusion
from ingest.store import ChunkHit, Store
from ingest.store.store import MetadataFilter

SearchMode = Literal["hybrid", "vector", "keyword"]


# A search result: the store's chunk record with its fused score.
SearchHit = ChunkHit

# Hybrid search on PostgreSQL runs its keyword leg here while the calling thread
# embeds the query and runs the vector leg: the two legs wait on different things
# (the database server's keyword scoring; the embedding model, then the HNSW walk),
# so the search takes about the longer leg instead of their sum. One pool per
# process (a forked child starts its own: the parent's threads are not in it); its
# threads only wait on the database.
_keyword_legs: tuple[int, ThreadPoolExecutor] | None = None
_keyword_legs_lock = threading.Lock()


def _keyword_pool() -> ThreadPoolExecutor:
    global _keyword_legs
    with _keyword_legs_lock:
        if _keyword_legs is None or _keyword_legs[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyword-leg")
            _keyword_legs = (os.getpid(), pool)
        return _keyword_legs[1]


@dataclass(frozen=True, slots=True)
class FusionConfig:
    rrf_k: int = 60
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    candidates: int = 50


class Searcher:
    def __init__(self, store: Store, embedder: Embedder, fusion: FusionConfig) -> None:
        self.store = store
        self.embedder = embedder
        self.fusion = fusion

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        collection: str | None = None,
        filters: MetadataFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[ChunkHit]:
        if not query.strip():
            raise QueryError("the query is empty")
        if k < 1:
            raise QueryError("k must be at least 1")
        depth = max(k, self.fusion.candidates)
        rankings: list[tuple[list[int], float]] = []
        scores: dict[int, float] = {}
        keyword_leg: Future[list[tuple[int, float]]] | None = None
        if mode == "hybrid" and self.store.dialect == "postgresql":
            # In a copy of this thread's context: its logs keep the request's fields.
            keyword_leg = _keyword_pool().submit(
                contextvars.copy_context().run,
                self._keyword_ranking,
                query,
                depth,
                collection,
                filters,
            )
        if mode in ("hybrid", "vector"):
            try:
                ranked = self._vector_ranking(query, depth, collection, filters)
            except BaseException:
                if keyword_leg is not None:
                    keyword_leg.cancel()
                raise
            rankings.append(([pk for pk, _ in ranked], self.fusion.vector_weight))
            scores.update(ranked)
        if mode in ("hybrid", "keyword"):
            if keyword_leg is not None:
                ranked = keyword_leg.result()
            else:
                ranked = self._keyword_ranking(query, depth, collection, filters)
            rankings.append(([pk for pk, _ in ranked], self.fusion.keyword_weight))
            if mode == "keyword":
                scores.update(ranked)
        if mode == "hybrid":
            fused = reciprocal_rank_fusion(rankings, k=self.fusion.rrf_k)[:k]
        else:
            fused = [(pk, scores[pk]) for pk in rankings[0][0][:k]]
        return _to_hits(fused, self.store.hits([pk for pk, _ in fused]))

    def _vector_ranking(
        self, query: str, depth: int, collection: str | None, filters: MetadataFilter | None
    ) -> list[tuple[int, float]]:
        vector = self.embedder.embed_queries([query])[0]
        return self.store.vector_search(
            self.embedder.model_id, to_blob(vector), depth, collection=collection, filters=filters
        )

    def _keyword_ranking(
        self, query: str, depth: int, collection: str | None, filters: MetadataFilter | None
    ) -> list[tuple[int, float]]:
        return self.store.keyword_search(query, depth, collection=collection, filters=filters)


def _to_hits(fused: list[tuple[int, float]], by_pk: Mapping[int, ChunkHit]) -> list[ChunkHit]:
    # A chunk deleted between ranking and fetch is left out.
    return [replace(by_pk[pk], score=round(score, 6)) for pk, score in fused if pk in by_pk]
