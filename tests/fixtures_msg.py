"""Outlook .msg files for tests, written from scratch.

No library we may use writes .msg files (extract-msg is GPL and reads only), so
this builds one as [MS-CFB] and [MS-OXMSG] lay it out: a compound file (version 3,
512-byte sectors, every stream in the mini stream) holding the message's property
stream, its string properties as UTF-16 streams, and one recipient storage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_FREE, _END, _FAT_SECTOR, _NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_SECTOR, _MINI = 512, 64
_UNICODE = 0x001F

# property id -> name: PidTagSubject, PidTagBody, PidTagMessageClass, sender fields
_SUBJECT, _BODY, _CLASS, _SENDER_NAME, _SENDER_SMTP = 0x0037, 0x1000, 0x001A, 0x0C1A, 0x5D01
_DISPLAY_NAME, _SMTP_ADDRESS, _ATTACH_LONG_FILENAME = 0x3001, 0x39FE, 0x3707
# Attachments: PidTagAttachDataBinary/Object, PidTagAttachMethod and its values.
_ATTACH_DATA, _ATTACH_METHOD, _BY_VALUE, _BY_EMBEDDED_MESSAGE = 0x3701, 0x3705, 1, 5
_BINARY, _INT32, _OBJECT = 0x0102, 0x0003, 0x000D
_EMBEDDED = "__substg1.0_3701000D"


@dataclass(frozen=True)
class AttachedMsg:
    """An Outlook message attached to a message (stored as an embedded message object)."""

    subject: str
    body: str
    sender: str = "someone@example.com"
    to: str = "someone@example.com"
    attachments: tuple[Attachment, ...] = ()


# A file name (an empty attachment), a file name and its bytes (under 4 KiB: every
# stream goes to the mini stream), or a message.
Attachment = str | tuple[str, bytes] | AttachedMsg


def make_msg(
    directory: Path,
    name: str,
    *,
    subject: str,
    body: str,
    sender: str,
    to: str,
    attachments: tuple[Attachment, ...] = (),
) -> Path:
    """A message with these attachments."""
    message = _message_storage(subject, body, sender, to, attachments, embedded=False)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(_compound_file(message))
    return path


def _message_storage(
    subject: str,
    body: str,
    sender: str,
    to: str,
    attachments: tuple[Attachment, ...],
    *,
    embedded: bool,
) -> dict[str, object]:
    strings = {_SUBJECT: subject, _CLASS: "IPM.Note", _SENDER_NAME: sender, _SENDER_SMTP: sender}
    if body:
        strings[_BODY] = body
    count = len(attachments)
    # [MS-OXMSG] 2.4.1: 32 bytes of header for the top-level message, 24 for an embedded one.
    header = struct.pack("<8x4I", 1, count, 1, count) + (b"" if embedded else bytes(8))
    message = _property_storage(strings, header=header)
    for number, attachment in enumerate(attachments):
        message[f"__attach_version1.0_#{number:08X}"] = _attachment_storage(attachment)
    message["__recip_version1.0_#00000000"] = _property_storage(
        {_DISPLAY_NAME: to, _SMTP_ADDRESS: to}, header=bytes(8)
    )
    return message


def _attachment_storage(attachment: Attachment) -> dict[str, object]:
    if isinstance(attachment, AttachedMsg):
        storage = _property_storage({}, header=bytes(8), method=_BY_EMBEDDED_MESSAGE)
        storage[_EMBEDDED] = _message_storage(
            attachment.subject,
            attachment.body,
            attachment.sender,
            attachment.to,
            attachment.attachments,
            embedded=True,
        )
        entry = struct.pack("<HHIII", _OBJECT, _ATTACH_DATA, 0x6, 0xFFFFFFFF, 0)
        storage["__properties_version1.0"] = bytes(storage["__properties_version1.0"]) + entry
        return storage
    filename, data = (attachment, b"") if isinstance(attachment, str) else attachment
    return _property_storage(
        {_ATTACH_LONG_FILENAME: filename}, header=bytes(8), binary=data, method=_BY_VALUE
    )


def _property_storage(
    strings: dict[int, str], header: bytes, *, binary: bytes = b"", method: int | None = None
) -> dict[str, object]:
    storage: dict[str, object] = {}
    entries = b""
    for pid, value in strings.items():
        if not value:
            continue  # an absent property, not an empty stream
        data = value.encode("utf-16-le")  # the stream holds no terminator...
        storage[f"__substg1.0_{pid:04X}{_UNICODE:04X}"] = data
        # ...but the size recorded counts one ([MS-OXMSG] 2.1.2).
        entries += struct.pack("<HHIII", _UNICODE, pid, 0x6, len(data) + 2, 0)
    if binary:
        storage[f"__substg1.0_{_ATTACH_DATA:04X}{_BINARY:04X}"] = binary
        entries += struct.pack("<HHIII", _BINARY, _ATTACH_DATA, 0x6, len(binary), 0)
    if method is not None:
        entries += struct.pack("<HHIII", _INT32, _ATTACH_METHOD, 0x6, method, 0)
    storage["__properties_version1.0"] = header + entries
    return storage


def _compound_file(tree: dict[str, object]) -> bytes:
    nodes: list[dict[str, object]] = [{"name": "Root Entry", "type": 5, "kids": []}]
    _add_children(nodes, 0, tree)
    mini_stream, mini_fat = b"", []
    for node in nodes:
        data = node.get("data")
        if isinstance(data, bytes):
            count = -(-len(data) // _MINI)
            node["start"] = len(mini_fat)
            mini_fat += [len(mini_fat) + i + 1 for i in range(count - 1)] + [_END]
            mini_stream += data.ljust(count * _MINI, b"\x00")
    directory = b"".join(_dir_entry(node) for node in nodes)
    directory = directory.ljust(-(-len(directory) // _SECTOR) * _SECTOR, b"\x00")
    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    mini_fat_bytes = mini_fat_bytes.ljust(-(-len(mini_fat_bytes) // _SECTOR) * _SECTOR, b"\xff")
    mini_stream_padded = mini_stream.ljust(-(-len(mini_stream) // _SECTOR) * _SECTOR, b"\x00")
    parts = [directory, mini_fat_bytes, mini_stream_padded]
    data_sectors = sum(len(part) // _SECTOR for part in parts)
    fat_sectors = 1
    while fat_sectors * 128 < fat_sectors + data_sectors:
        fat_sectors += 1
    fat = [_FAT_SECTOR] * fat_sectors
    starts = []
    for part in parts:
        starts.append(len(fat))
        count = len(part) // _SECTOR
        fat += [len(fat) + i + 1 for i in range(count - 1)] + [_END]
    fat += [_FREE] * (fat_sectors * 128 - len(fat))
    # The root entry's stream is the mini stream itself.
    nodes[0]["start"], nodes[0]["size"] = starts[2], len(mini_stream)
    directory = b"".join(_dir_entry(node) for node in nodes)
    parts[0] = directory.ljust(len(parts[0]), b"\x00")
    difat = list(range(fat_sectors)) + [_FREE] * (109 - fat_sectors)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack(
            "<HHHHH6xIIIIIIIII",
            0x3E,
            3,
            0xFFFE,
            9,
            6,
            0,
            fat_sectors,
            starts[0],
            0,
            4096,
            starts[1],
            len(mini_fat_bytes) // _SECTOR,
            _END,
            0,
        )
        + struct.pack("<109I", *difat)
    )
    return header + struct.pack(f"<{len(fat)}I", *fat) + b"".join(parts)


def _add_children(nodes: list[dict[str, object]], parent: int, tree: dict[str, object]) -> None:
    previous: int | None = None
    for name, value in tree.items():
        index = len(nodes)
        node: dict[str, object] = {"name": name, "kids": []}
        if isinstance(value, bytes):
            node.update(type=2, data=value, size=len(value))
        else:
            node["type"] = 1
        nodes.append(node)
        if previous is None:
            nodes[parent]["child"] = index
        else:
            nodes[previous]["right"] = index  # a degenerate (list-shaped) sibling tree
        previous = index
        if isinstance(value, dict):
            _add_children(nodes, index, value)


def _dir_entry(node: dict[str, object]) -> bytes:
    name = str(node["name"]).encode("utf-16-le") + b"\x00\x00"
    return struct.pack(
        "<64sHBBIII16sIQQIII",
        name,
        len(name),
        int(node["type"]),  # type: ignore[call-overload]
        1,  # black
        _NO_STREAM,
        int(node.get("right", _NO_STREAM)),  # type: ignore[call-overload]
        int(node.get("child", _NO_STREAM)),  # type: ignore[call-overload]
        bytes(16),
        0,
        0,
        0,
        int(node.get("start", _END if node["type"] != 1 else 0)),  # type: ignore[call-overload]
        int(node.get("size", 0)),  # type: ignore[call-overload]
        0,
    )
