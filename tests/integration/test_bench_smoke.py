"""The benchmarks run end to end on a generated tiny corpus and print their figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FIGURES = [
    "first ingest wall time",
    "first ingest docs/s",
    "first ingest chunks/s",
    "first ingest tokens/s",
    "bare embed texts/s",
    "pipeline efficiency",
    "re-ingest wall time",
    "re-ingest speed-up",
    "search p50 (hybrid, k=10)",
    "search p99 (hybrid, k=10)",
    "nDCG@10 keyword",
    "nDCG@10 vector",
    "nDCG@10 hybrid",
    "peak RSS",
]


def _bench(script: str, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_runs_on_a_generated_tiny_corpus(tmp_path: Path) -> None:
    out_json = tmp_path / "figures.json"
    stdout = _bench(
        "ingest_bench.py",
        "--generate-tiny",
        str(tmp_path / "tiny"),
        "--limit",
        "8",
        "--db",
        str(tmp_path / "bench.db"),
        "--json",
        str(out_json),
        cwd=tmp_path,
    )
    for name in FIGURES:
        assert name in stdout, f"{name!r} missing from:\n{stdout}"
    figures = json.loads(out_json.read_text())
    assert figures["documents"] == 8
    assert figures["added"] == 8
    assert figures["reingest_skipped"] == 8
    assert figures["reingest_embedded"] == 0
    assert 0.0 <= figures["ndcg10_hybrid"] <= 1.0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgresql_quality_benches_run_on_a_generated_tiny_corpus(tmp_path: Path) -> None:
    tiny, db = tmp_path / "tiny", tmp_path / "bench.db"
    _bench("ingest_bench.py", "--generate-tiny", str(tiny), "--db", str(db), cwd=tmp_path)
    qrels = str(tiny / "qrels" / "test.tsv")

    keywords = _bench(
        "pg_bench.py", "keywords", "--corpus", str(tiny), "--qrels", qrels, cwd=tmp_path
    )
    assert "judged queries" in keywords
    assert keywords.count("nDCG@10") == 3, keywords

    hybrid = _bench(
        "pg_bench.py",
        "hybrid",
        "--db",
        str(db),
        "--corpus",
        str(tiny),
        "--qrels",
        qrels,
        cwd=tmp_path,
    )
    assert "copied" in hybrid
    for name in ["nDCG@10 keyword", "nDCG@10 vector", "nDCG@10 hybrid (settings)"]:
        assert name in hybrid, hybrid


def _reference_set(directory: Path) -> None:
    """Generated documents, each with its reference text beside it (`name.ext.md`)."""
    import docx
    from fpdf import FPDF

    directory.mkdir()
    document = docx.Document()
    document.add_heading("Pricing", level=1)
    document.add_paragraph("The basic plan costs nine euros a month.")
    document.save(str(directory / "memo.docx"))
    reference = "# Pricing\n\nThe basic plan costs nine euros a month.\n"
    (directory / "memo.docx.md").write_text(reference)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ("Shipping takes three days.", "Returns are free."):
        pdf.add_page()
        pdf.cell(text=text)
    pdf.output(str(directory / "terms.pdf"))
    (directory / "terms.pdf.md").write_text("Shipping takes three days.\n\nReturns are free.\n")
    # The reference holds two words the file lacks: recall 4/6, precision 1.
    (directory / "notes.txt").write_text("Meet at noon today")
    (directory / "notes.txt.md").write_text("Meet at noon today, please confirm")
    (directory / "empty.txt").write_text("")


@pytest.mark.timeout(120)
def test_parse_bench_reports_word_recall_and_precision(tmp_path: Path) -> None:
    _reference_set(tmp_path / "corpus")

    stdout = _bench("parse_bench.py", str(tmp_path / "corpus"), cwd=tmp_path)

    assert "; 4 files under" in stdout, "references are not parsed as documents"
    assert "| format | files | failed | pages | pages/s | files/s |" in stdout
    assert "| .pdf | 1 | 0 | 2 | " in stdout, "a PDF counts its pages"
    assert "| .txt | 2 | 1 | 1 | " in stdout, "a text is one page, a failure none"
    assert "| memo.docx | 1.000 | 1.000 |" in stdout
    assert "| terms.pdf | 1.000 | 1.000 |" in stdout
    assert "| notes.txt | 0.667 | 1.000 |" in stdout
    assert "| all | 3 | 0.889 | 1.000 |" in stdout
    assert "- empty.txt: EmptyDocument: the file is empty (0 bytes)" in stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_console_bench_times_every_console_page_on_a_small_store(tmp_path: Path) -> None:
    out_json = tmp_path / "console.json"
    stdout = _bench(
        "console_bench.py",
        *("--chunks", "120", "--jobs", "300", "--audit", "50", "--repeat", "2"),
        *("--db", str(tmp_path / "console.db"), "--json", str(out_json)),
        cwd=tmp_path,
    )
    figures = json.loads(out_json.read_text())
    assert figures["chunks"] == 120
    assert figures["jobs"] >= 300  # and the app's own start-up jobs
    for name in ["overview", "jobs", "job", "dead letters", "document + chunks", "audit log"]:
        assert name in figures["pages"], name
        assert name in stdout
    assert "slowest request" in stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sources_bench_runs_on_a_few_generated_files(tmp_path: Path) -> None:
    out_json = tmp_path / "figures.json"
    args = ("--files", "30", "--distinct", "3", "--json", str(out_json))
    stdout = _bench("sources_bench.py", *args, cwd=tmp_path)
    assert "unchanged sync job s" in stdout
    figures = json.loads(out_json.read_text())
    assert figures["first sync submitted"] == 30
    assert (figures["unchanged sync unchanged"], figures["unchanged sync submitted"]) == (30, 0)
    assert figures["unchanged sync texts embedded"] == 0


def test_sources_bench_s3_reads_no_object_on_the_unchanged_sync(tmp_path: Path) -> None:
    out_json = tmp_path / "figures.json"
    args = ("--s3", "--files", "20", "--distinct", "3", "--json", str(out_json))
    _bench("sources_bench.py", *args, cwd=tmp_path)
    figures = json.loads(out_json.read_text())
    assert (figures["first sync submitted"], figures["first sync objects read"]) == (20, 20)
    assert (figures["unchanged sync unchanged"], figures["unchanged sync objects read"]) == (20, 0)
    assert figures["unchanged sync texts embedded"] == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgresql_search_bench_prints_the_legs_and_reuses_a_kept_database() -> None:
    # Under the system temp dir: the server's user must reach it (tmp_path is private).
    kept = Path(tempfile.mkdtemp(prefix="ingest-pg-kept-"))
    kept.chmod(0o755)
    try:
        args = ("search", "--chunks", "1000", "--queries", "5", "--keep", str(kept))
        first = _bench("pg_bench.py", *args, cwd=kept)
        assert "load of 1,000 chunks" in first, first
        for leg in ["query embedding", "vector search k=", "keyword search k=", "fusion", "sum"]:
            assert leg in first, first
        again = _bench("pg_bench.py", *args, cwd=kept)
        assert "reusing the database of 1,000 chunks" in again, again
        assert "load of" not in again
        assert "search at 1,000 chunks" in again
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def _scifact_like(corpus: Path, n: int, text: str) -> Path:
    """A corpus.jsonl of `n` tiny documents, as the benches read SciFact's."""
    corpus.mkdir()
    with (corpus / "corpus.jsonl").open("w", encoding="utf-8") as lines:
        for i in range(n):
            doc = {"_id": f"d{i}", "title": f"Note {i}", "text": text.format(i)}
            lines.write(json.dumps(doc) + "\n")
    return corpus


@pytest.mark.slow
@pytest.mark.timeout(170)
@pytest.mark.parametrize(
    ("script", "args", "printed"),
    [
        # The pipeline's CPU per document with a stub model.
        (
            "overhead_bench.py",
            ["--docs", "4", "--rounds", "1"],
            ["CPU s for 4 documents", "| per document after it |"],
        ),
        # ingest add against the bare embedder on the same chunks, on one CPU.
        (
            "cpu_per_chunk.py",
            ["--docs", "4", "--cpus", "1"],
            [
                "for 4 documents, 4 chunks (",
                "in its embedder calls); bare embedder",
                "| ratio against the bare embedder (4 docs) | ratio at equal model cost |",
            ],
        ),
    ],
    ids=["overhead_bench", "cpu_per_chunk"],
)
def test_cpu_benches_print_their_figures(
    tmp_path: Path, script: str, args: list[str], printed: list[str]
) -> None:
    corpus = _scifact_like(tmp_path / "corpus", 4, "Queues keep job {} safe.")
    stdout = _bench(script, "--corpus", str(corpus), *args, cwd=tmp_path)
    for line in printed:
        assert line in stdout
