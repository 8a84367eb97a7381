""".zip archives and e-mail attachments become child documents, on both backends."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.ingestion import actions
from ingest.settings import Settings
from ingest.store import DocumentRecord
from ingest.vocabulary import DocumentStatus
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_pdf
from tests.fixtures_msg import AttachedMsg, make_msg
from tests.support.api import api_settings, running_api
from tests.support.store_checks import duplicate_chunk_count

X_TEXT = "The quarterly zymurgy audit found the brewing vats were calibrated in March."
Y_TEXT = "Pelican migration notes: the flock crossed the estuary at dawn on Tuesday."
Z_TEXT = "Invoice for xylophone tuning services rendered to the conservatory."


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def _children(ctx: Context) -> dict[str, DocumentRecord]:
    docs, _ = ctx.store.list_documents(limit=500)
    return {d.source_uri.split("a.zip", 1)[-1]: d for d in docs}


def _a_zip(folder: Path, x_text: str = X_TEXT, extra: dict[str, bytes] | None = None) -> Path:
    inner = _zip({"y.md": f"# Birds\n\n{Y_TEXT}".encode()})
    folder.mkdir(exist_ok=True)
    path = folder / "a.zip"
    path.write_bytes(
        _zip(
            {
                "dir/": b"",
                "dir/x.txt": x_text.encode(),
                "broken.pdf": b"%PDF-1.4 this is not really a PDF",
                "inner.zip": inner,
                "notes.bin": b"\x00\x01binary",
                **(extra or {}),
            }
        )
    )
    return path


def test_zip_members_are_child_documents_with_their_own_status(
    ctx: Context, tmp_path: Path
) -> None:
    path = _a_zip(tmp_path / "docs")

    report = add_paths(ctx, [path], collection="default")

    assert report.added == 1, report.errors
    docs = _children(ctx)
    parent = docs[""]
    assert parent.status == DocumentStatus.READY
    assert parent.chunk_count == 0
    assert set(docs) == {"", "!/dir/x.txt", "!/broken.pdf", "!/inner.zip", "!/inner.zip!/y.md"}
    assert docs["!/dir/x.txt"].status == DocumentStatus.READY
    assert docs["!/dir/x.txt"].parent_id == parent.id
    assert docs["!/dir/x.txt"].metadata["filename"] == "x.txt"
    assert docs["!/broken.pdf"].status == DocumentStatus.FAILED
    assert "not a valid PDF" in (docs["!/broken.pdf"].error or "")
    assert docs["!/inner.zip!/y.md"].parent_id == docs["!/inner.zip"].id
    hit = ctx.searcher.search("zymurgy audit brewing vats", k=1)[0]
    assert hit.source == f"{path}!/dir/x.txt"
    assert ctx.searcher.search("pelican estuary", k=1)[0].source.endswith("a.zip!/inner.zip!/y.md")
    job = ctx.store.jobs.get(ctx.store.jobs.list_jobs(document_id=parent.id)[0].id)
    assert job is not None
    assert job.result is not None
    children = job.result["children"]
    assert (children["added"], children["failed"]) == (3, 1)
    assert children["skipped_members"] == [
        {"name": "notes.bin", "reason": "unsupported file type '.bin'"}
    ]


def test_an_unchanged_member_is_not_embedded_again(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    path = _a_zip(tmp_path / "docs", extra={"gone.txt": Z_TEXT.encode()})
    add_paths(ctx, [path], collection="default")
    before = {k: d.updated_at for k, d in _children(ctx).items()}
    embedded = embedder.texts_embedded

    assert add_paths(ctx, [path], collection="default").skipped == 1
    assert embedder.texts_embedded == embedded

    changed = X_TEXT.replace("March", "September of the following year")
    _a_zip(tmp_path / "docs", x_text=changed)  # gone.txt is no longer in it
    report = add_paths(ctx, [path], collection="default")

    assert report.updated == 1, report.errors
    assert embedder.texts_embedded == embedded + 1  # the changed member's one chunk
    after = _children(ctx)
    assert "!/gone.txt" not in after
    assert after["!/inner.zip!/y.md"].updated_at == before["!/inner.zip!/y.md"]
    assert after["!/dir/x.txt"].updated_at > before["!/dir/x.txt"]
    assert ctx.searcher.search("xylophone conservatory invoice", mode="keyword") == []
    assert duplicate_chunk_count(ctx.store) == 0


def test_deleting_the_container_deletes_its_children(ctx: Context, tmp_path: Path) -> None:
    path = _a_zip(tmp_path / "docs")
    add_paths(ctx, [path.parent], collection="default")
    other = tmp_path / "docs" / "other.txt"
    other.write_text(Z_TEXT)
    # --sync keeps the members: their source names no file of their own.
    report = add_paths(ctx, [path.parent], collection="default", sync=True)
    assert report.deleted == 0
    assert len(_children(ctx)) == 6

    actions.delete_document(ctx.store, _children(ctx)[""].id)

    assert [d.source_uri for d in ctx.store.documents_in("default")] == [str(other)]
    assert ctx.store.counts()["chunks"] == 1
    assert ctx.searcher.search("pelican estuary", mode="keyword") == []
    assert duplicate_chunk_count(ctx.store) == 0


@pytest.fixture
def small_ctx(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> Iterator[Context]:
    limited = settings.model_copy(update={"container_max_expanded_mb": 1, "container_max_depth": 2})
    context = Context(limited, embedder=embedder)
    yield context
    context.close()


def test_a_nested_zip_bomb_fails_its_container_with_a_reason(
    small_ctx: Context, tmp_path: Path
) -> None:
    # The outer archive declares a few KB; the one inside it expands to 10 MB of zeros.
    bomb = _zip({"zeros.txt": bytes(10 * 1024 * 1024)})
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bomb.zip").write_bytes(_zip({"a.txt": X_TEXT.encode(), "inner.zip": bomb}))

    report = add_paths(small_ctx, [folder], collection="default")

    assert report.failed == 1
    assert "INGEST_CONTAINER_MAX_EXPANDED_MB" in report.errors[0]["reason"]
    docs = small_ctx.store.documents_in("default")
    assert [d.status for d in docs] == [DocumentStatus.FAILED]


def test_containers_nested_deeper_than_the_limit_are_not_opened(
    small_ctx: Context, tmp_path: Path
) -> None:
    level3 = _zip({"deep.txt": Z_TEXT.encode()})
    level2 = _zip({"c.zip": level3, "y.txt": Y_TEXT.encode()})
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.zip").write_bytes(_zip({"b.zip": level2}))

    add_paths(small_ctx, [folder], collection="default")

    docs = _children(small_ctx)
    assert set(docs) == {"", "!/b.zip", "!/b.zip!/y.txt", "!/b.zip!/c.zip"}
    assert docs["!/b.zip!/c.zip"].status == DocumentStatus.FAILED
    assert "INGEST_CONTAINER_MAX_DEPTH" in (docs["!/b.zip!/c.zip"].error or "")


def test_member_names_cannot_leave_their_container(ctx: Context, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.zip").write_bytes(
        _zip(
            {
                "../../etc/evil.txt": X_TEXT.encode(),
                "/abs/root.txt": Y_TEXT.encode(),
                "C:\\win\\z.txt": Z_TEXT.encode(),
            }
        )
    )

    add_paths(ctx, [folder], collection="default")

    assert set(_children(ctx)) == {"", "!/etc/evil.txt", "!/abs/root.txt", "!/win/z.txt"}
    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == []


def _eml(folder: Path) -> Path:
    forwarded = EmailMessage()
    forwarded["Subject"] = "Pelicans"
    forwarded["From"] = "birder@example.com"
    forwarded.set_content("See the attached field notes.")
    forwarded.add_attachment(Y_TEXT.encode(), "text", "plain", filename="field-notes.txt")
    message = EmailMessage()
    message["Subject"] = "Quarterly report"
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.com"
    message.set_content("The report is attached.")
    pdf = make_pdf(folder / "parts", "report.pdf", [X_TEXT])
    message.add_attachment(pdf.read_bytes(), "application", "pdf", filename="report.pdf")
    message.add_attachment(forwarded, filename="Pelicans.eml")
    path = folder / "mail.eml"
    path.write_bytes(message.as_bytes())
    return path


def test_eml_attachments_and_attached_messages_are_children(ctx: Context, tmp_path: Path) -> None:
    path = _eml(tmp_path)

    report = add_paths(ctx, [path], collection="default")

    assert report.added == 1, report.errors
    docs, _ = ctx.store.list_documents(limit=50)
    by_source = {d.source_uri.removeprefix(str(path)): d for d in docs}
    assert set(by_source) == {
        "",
        "!/report.pdf",
        "!/Pelicans.eml",
        "!/Pelicans.eml!/field-notes.txt",
    }
    assert all(d.status == DocumentStatus.READY for d in docs), [d.error for d in docs]
    assert by_source[""].chunk_count > 0  # the message's own text
    nested = by_source["!/Pelicans.eml!/field-notes.txt"]
    assert nested.parent_id == by_source["!/Pelicans.eml"].id
    assert ctx.searcher.search("zymurgy brewing vats", k=1)[0].source.endswith("!/report.pdf")


def test_msg_attachments_and_an_attached_msg_are_children(ctx: Context, tmp_path: Path) -> None:
    inner = AttachedMsg(
        "Bird survey", "Counts from the estuary.", attachments=(("tally.txt", Y_TEXT.encode()),)
    )
    path = make_msg(
        tmp_path,
        "outer.msg",
        subject="Fwd: survey",
        body="Forwarding the survey with the audit.",
        sender="alice@example.com",
        to="bob@example.com",
        attachments=(("audit.txt", X_TEXT.encode()), inner),
    )

    report = add_paths(ctx, [path], collection="default")

    assert report.added == 1, report.errors
    docs, _ = ctx.store.list_documents(limit=50)
    by_source = {d.source_uri.removeprefix(str(path)): d for d in docs}
    assert set(by_source) == {
        "",
        "!/audit.txt",
        "!/Bird survey.eml",
        "!/Bird survey.eml!/tally.txt",
    }
    assert all(d.status == DocumentStatus.READY for d in docs), [d.error for d in docs]
    assert by_source["!/Bird survey.eml!/tally.txt"].parent_id == by_source["!/Bird survey.eml"].id
    hit = ctx.searcher.search("pelican estuary dawn", k=1)[0]
    assert hit.source.endswith("outer.msg!/Bird survey.eml!/tally.txt")


def test_the_api_lists_and_deletes_a_containers_children(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    path = _a_zip(tmp_path / "docs")
    with running_api(api_settings(settings), embedder) as api:
        queued = api.upload([path]).json()["jobs"][0]
        job = api.wait_job(queued["job_id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["children"]["failed"] == 1

        parent_id = queued["document_id"]
        page = api.get("/api/v1/documents", "viewer", params={"parent_id": parent_id}).json()
        sources = {d["source"]: d for d in page["documents"]}
        assert set(sources) == {
            "upload://handbook/a.zip!/dir/x.txt",
            "upload://handbook/a.zip!/broken.pdf",
            "upload://handbook/a.zip!/inner.zip",
        }
        assert {d["parent_id"] for d in page["documents"]} == {parent_id}
        assert sources["upload://handbook/a.zip!/broken.pdf"]["status"] == "failed"
        parent = api.get(f"/api/v1/documents/{parent_id}").json()
        assert (parent["status"], parent["chunk_count"], parent["parent_id"]) == ("ready", 0, None)

        assert api.delete(f"/api/v1/documents/{parent_id}").status_code == 204
        assert api.get("/api/v1/documents").json()["total"] == 0
        assert api.ctx.store.counts()["chunks"] == 0


def test_an_older_submission_never_overwrites_a_newer_ones_members(
    ctx: Context, tmp_path: Path
) -> None:
    # The newer submission runs first (as a second worker might); the older one,
    # run last, must not write its members over the newer ones.
    path = _a_zip(tmp_path / "docs")
    older = ctx.submitter.submit_path(path, collection="default", stage=True)
    _a_zip(tmp_path / "docs", x_text=Z_TEXT)
    newer = ctx.submitter.submit_path(path, collection="default", stage=True, priority=1)

    ctx.worker(queues=["ingest"], concurrency=1, burst=True).run()

    done = {job.id: job for job in ctx.ledger.get_many([older.id, newer.id])}
    assert done[older.id].result is not None
    assert done[older.id].result["superseded_by"] == newer.id
    assert ctx.searcher.search("zymurgy", mode="keyword") == []
    assert ctx.searcher.search("xylophone", k=1)[0].source == f"{path}!/dir/x.txt"


def test_a_member_that_timed_out_is_tried_again_with_its_unchanged_container(
    ctx: Context, tmp_path: Path
) -> None:
    path = _a_zip(tmp_path / "docs")
    add_paths(ctx, [path], collection="default")
    member = _children(ctx)["!/dir/x.txt"]
    # As a parse timeout records it: failed, the input not remembered.
    with ctx.store.transaction() as tx:
        tx.documents.record_failed(
            collection="default",
            source_uri=member.source_uri,
            error="parsing took longer than 300 s and was stopped",
            content_hash=None,
            fingerprint=None,
            size_bytes=None,
            metadata=member.metadata,
            parent_id=member.parent_id,
        )

    report = add_paths(ctx, [path], collection="default")

    assert report.skipped == 0
    assert _children(ctx)["!/dir/x.txt"].status == DocumentStatus.READY
    assert add_paths(ctx, [path], collection="default").skipped == 1
