"""BM25 keyword ranking: the ranking properties on both backends, and on PostgreSQL
the statistics it reads (document frequency per lexeme, chunk and token totals),
which must equal a recount of the chunks after any mix of writes, concurrent
ones included."""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Iterator, Sequence

import pytest
import sqlalchemy as sa

from ingest.store import Store
from ingest.store.documents import ChunkRecord, document_id_for
from tests.support.postgres import PostgresServer

COLLECTION = "default"


def _chunks(source: str, texts: Sequence[str]) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            id=hashlib.sha256(f"{source}\x00{i}".encode()).hexdigest()[:32],
            ordinal=i,
            text=text,
            text_hash=hashlib.sha256(text.encode()).hexdigest(),
            token_count=len(text.split()),
            page=None,
            heading=None,
        )
        for i, text in enumerate(texts)
    ]


def _write(store: Store, source: str, *texts: str) -> None:
    with store.transaction() as tx:
        tx.documents.replace(
            collection=COLLECTION,
            source_uri=source,
            content_hash=hashlib.sha256("".join(texts).encode()).hexdigest(),
            fingerprint="f",
            size_bytes=1,
            metadata={},
            chunk_rows=_chunks(source, texts),
        )


def _delete(store: Store, *sources: str) -> None:
    store.delete_documents([document_id_for(COLLECTION, s) for s in sources])


def _ranked_sources(store: Store, query: str) -> list[str]:
    pks = [pk for pk, _ in store.keyword_search(query, 10)]
    hits = store.hits(pks)
    return [hits[pk].source for pk in pks]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    s.migrate()
    yield s
    s.close()


# --- ranking, both backends ---------------------------------------------------------


def test_a_rare_word_outranks_a_common_one(store: Store) -> None:
    # Written first, so a ranking blind to rarity would put it first on the tie.
    _write(store, "common.txt", "the orchard grows apple trees by the river")
    for i in range(8):
        _write(store, f"filler{i}.txt", f"apple harvest number {i} was stored in the barn")
    _write(store, "rare.txt", "the orchard grows quince trees by the river")
    ranked = _ranked_sources(store, "apple quince")
    assert ranked[0] == "rare.txt"
    assert "common.txt" in ranked


def test_a_shorter_chunk_outranks_a_longer_one_with_the_word_as_often(store: Store) -> None:
    padding = " ".join(f"filler{i}" for i in range(60))
    _write(store, "long.txt", f"quince jelly recipe {padding}")
    _write(store, "short.txt", "quince jelly recipe")
    for i in range(5):
        _write(store, f"other{i}.txt", f"pear tart recipe number {i}")
    assert _ranked_sources(store, "quince")[:2] == ["short.txt", "long.txt"]


# --- statistics, PostgreSQL -------------------------------------------------------


@pytest.fixture
def pg_store(postgres_server: PostgresServer) -> Iterator[Store]:
    s = Store.open(postgres_server.create_database())
    s.migrate()
    yield s
    s.close()


def _stats(store: Store) -> dict[str, tuple[int, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT lexeme, chunks, tokens FROM keyword_lexemes WHERE chunks <> 0")
        )
        return {r.lexeme: (r.chunks, r.tokens) for r in rows}


def _recount(store: Store) -> dict[str, tuple[int, int]]:
    """The statistics counted from scratch, from the chunks' tsvectors."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.lexeme, count(*) AS chunks, sum(cardinality(t.positions)) AS tokens "
                "FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) t GROUP BY t.lexeme"
            )
        )
        counted = {r.lexeme: (int(r.chunks), int(r.tokens)) for r in rows}
        total = conn.execute(sa.text("SELECT count(*), sum(keyword_length) FROM chunks")).one()
    if total[0]:
        counted[""] = (int(total[0]), int(total[1]))
    return counted


def test_statistics_follow_inserts_reingests_and_deletes(pg_store: Store) -> None:
    _write(pg_store, "a.txt", "Cranes lift containers", "The berths are full of cranes")
    _write(pg_store, "b.txt", "A storm closed the harbour")
    assert _stats(pg_store) == _recount(pg_store)
    assert _stats(pg_store)["crane"] == (2, 2)
    assert _stats(pg_store)[""] == (3, 9)

    _write(pg_store, "a.txt", "Ferries replaced the cranes")  # re-ingest, changed
    assert _stats(pg_store) == _recount(pg_store)
    assert _stats(pg_store)["crane"] == (1, 1)
    assert "contain" not in _stats(pg_store)

    _delete(pg_store, "a.txt")
    assert _stats(pg_store) == _recount(pg_store)
    _delete(pg_store, "b.txt")
    assert _stats(pg_store) == {}


def test_a_failed_write_leaves_the_statistics_as_they_were(pg_store: Store) -> None:
    _write(pg_store, "a.txt", "Cranes lift containers")
    before = _stats(pg_store)

    def write_then_fail() -> None:
        with pg_store.transaction() as tx:
            tx.documents.replace(
                collection=COLLECTION,
                source_uri="b.txt",
                content_hash="h",
                fingerprint="f",
                size_bytes=1,
                metadata={},
                chunk_rows=_chunks("b.txt", ["Cranes everywhere"]),
            )
            raise RuntimeError("the job failed before it committed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert _stats(pg_store) == before


def test_concurrent_writers_sharing_words_keep_exact_statistics(pg_store: Store) -> None:
    """Two writers re-ingest and delete documents made of the same words at once:
    no update is lost and no writer deadlocks (each would raise)."""
    vocabulary = [f"word{i}" for i in range(40)]
    errors: list[BaseException] = []

    def writer(name: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for step in range(40):
                source = f"{name}-{rng.randrange(6)}.txt"
                if step % 7 == 6:
                    _delete(pg_store, source)
                    continue
                texts = [" ".join(rng.choices(vocabulary, k=12)) for _ in range(rng.randint(1, 3))]
                _write(pg_store, source, *texts)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in (("x", 1), ("y", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert _stats(pg_store) == _recount(pg_store)
    assert _stats(pg_store)[""][0] > 0


# --- the rows ranked, PostgreSQL ----------------------------------------------------


def test_a_word_found_nowhere_leaves_the_rarest_known_words_rows_ranked(
    database_url: str,
) -> None:
    """On PostgreSQL only the first `keyword_rank_limit` matches are ranked. A query
    word no chunk holds must not push that choice onto the commonest words: the
    rows ranked are those of the rarest word some chunk holds, the ones BM25 puts
    first, though they were written last."""
    store = Store.open(database_url, keyword_rank_limit=100)
    store.migrate()
    try:
        for i in range(150):
            _write(store, f"harbour{i:03d}.txt", f"harbour report {i} on the berths")
        for i in range(120):
            _write(store, f"ferry{i:03d}.txt", f"harbour ferry timetable {i}")
        pks = [pk for pk, _ in store.keyword_search("harbour ferry 4242424242", 60)]
        hits = store.hits(pks)
        sources = [hits[pk].source for pk in pks]
    finally:
        store.close()
    assert len(sources) == 60
    assert all(s.startswith("ferry") for s in sources), sources


def _exact_bm25(store: Store, query_lexemes: Sequence[str]) -> dict[str, float]:
    """BM25 of every chunk, computed here from the chunks' tsvectors alone."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.source_uri, t.lexeme, cardinality(t.positions) AS tf, "
                "c.keyword_length AS length FROM chunks c "
                "JOIN documents d ON d.id = c.document_id "
                "LEFT JOIN LATERAL unnest(c.tsv) t ON true"
            )
        ).all()
    lengths = {r.source_uri: r.length for r in rows}
    n, average = len(lengths), sum(lengths.values()) / len(lengths)
    df = {x: len({r.source_uri for r in rows if r.lexeme == x}) for x in query_lexemes}
    scores: dict[str, float] = {}
    for r in rows:
        if r.lexeme in query_lexemes and df[r.lexeme]:
            idf = max(math.log((n - df[r.lexeme] + 0.5) / (df[r.lexeme] + 0.5)), 1e-6)
            norm = 0.25 + 0.75 * r.length / average
            score = idf * r.tf * 2.2 / (r.tf + 1.2 * norm)
            scores[r.source_uri] = scores.get(r.source_uri, 0.0) + score
    return scores


def test_ranking_equals_bm25_computed_from_the_tsvectors_filtered_or_not(
    pg_store: Store,
) -> None:
    """With every match ranked (the limit above the matches), the search returns
    BM25's top k with its scores, unfiltered (chunks alone) as filtered (joined to
    documents and collections), a word found nowhere included."""
    rng = random.Random(7)
    vocabulary = ["crane", "berth", "ferry", "storm", "quay", "tide", "pilot", "cargo"]
    for i in range(40):
        words = rng.choices(vocabulary, k=rng.randint(2, 12))
        _write(pg_store, f"doc{i:02d}.txt", " ".join(words))
    query = "storm pilot cargo zanzibarx"
    expected = _exact_bm25(pg_store, ["storm", "pilot", "cargo"])
    best = sorted(expected.items(), key=lambda e: -e[1])[:10]
    for collection in (None, COLLECTION):
        ranked = pg_store.keyword_search(query, 10, collection=collection)
        hits = pg_store.hits([pk for pk, _ in ranked])
        got = [(hits[pk].source, score) for pk, score in ranked]
        assert [round(s, 9) for _, s in got] == [round(s, 9) for _, s in best]
        assert all(abs(expected[source] - score) < 1e-9 for source, score in got)
