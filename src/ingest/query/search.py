"""Hybrid search: the question's vector and its keywords each rank chunks; the two
rankings are fused with weighted reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Mapping
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
        if mode in ("hybrid", "vector"):
            ranked = self._vector_ranking(query, depth, collection, filters)
            rankings.append(([pk for pk, _ in ranked], self.fusion.vector_weight))
            scores.update(ranked)
        if mode in ("hybrid", "keyword"):
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
        vector = self.embedder.embed([query])[0]
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
