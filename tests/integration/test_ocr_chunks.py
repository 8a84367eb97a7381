"""Chunks read by OCR say so (`ocr: true`) with their page, in the store, in search
hits and in the API's models; text-layer chunks say `ocr: false`. Both backends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pypdfium2
import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.models import ChunkOut, HitOut
from tests.fixtures_docs import make_pdf
from tests.fixtures_formats import make_scanned_pdf

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (scripts/setup)"
)

TYPED = "Rotating the signing keys happens every ninety days through the vault console."
SCANNED = ["Quarterly walrus inventory", "stored in warehouse nine"]


def _typed_then_scanned(directory: Path) -> Path:
    """Page 1 has a text layer, page 2 is only an image of text."""
    typed = make_pdf(directory / "parts", "typed.pdf", [TYPED])
    scanned = make_scanned_pdf(directory / "parts", "scan.pdf", SCANNED)
    pdf = pypdfium2.PdfDocument(typed)
    other = pypdfium2.PdfDocument(scanned)
    try:
        pdf.import_pages(other)
        path = directory / "docs" / "mixed.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        pdf.save(path)
    finally:
        other.close()
        pdf.close()
    return path


def test_ocr_chunks_carry_ocr_true_and_their_page(ctx: Context, tmp_path: Path) -> None:
    path = _typed_then_scanned(tmp_path)
    report = add_paths(ctx, [path.parent], collection="default")
    assert report.added == 1, report.errors

    scanned_hit = ctx.searcher.search("walrus inventory warehouse", k=1, mode="keyword")[0]
    typed_hit = ctx.searcher.search("signing keys vault", k=1, mode="keyword")[0]
    assert (scanned_hit.page, scanned_hit.ocr) == (2, True)
    assert (typed_hit.page, typed_hit.ocr) == (1, False)
    wire = HitOut.from_hit(scanned_hit).model_dump()
    assert (wire["page"], wire["ocr"]) == (2, True)

    listed = [ChunkOut.from_record(c) for c in ctx.store.chunks_of(scanned_hit.document_id)]
    assert [(c.page, c.ocr) for c in listed] == [(1, False), (2, True)]
    assert "walrus" in listed[1].text.lower()
