"""Ingestion end to end on a real SQLite file with the real offline model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.settings import Settings
from ingest.store import Job
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import (
    make_binary_txt,
    make_corrupt_pdf,
    make_docx,
    make_empty,
    make_html,
    make_md,
    make_pdf,
    make_txt,
)

PARAGRAPHS = [
    "Rotating the signing keys happens every ninety days through the vault console.",
    "Backups of the ledger database are copied to cold storage each night at two o'clock.",
    "The onboarding checklist covers laptops, badges, and access to the payroll system.",
]


def _sources(ctx: Context, query: str, k: int = 5) -> list[str]:
    return [Path(h.source).name for h in ctx.searcher.search(query, k=k)]


def _long_doc(topic_sentences: list[str]) -> str:
    # Several paragraphs, each long enough to become its own chunk.
    return "\n\n".join((s + " ") * 12 for s in topic_sentences)


def test_docx_table_text_is_searchable(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_docx(
        docs,
        "inventory.docx",
        ["Quarterly inventory of the warehouse."],
        [["Item", "Location"], ["zircon centrifuge", "bay seventeen"]],
    )
    make_txt(docs, "other.txt", PARAGRAPHS[0])
    report = add_paths(ctx, [docs], collection="default")
    assert report.added == 2, report.errors
    hits = ctx.searcher.search("zircon centrifuge", k=1, mode="keyword")
    assert [Path(h.source).name for h in hits] == ["inventory.docx"]
    assert "bay seventeen" in hits[0].text


def test_html_navigation_and_footer_are_not_indexed(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_html(
        docs,
        "page.html",
        main_text=" ".join(PARAGRAPHS * 3),
        nav_text="Quokkanavigation Pricing Careers",
        footer_text="Copyright Flibbertigibbet Incorporated",
    )
    report = add_paths(ctx, [docs], collection="default")
    assert report.added == 1, report.errors
    assert ctx.searcher.search("Quokkanavigation", mode="keyword") == []
    assert ctx.searcher.search("Flibbertigibbet", mode="keyword") == []
    assert _sources(ctx, "signing keys vault", k=1) == ["page.html"]


def test_pdf_hits_carry_their_page(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs, "manual.pdf", [PARAGRAPHS[1], PARAGRAPHS[0]])
    add_paths(ctx, [docs], collection="default")
    hit = ctx.searcher.search("rotating signing keys", k=1)[0]
    assert hit.page == 2
    assert Path(hit.source).name == "manual.pdf"


def test_markdown_hits_carry_their_heading(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_md(docs, "guide.md", f"# Security\n\n{PARAGRAPHS[0]}\n\n# People\n\n{PARAGRAPHS[2]}\n")
    add_paths(ctx, [docs], collection="default")
    hit = ctx.searcher.search("onboarding laptops badges", k=1)[0]
    assert hit.heading == "People"


def test_unchanged_files_are_skipped_without_embedding(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(PARAGRAPHS):
        make_txt(docs, f"doc{i}.txt", text)
    first = add_paths(ctx, [docs], collection="default")
    assert (first.added, first.failed) == (3, 0)
    assert embedder.texts_embedded == first.embedded > 0
    embedder.texts_embedded = 0

    again = add_paths(ctx, [docs], collection="default")

    assert (again.skipped, again.added, again.updated) == (3, 0, 0)
    assert embedder.texts_embedded == 0
    assert ctx.store.counts()["chunks"] == first.chunks


def test_editing_one_paragraph_reembeds_only_changed_chunks(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    sentences = [
        "Alpha team maintains the billing service and its invoices.",
        "Bravo team runs the search cluster and its relevance tuning.",
        "Charlie team owns the mobile applications and their releases.",
        "Delta team keeps the data warehouse and nightly reports healthy.",
        "Echo team answers the support queue and writes the help centre.",
        "Foxtrot team handles procurement, vendors and their contracts.",
    ]
    path = make_txt(docs, "teams.txt", _long_doc(sentences))
    first = add_paths(ctx, [docs], collection="default")
    assert first.chunks >= 4, "the fixture must span several chunks"
    embedder.texts_embedded = 0

    sentences[2] = "Charlie team now owns the kiosk firmware and its signed updates."
    path.write_text(_long_doc(sentences))
    second = add_paths(ctx, [docs], collection="default")

    assert second.updated == 1
    assert 1 <= embedder.texts_embedded < first.chunks
    assert embedder.texts_embedded == second.embedded
    assert _sources(ctx, "kiosk firmware signed updates", k=1) == ["teams.txt"]
    stale = ctx.searcher.search("mobile applications releases", mode="keyword", k=50)
    assert all("mobile applications" not in h.text for h in stale)


def test_sync_removes_deleted_files_from_search(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_txt(docs, "keep.txt", PARAGRAPHS[0])
    gone = make_txt(docs, "gone.txt", PARAGRAPHS[1])
    add_paths(ctx, [docs], collection="default")
    assert "gone.txt" in _sources(ctx, "ledger backups cold storage", k=1)

    gone.unlink()
    without_sync = add_paths(ctx, [docs], collection="default")
    assert without_sync.deleted == 0
    report = add_paths(ctx, [docs], collection="default", sync=True)

    assert (report.deleted, report.skipped) == (1, 1)
    assert "gone.txt" not in _sources(ctx, "ledger backups cold storage", k=5)
    assert ctx.store.counts()["documents"] == 1


def test_sync_leaves_other_folders_alone(ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_txt(tmp_path / "a", "a.txt", PARAGRAPHS[0])
    make_txt(tmp_path / "b", "b.txt", PARAGRAPHS[1])
    add_paths(ctx, [tmp_path / "a", tmp_path / "b"], collection="default")
    report = add_paths(ctx, [tmp_path / "a"], collection="default", sync=True)
    assert report.deleted == 0
    assert ctx.store.counts()["documents"] == 2


def test_bad_files_fail_with_reasons_while_the_rest_ingest(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    small_limit = settings.model_copy(update={"max_file_bytes": 20_000})
    ctx = Context(small_limit, embedder=embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    make_txt(docs, "good.txt", PARAGRAPHS[0])
    make_corrupt_pdf(docs, "broken.pdf")
    make_empty(docs, "empty.txt")
    make_binary_txt(docs, "binary.txt")
    make_empty(docs, "blank.docx")
    make_txt(docs, "huge.txt", "word " * 10_000)
    (docs / "picture.bmp").write_bytes(b"BM" + b"\x00" * 64)  # no parser reads .bmp

    report = add_paths(ctx, [docs], collection="default")

    reasons = {Path(e["source"]).name: e["reason"] for e in report.errors}
    assert (report.added, report.failed) == (1, 6)
    assert "PDF" in reasons["broken.pdf"]
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["blank.docx"]
    assert "over the limit" in reasons["huge.txt"]
    assert "unsupported" in reasons["picture.bmp"]
    assert ctx.store.counts()["by_status"] == {"ready": 1, "failed": 6}
    assert _sources(ctx, "rotating signing keys", k=1) == ["good.txt"]
    ctx.close()


def test_collections_and_metadata_filter_search(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_txt(docs, "keys.txt", PARAGRAPHS[0])
    add_paths(ctx, [docs], collection="security", metadata={"team": "infra"})
    add_paths(ctx, [docs], collection="hr", metadata={"team": "people"})

    assert {h.collection for h in ctx.searcher.search("signing keys", k=5)} == {"security", "hr"}
    only_hr = ctx.searcher.search("signing keys", k=5, collection="hr")
    assert {h.collection for h in only_hr} == {"hr"}
    infra = ctx.searcher.search("signing keys", k=5, filters={"team": "infra"})
    assert {h.collection for h in infra} == {"security"}
    assert ctx.searcher.search("signing keys", k=5, filters={"team": "nobody"}) == []


def test_source_code_records_its_language_in_the_metadata(ctx: Context, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_txt(docs, "rotate.py", f"# {PARAGRAPHS[0]}\ndef rotate(): ...\n")
    make_txt(docs, "keys.txt", PARAGRAPHS[0])
    add_paths(ctx, [docs], collection="default", metadata={"team": "infra"})

    hits = ctx.searcher.search("signing keys", k=5, filters={"code_language": "Python"})

    assert [(h.source.rsplit("/", 1)[-1], h.heading) for h in hits] == [
        ("rotate.py", "Python source")
    ]
    assert hits[0].metadata == {"team": "infra", "filename": "rotate.py", "code_language": "Python"}
    again = add_paths(ctx, [docs], collection="default", metadata={"team": "infra"})
    assert again.skipped == 2, "the recorded language is the same on the next run"


def test_changing_metadata_alone_updates_without_reembedding(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_txt(docs, "keys.txt", PARAGRAPHS[0])
    add_paths(ctx, [docs], collection="default", metadata={"team": "a"})
    embedder.texts_embedded = 0
    report = add_paths(ctx, [docs], collection="default", metadata={"team": "b"})
    assert report.updated == 1
    assert embedder.texts_embedded == 0
    assert ctx.searcher.search("signing keys", filters={"team": "b"})


@pytest.mark.parametrize("query", ['"unbalanced', "NEAR(a b)", "col:value", "*", "AND OR NOT"])
def test_search_survives_query_syntax(ctx: Context, tmp_path: Path, query: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_txt(docs, "keys.txt", PARAGRAPHS[0])
    add_paths(ctx, [docs], collection="default")
    ctx.searcher.search(query, k=3)  # must not raise


def _run_older_after_newer(
    ctx: Context, tmp_path: Path, old_text: str, new_text: str
) -> tuple[Job, Job]:
    """Two submissions of one file, the newer first in the queue (as a second worker
    might take it), both run to the end: (older, newer) as submitted."""
    docs = tmp_path / "docs"
    docs.mkdir()
    path = make_txt(docs, "policy.txt", old_text)
    older = ctx.submitter.submit_path(path, collection="default", stage=True)
    path.write_text(new_text)
    newer = ctx.submitter.submit_path(path, collection="default", stage=True, priority=1)
    ctx.worker(queues=["ingest"], concurrency=1, burst=True).run()
    return older, newer


def test_an_older_submission_never_overwrites_a_newer_one(ctx: Context, tmp_path: Path) -> None:
    # Two submissions of one file, the newer run first (as a second worker might):
    # the older one, run last, must leave the newer content in place.
    older, newer = _run_older_after_newer(
        ctx,
        tmp_path,
        "The retention period is seven years for invoices.",
        "The retention period is ten years for contracts.",
    )
    assert older.document_id == newer.document_id

    done = {job.id: job for job in ctx.ledger.get_many([older.id, newer.id])}
    assert done[newer.id].status == "succeeded"
    assert done[newer.id].started_at < done[older.id].started_at, "the newer ran first"
    assert done[older.id].status == "succeeded"
    assert done[older.id].result is not None
    assert done[older.id].result["superseded_by"] == newer.id
    assert done[older.id].result["outcome"] == "skipped"
    hits = ctx.searcher.search("retention period", k=5, mode="keyword")
    assert [h.text for h in hits] == ["The retention period is ten years for contracts."]
    assert ctx.searcher.search("invoices", mode="keyword") == []


def test_a_superseded_job_writes_not_even_its_vectors(ctx: Context, tmp_path: Path) -> None:
    # The older submission runs last and is superseded: its transaction rolls back,
    # and with it the embeddings of its only batch (they ride in that transaction).
    older, newer = _run_older_after_newer(
        ctx,
        tmp_path,
        "The notice period is one month for tenants.",
        "The notice period is three months for landlords.",
    )

    done = ctx.ledger.get(older.id)
    assert done is not None
    assert done.result is not None
    assert done.result["superseded_by"] == newer.id
    counts = ctx.store.counts()
    assert (counts["documents"], counts["chunks"], counts["vectors"]) == (1, 1, 1)
    integrity = ctx.store.integrity_report(ctx.embedder.model_id)
    assert integrity["chunks_without_vectors"] == 0


def test_a_documents_last_embedding_batch_commits_with_it(ctx: Context, tmp_path: Path) -> None:
    # Earlier batches are cached as they complete (a retry resumes from them); the
    # last one is written with the document, and serves the next document too.
    from ingest.ingestion.ingestor import Ingestor

    ingestor = Ingestor(ctx.store, ctx.pipeline, embed_batch_size=2)
    docs = tmp_path / "docs"
    docs.mkdir()
    sentences = [
        "Alpha team maintains the billing service and its invoices.",
        "Bravo team runs the search cluster and its relevance tuning.",
        "Charlie team owns the mobile applications and their releases.",
        "Delta team keeps the data warehouse and nightly reports healthy.",
        "Echo team answers the support queue and writes the help centre.",
    ]
    first = make_txt(docs, "teams.txt", _long_doc(sentences))
    prepared = ingestor.prepare(first, collection="default")
    embedded = prepared.result.embedded
    assert embedded >= 3, "the fixture must span several batches"
    last_batch = embedded % 2 or 2
    assert ctx.store.counts()["vectors"] == embedded - last_batch

    with ctx.store.transaction() as tx:
        prepared.write(tx)
    assert ctx.store.counts()["vectors"] == embedded

    copy = make_txt(docs, "teams-copy.txt", _long_doc(sentences))
    again = ingestor.prepare(copy, collection="default")
    assert again.result.embedded == 0
    with ctx.store.transaction() as tx:
        again.write(tx)
    counts = ctx.store.counts()
    assert (counts["chunks"], counts["vectors"]) == (2 * prepared.result.chunks, embedded)
    assert ctx.store.integrity_report(ctx.embedder.model_id)["chunks_without_vectors"] == 0
    hits = ctx.searcher.search("kiosk billing service invoices", mode="vector", k=10)
    assert {Path(h.source).name for h in hits} == {"teams.txt", "teams-copy.txt"}
