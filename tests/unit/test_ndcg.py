"""The bench's retrieval metric: nDCG@k as trec_eval computes it (linear gains)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench.bench_common import (
    dedupe,
    generate_tiny,
    load_corpus,
    load_qrels,
    load_queries,
    ndcg_at_k,
    percentile,
    restrict_qrels,
    select_docs,
)


def test_perfect_ranking_scores_one() -> None:
    assert ndcg_at_k(["a", "b", "x"], {"a": 2, "b": 1}) == pytest.approx(1.0)


def test_no_relevant_document_retrieved_scores_zero() -> None:
    assert ndcg_at_k(["x", "y"], {"a": 1}) == 0.0


def test_single_relevant_document_at_rank_three() -> None:
    # DCG = 1 / log2(3 + 1); IDCG = 1 / log2(2) = 1.
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}) == pytest.approx(1 / math.log2(4))


def test_graded_relevance_uses_linear_gains() -> None:
    ranked = ["b", "a"]
    relevant = {"a": 2, "b": 1}
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant) == pytest.approx(dcg / idcg)


def test_only_the_top_k_count() -> None:
    ranked = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranked, {"a": 1}, k=10) == 0.0
    assert ndcg_at_k(ranked, {"a": 1}, k=11) > 0.0


def test_ideal_is_cut_at_k_too() -> None:
    relevant = {f"r{i}": 1 for i in range(20)}
    ranked = [f"r{i}" for i in range(10)]
    assert ndcg_at_k(ranked, relevant, k=10) == pytest.approx(1.0)


def test_repeated_documents_count_once() -> None:
    # Two chunks of the same document must not earn its gain twice.
    assert ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}) == pytest.approx(1.0)
    assert dedupe(["a", "b", "a", "c"]) == ["a", "b", "c"]


def test_non_positive_judgments_are_not_relevant() -> None:
    assert ndcg_at_k(["a"], {"a": 0, "b": -1}) == 0.0


def test_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(["a"], {"a": 1}, k=0)


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0


def test_tiny_corpus_round_trips_through_the_beir_loaders(tmp_path: Path) -> None:
    root = generate_tiny(tmp_path / "tiny")
    docs = load_corpus(root)
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(root / "qrels" / "test.tsv")
    assert len(docs) > 10
    assert set(qrels) <= set(queries)
    assert all(doc in {d.id for d in docs} for rels in qrels.values() for doc in rels)


def test_limit_keeps_judged_documents_and_drops_unscorable_queries(tmp_path: Path) -> None:
    root = generate_tiny(tmp_path / "tiny")
    docs = load_corpus(root)
    qrels = load_qrels(root / "qrels" / "test.tsv")
    kept = select_docs(docs, {"q1": qrels["q1"]}, limit=3)
    assert {d.id for d in kept} <= set(qrels["q1"])
    restricted = restrict_qrels(qrels, (d.id for d in kept))
    assert list(restricted) == ["q1"]
