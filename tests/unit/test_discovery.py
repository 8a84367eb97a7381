from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.ingestion.discovery import discover_files, is_under_roots


def test_walks_folders_skipping_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for rel in ("a.txt", "sub/b.md", ".DS_Store", ".git/config"):
        (tmp_path / rel).write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_files([tmp_path])]
    assert found == ["a.txt", "sub/b.md"]


def test_overlapping_paths_are_listed_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    assert len(discover_files([tmp_path, tmp_path / "a.txt"])) == 1


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        discover_files([tmp_path / "missing"])


def test_is_under_roots() -> None:
    roots = [Path("/data/docs")]
    assert is_under_roots("/data/docs/a.txt", roots)
    assert is_under_roots("/data/docs", roots)
    assert not is_under_roots("/data/docs2/a.txt", roots)
