"""Weighted reciprocal rank fusion (pure)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[Sequence[K], float]], *, k: int = 60
) -> list[tuple[K, float]]:
    """Fuse ranked lists: score(d) = sum over lists of weight / (k + rank of d), rank from 1.

    Returns (item, score) best first; ties keep the order items were first seen."""
    scores: dict[K, float] = {}
    for ranked, weight in rankings:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
