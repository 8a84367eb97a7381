"""Keyword ranking on both backends, with a word common to every chunk.

On PostgreSQL only INGEST_KEYWORD_RANK_LIMIT matches are ranked per query, chosen
on the query's rarest words from the table's statistics: a rare word must still
win over a table full of common ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.settings import Settings
from tests.conftest import CountingEmbedder

COMMON_CHUNKS = 150
RANK_LIMIT = 100  # fewer than the chunks every common word matches


@pytest.fixture
def harbour(database_url: str, tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Context]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(COMMON_CHUNKS):
        (docs / f"report{i:03d}.txt").write_text(
            f"Harbour report {i}: containers moved by cranes across the berths."
        )
    # Last in, so an arbitrary first RANK_LIMIT matches would leave it out.
    (docs / "zz-storm.txt").write_text(
        "Harbour report: a zanzibar storm closed the berths and stopped the cranes."
    )
    settings = Settings(
        database_url=database_url,
        incoming_dir=tmp_path / "incoming",
        keyword_rank_limit=RANK_LIMIT,
    )
    ctx = Context(settings, embedder=embedder)
    report = add_paths(ctx, [docs], collection="default")
    assert report.added == COMMON_CHUNKS + 1, report.errors
    with ctx.store.engine.begin() as conn:
        # What autovacuum does on a live table: keyword ranking reads these statistics.
        conn.execute(sa.text("ANALYZE"))
    yield ctx
    ctx.close()


def _names(ctx: Context, query: str, k: int) -> list[str]:
    return [Path(h.source).name for h in ctx.searcher.search(query, k=k, mode="keyword")]


def test_a_rare_word_wins_among_common_ones(harbour: Context) -> None:
    assert _names(harbour, "harbour cranes berths zanzibar", k=5)[0] == "zz-storm.txt"


def test_a_query_of_common_words_still_fills_k(harbour: Context) -> None:
    names = _names(harbour, "harbour containers cranes", k=20)
    assert len(names) == 20
    assert len(set(names)) == 20


def test_a_word_found_nowhere_does_not_empty_the_results(harbour: Context) -> None:
    names = _names(harbour, "harbour cranes 4242424242", k=20)
    assert len(names) == 20


def test_collection_filter_applies_to_ranked_matches(harbour: Context, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "log.txt").write_text("A zanzibar ferry log, kept apart from the harbour.")
    assert add_paths(harbour, [other], collection="ferries").added == 1
    hits = harbour.searcher.search("zanzibar harbour", k=5, mode="keyword", collection="ferries")
    assert [Path(h.source).name for h in hits] == ["log.txt"]
