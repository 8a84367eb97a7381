"""Issue 14's "done when" files in one run through the isolated parse process, as a
worker parses them: an XML bomb, a zip bomb, a 10,000-page scan and an Outlook message
with an Outlook message attached each end cleanly, and the next file is ingested."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.vocabulary import DocumentStatus
from tests.conftest import CountingEmbedder, sqlite_settings
from tests.fixtures_formats import make_many_page_scan
from tests.fixtures_msg import AttachedMsg, make_msg

NOTE = "The lighthouse keeper logs the foghorn tests every Sunday at noon."


@pytest.fixture
def isolated_ctx(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Context]:
    settings = sqlite_settings(tmp_path, isolate_parsing=True, container_max_expanded_mb=2)
    context = Context(settings, embedder=embedder)
    yield context
    context.close()


def _billion_laughs() -> str:
    entities = "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]><lolz>&lol9;</lolz>'
    )


def _zip_bomb() -> bytes:
    """A few KB that expand to 20 MB of zeros, nested one archive deep."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", bytes(20 * 1024 * 1024))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.zip", inner.getvalue())
    return outer.getvalue()


@pytest.mark.timeout(240)
def test_bombs_a_huge_scan_and_nested_messages_end_cleanly_in_the_parse_process(
    isolated_ctx: Context, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "laughs.xml").write_text(_billion_laughs())
    (docs / "bomb.zip").write_bytes(_zip_bomb())
    make_many_page_scan(docs, "archive.pdf", 10_000, ["Page of a scan"])
    inner = AttachedMsg("Field notes", "See the tally.", attachments=(("tally.txt", b"42 gulls"),))
    make_msg(
        docs,
        "outer.msg",
        subject="Fwd: notes",
        body="Forwarding the notes.",
        sender="alice@example.com",
        to="bob@example.com",
        attachments=(inner,),
    )
    (docs / "note.txt").write_text(NOTE)

    report = add_paths(isolated_ctx, [docs], collection="default")

    reasons = {Path(error["source"]).name: error["reason"] for error in report.errors}
    assert set(reasons) == {"laughs.xml", "bomb.zip", "archive.pdf"}, reasons
    assert "DTD or entities" in reasons["laughs.xml"]
    assert "INGEST_CONTAINER_MAX_EXPANDED_MB" in reasons["bomb.zip"]
    assert "INGEST_MAX_PAGES" in reasons["archive.pdf"]
    docs_by_name = {
        d.source_uri.removeprefix(str(docs) + "/"): d
        for d in isolated_ctx.store.list_documents(limit=50)[0]
    }
    ready = {name for name, d in docs_by_name.items() if d.status == DocumentStatus.READY}
    assert ready == {
        "outer.msg",
        "outer.msg!/Field notes.eml",
        "outer.msg!/Field notes.eml!/tally.txt",
        "note.txt",
    }
    assert isolated_ctx.searcher.search("lighthouse foghorn", k=1)[0].source.endswith("note.txt")
