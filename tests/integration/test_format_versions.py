"""A change to one format's parser re-parses only that format's documents on the next
run (FORMAT_VERSIONS), not every document as a PARSER_VERSION bump would: a scanned
PDF is not OCRed again because the DOCX parser learned something."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.pipeline.parser_version import FORMAT_VERSIONS
from tests.fixtures_docs import make_docx, make_pdf, prose


def test_a_new_docx_version_reparses_docx_files_only(
    sqlite_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    make_docx(docs, "memo.docx", [prose(40, 1)], [["owner", "team"]])
    make_pdf(docs, "report.pdf", [prose(40, 2)])
    # Stored by a version that had no DOCX version of its own (the other formats' as now).
    before = {ext: version for ext, version in FORMAT_VERSIONS.items() if ext != ".docx"}
    with monkeypatch.context() as patch:
        patch.setattr("ingest.pipeline.pipeline.FORMAT_VERSIONS", before)
        assert add_paths(sqlite_ctx, [docs], collection="default").added == 2

    report = add_paths(sqlite_ctx, [docs], collection="default")

    assert (report.updated, report.skipped, report.failed) == (1, 1, 0)
    assert add_paths(sqlite_ctx, [docs], collection="default").skipped == 2
