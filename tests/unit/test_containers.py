"""Expanding containers (pipeline/containers.py): names, bounds, what is skipped."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.errors import ContainerTooLarge, CorruptDocument
from ingest.pipeline.containers import expand_container, safe_member_name
from ingest.pipeline.parsers.sniff import check_upload
from ingest.pipeline.segments import ContainerLimits


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("dir/x.txt", "dir/x.txt"),
        ("../../etc/passwd.txt", "etc/passwd.txt"),
        ("a/../../b.txt", "b.txt"),
        ("/abs/x.txt", "abs/x.txt"),
        ("C:\\Windows\\x.txt", "Windows/x.txt"),
        ("a\\..\\..\\x.txt", "x.txt"),
        ("./a/./b.txt", "a/b.txt"),
        ("tricky!/x.txt", "tricky/x.txt"),
        ("ctrl\x00\x1bname.txt", "ctrlname.txt"),
        ("../..", ""),
    ],
)
def test_member_names_stay_inside_their_container(raw: str, safe: str) -> None:
    assert safe_member_name(raw) == safe


def test_more_members_than_allowed_fail_the_container(tmp_path: Path) -> None:
    data = _zip({f"f{i}.txt": f"text {i}".encode() for i in range(6)})

    with pytest.raises(ContainerTooLarge, match="more than 5 files"):
        expand_container(data, "a.zip", ContainerLimits(max_files=5), tmp_path)


def test_the_expanded_size_is_bounded(tmp_path: Path) -> None:
    data = _zip({"zeros.txt": bytes(3 * 1024 * 1024)})

    with pytest.raises(ContainerTooLarge, match="INGEST_CONTAINER_MAX_EXPANDED_MB"):
        expand_container(data, "a.zip", ContainerLimits(max_expanded_bytes=1024 * 1024), tmp_path)


def test_a_member_over_the_file_limit_fails_alone(tmp_path: Path) -> None:
    data = _zip({"big.txt": bytes(5000), "small.txt": b"fine"})

    result = expand_container(data, "a.zip", ContainerLimits(max_member_bytes=4096), tmp_path)

    big, small = result.members
    assert big.path is None
    assert "INGEST_MAX_FILE_BYTES" in (big.error or "")
    assert small.error is None


def test_duplicates_hidden_and_unsupported_members_are_skipped(tmp_path: Path) -> None:
    data = _zip(
        {
            "a.txt": b"same bytes",
            "copy/a.txt": b"same bytes",
            "__MACOSX/._a.txt": b"resource fork",
            ".hidden.txt": b"hidden",
            "tool.exe": b"MZ",
        }
    )

    result = expand_container(data, "a.zip", ContainerLimits(), tmp_path)

    assert [m.name for m in result.members] == ["a.txt"]
    assert {s.name: s.reason for s in result.skipped} == {
        "copy/a.txt": "the same content as a.txt",
        "__MACOSX/._a.txt": "a hidden file",
        ".hidden.txt": "a hidden file",
        "tool.exe": "unsupported file type '.exe'",
    }


def test_a_corrupt_archive_is_a_corrupt_document(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="not a valid zip archive"):
        expand_container(b"PK\x03\x04 truncated", "a.zip", ContainerLimits(), tmp_path)


def test_uploads_accept_zip_archives() -> None:
    check_upload("a.zip", b"PK\x03\x04rest")
    check_upload("empty.zip", b"PK\x05\x06rest")


def test_a_message_nested_past_the_depth_keeps_its_text_not_its_attachments(
    tmp_path: Path,
) -> None:
    inner = EmailMessage()
    inner["Subject"] = "Inner"
    inner.set_content("inner body")
    inner.add_attachment(b"deep text", "text", "plain", filename="deep.txt")
    outer = EmailMessage()
    outer["Subject"] = "Outer"
    outer.set_content("outer body")
    outer.add_attachment(b"notes", "text", "plain", filename="notes.txt")
    outer.add_attachment(inner, filename="Inner.eml")

    result = expand_container(outer.as_bytes(), "m.eml", ContainerLimits(max_depth=1), tmp_path)

    assert [(m.name, m.error) for m in result.members] == [
        ("notes.txt", None),
        ("Inner.eml", None),
    ]
    assert [s.name for s in result.skipped] == ["Inner.eml!/"]
    assert "INGEST_CONTAINER_MAX_DEPTH" in result.skipped[0].reason
    assert Path(result.members[1].path or "").read_bytes().startswith(b"Subject: Inner")
