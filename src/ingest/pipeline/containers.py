"""Containers: a .zip archive's members and an e-mail's attachments, written out as
files for child documents (ingestion/containers.py ingests them).

Runs in the isolated parse process (pipeline/isolation.py). Nothing about the
input is trusted: member names are normalised (no `..`, no absolute path, no
backslash) and only ever used as labels, the bytes go to files named by number;
every bound (INGEST_CONTAINER_MAX_*) is checked on the bytes really decompressed,
as they stream, so an archive that lies about its sizes is stopped all the same.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import mimetypes
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.message import Message
from pathlib import Path

from ingest.errors import ContainerTooLarge, CorruptDocument, IngestError
from ingest.pipeline.filenames import ARCHIVE_EXTENSIONS, extension_of
from ingest.pipeline.segments import ContainerLimits

# Files whose members (or attachments) become child documents.
CONTAINER_EXTENSIONS = frozenset({".zip", ".eml", ".msg"})
# Where a member's name joins its container's source: `a.zip!/dir/x.txt`.
SEPARATOR = "!/"

_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Member:
    """One file out of a container."""

    name: str  # from the top container, nested ones joined by "!/": "d/x.txt", "in.zip!/y.txt"
    parent: str | None  # the name of the member holding it; None: the top container
    path: str | None  # its bytes, spilled; None when it could not be extracted
    size: int
    error: str | None = None  # why it could not be extracted: its document fails so


@dataclass(frozen=True, slots=True)
class Skipped:
    """A member that is not a document: an unsupported type, a duplicate, a hidden file."""

    name: str
    reason: str


@dataclass(slots=True)
class Expansion:
    members: list[Member] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def is_container(filename: str) -> bool:
    return extension_of(filename) in CONTAINER_EXTENSIONS


def expand_container(
    data: bytes, filename: str, limits: ContainerLimits, spill_dir: Path
) -> Expansion:
    """The members of `data` (the content of `filename`), nested containers expanded
    up to the depth limit, written under `spill_dir`.

    Raises ContainerTooLarge past the count or size limit; a member that cannot be
    read is returned with its `error` instead."""
    expander = _Expander(limits, spill_dir)
    ext = extension_of(filename)
    try:
        expander.expand(data, ext, prefix="", parent=None, depth=1)
    except IngestError:
        raise
    except Exception as exc:  # the container itself does not open
        if ext in ARCHIVE_EXTENSIONS:
            raise CorruptDocument(f"not a valid {ext[1:]} archive: {_describe(exc)}") from exc
        # A message whose text was read: its attachments alone are lost, and said so.
        expander.result.skipped.append(
            Skipped(SEPARATOR, f"the attachments could not be read: {_describe(exc)}")
        )
    return expander.result


def safe_member_name(raw: str) -> str:
    """A member's name as a relative path that stays inside its container: `..`
    and `.` resolved, leading `/` and drive letters dropped, `\\` read as `/`."""
    parts: list[str] = []
    for part in _CONTROL.sub("", raw).replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        # "x!" followed by "/" would read as a container boundary in the source.
        parts.append(part.rstrip("!") or "_")
    if parts and _DRIVE.match(parts[0]):
        parts.pop(0)
    return "/".join(parts)


class _Expander:
    def __init__(self, limits: ContainerLimits, spill_dir: Path) -> None:
        self.limits = limits
        self.spill_dir = spill_dir
        self.result = Expansion()
        self._files = 0
        self._bytes = 0
        self._names: set[str] = set()
        self._by_hash: dict[str, str] = {}

    def expand(self, data: bytes, ext: str, *, prefix: str, parent: str | None, depth: int) -> None:
        """Emit the members of one container; `depth`: theirs (1 for the top one's)."""
        if ext == ".zip":
            self._zip(data, prefix, parent, depth)
        elif ext == ".eml":
            for name, payload in _eml_attachments(data):
                self._emit(name, prefix, parent, depth, [payload], declared=len(payload))
        elif ext == ".msg":
            # Here, not at import: only a parser process opens containers, and the
            # processes that merely ask `is_container` must not load parser libraries.
            from ingest.pipeline.parsers.outlook import msg_attachments

            for name, payload in msg_attachments(data):
                self._emit(name, prefix, parent, depth, [payload], declared=len(payload))

    def _zip(self, data: bytes, prefix: str, parent: str | None, depth: int) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [i for i in archive.infolist() if not i.is_dir()]
            # The declared sizes first: a cheap refusal of an honest bomb. The real
            # count as they stream (_spill) stops a lying one.
            self._check_count(self._files + len(entries))
            self._check_bytes(self._bytes + sum(i.file_size for i in entries))
            for info in entries:
                self._emit(
                    info.filename,
                    prefix,
                    parent,
                    depth,
                    _zip_chunks(archive, info),
                    declared=info.file_size,
                )

    def _emit(
        self,
        raw_name: str,
        prefix: str,
        parent: str | None,
        depth: int,
        chunks: Iterable[bytes],
        *,
        declared: int,
    ) -> None:
        self._files += 1
        self._check_count(self._files)
        name = safe_member_name(raw_name)
        full = prefix + (name or "_")
        reason = self._not_a_document(name, full)
        if reason is not None:
            self.result.skipped.append(Skipped(full, reason))
            return
        self._names.add(full)
        member = self._spill(full, parent, chunks, declared)
        if member is None:
            return
        self.result.members.append(member)
        ext = extension_of(name)
        if member.path is not None and ext in CONTAINER_EXTENSIONS:
            self._expand_nested(len(self.result.members) - 1, ext, depth)

    def _not_a_document(self, name: str, full: str) -> str | None:
        if not name:
            return "the member has no usable name"
        if any(part.startswith(".") or part == "__MACOSX" for part in name.split("/")):
            return "a hidden file"
        from ingest.pipeline.parsers import SUPPORTED_EXTENSIONS  # see expand()

        ext = extension_of(name)
        if ext not in SUPPORTED_EXTENSIONS and ext not in CONTAINER_EXTENSIONS:
            return f"unsupported file type '{ext or 'no extension'}'"
        if full in self._names:
            return "a member of the same name comes first"
        return None

    def _spill(
        self, full: str, parent: str | None, chunks: Iterable[bytes], declared: int
    ) -> Member | None:
        path = self.spill_dir / str(len(self._names))
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    self._check_bytes(self._bytes + size)
                    if size > self.limits.max_member_bytes:
                        path.unlink()
                        return Member(full, parent, None, declared, _too_big(size, self.limits))
                    digest.update(chunk)
                    out.write(chunk)
        except IngestError:
            raise
        except Exception as exc:  # a damaged or encrypted member: that child fails
            path.unlink(missing_ok=True)
            return Member(full, parent, None, declared, f"cannot extract it: {_describe(exc)}")
        self._bytes += size
        first = self._by_hash.setdefault(digest.hexdigest(), full)
        if first != full:
            path.unlink()
            self.result.skipped.append(Skipped(full, f"the same content as {first}"))
            return None
        return Member(full, parent, str(path), size)

    def _expand_nested(self, index: int, ext: str, depth: int) -> None:
        member = self.result.members[index]
        assert member.path is not None
        if depth >= self.limits.max_depth:
            reason = (
                f"nested more than {self.limits.max_depth} containers deep "
                "(INGEST_CONTAINER_MAX_DEPTH): its content is not expanded"
            )
            if ext in ARCHIVE_EXTENSIONS:
                self.result.members[index] = replace(member, error=reason)
            else:
                self.result.skipped.append(Skipped(member.name + SEPARATOR, reason))
            return
        try:
            data = Path(member.path).read_bytes()
            self.expand(
                data, ext, prefix=member.name + SEPARATOR, parent=member.name, depth=depth + 1
            )
        except ContainerTooLarge:
            raise
        except Exception as exc:  # a nested container that does not open
            reason = f"cannot open it: {_describe(exc)}"
            if ext in ARCHIVE_EXTENSIONS:
                self.result.members[index] = replace(member, error=reason)
            else:
                self.result.skipped.append(Skipped(member.name + SEPARATOR, reason))

    def _check_count(self, files: int) -> None:
        if files > self.limits.max_files:
            raise ContainerTooLarge(
                f"the container holds more than {self.limits.max_files:,} files "
                "(INGEST_CONTAINER_MAX_FILES); nothing of it was ingested"
            )

    def _check_bytes(self, total: int) -> None:
        if total > self.limits.max_expanded_bytes:
            mb = self.limits.max_expanded_bytes / (1024 * 1024)
            raise ContainerTooLarge(
                f"the container expands to more than {mb:g} MB "
                "(INGEST_CONTAINER_MAX_EXPANDED_MB), a zip bomb or an archive too big "
                "to expand; nothing of it was ingested"
            )


def _zip_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    if info.flag_bits & 0x1:
        raise ValueError("the member is encrypted (a password is needed)")
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def _too_big(size: int, limits: ContainerLimits) -> str:
    return (
        f"file is over {limits.max_member_bytes:,} bytes (INGEST_MAX_FILE_BYTES); "
        f"{size:,} bytes were read before it was stopped"
    )


def _describe(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]


# --- e-mail attachments (.eml) ---------------------------------------------------


def _eml_attachments(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of each attachment; an attached message as an .eml file."""
    from ingest.pipeline.parsers.email import _as_8bit_message  # see _Expander.expand()

    message = email.message_from_bytes(_as_8bit_message(data), policy=email.policy.default)
    for number, part in enumerate(_attachment_parts(message), start=1):
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner_message = inner[0] if isinstance(inner, list) and inner else None
            if not isinstance(inner_message, Message):
                continue
            subject = " ".join(str(inner_message.get("Subject", "")).split())
            name = part.get_filename() or f"{subject or f'message-{number}'}.eml"
            if not name.lower().endswith(".eml"):
                name += ".eml"
            yield name, inner_message.as_bytes()
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        suffix = mimetypes.guess_extension(part.get_content_type()) or ""
        yield part.get_filename() or f"attachment-{number}{suffix}", payload


def _attachment_parts(message: Message) -> Iterator[Message]:
    """Attached parts, depth first; not those of an attached message (its own
    attachments are its children) nor a message carried inline (a digest: the
    body's text already holds it)."""
    if not message.is_multipart():
        return
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        disposition = part.get_content_disposition()
        if part.get_content_type() == "message/rfc822":
            if disposition == "attachment":
                yield part
        elif part.is_multipart():
            yield from _attachment_parts(part)
        elif disposition == "attachment" or (disposition is None and part.get_filename()):
            yield part


__all__ = [
    "ARCHIVE_EXTENSIONS",
    "CONTAINER_EXTENSIONS",
    "SEPARATOR",
    "Expansion",
    "Member",
    "Skipped",
    "expand_container",
    "is_container",
    "safe_member_name",
]
