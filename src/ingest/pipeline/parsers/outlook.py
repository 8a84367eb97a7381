"""Outlook messages (.msg, an OLE compound file): header block and body. The
attachments are child documents (pipeline/containers.py reads them here); a
message attached to a message is handed over as an .eml file."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

from oxmsg import Message
from oxmsg.attachment import Attachment
from oxmsg.properties import Properties
from oxmsg.util import lazyproperty

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.html import _html_to_markdown
from ingest.pipeline.segments import Segment

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# [MS-OXMSG] 2.2.2.1: an attached message is a storage in its attachment's storage,
# whose property stream has a 24-byte header (the top-level message's has 32).
_EMBEDDED_STORAGE = "__substg1.0_3701000D"
_EMBEDDED_HEADER = 24


class _EmbeddedMessage(Message):
    """A message attached to a message, read with its own header size."""

    @lazyproperty
    def _properties(self) -> Properties:
        return Properties(self._storage, properties_header_offset=_EMBEDDED_HEADER)


def _load(data: bytes) -> Message:
    if not data.startswith(_OLE_MAGIC):
        raise CorruptDocument("not a valid Outlook message (.msg): not an OLE compound file")
    return Message.load(data)


def _headers(message: Message) -> dict[str, str]:
    subject = " ".join(message.subject.split())
    to = ", ".join(recipient.email_address or recipient.name for recipient in message.recipients)
    sent = message.sent_date.isoformat() if message.sent_date else ""
    return {"Subject": subject, "From": message.sender or "", "To": to, "Date": sent}


def _parse_msg(data: bytes, budget: _TextBudget) -> list[Segment]:
    message = _load(data)
    headers = _headers(message)
    subject = headers["Subject"]
    header_block = "\n".join(f"{name}: {value}" for name, value in headers.items() if value)
    body = message.body or ""
    if not body.strip() and message.html_body:
        body = _html_to_markdown(message.html_body)
    if not body.strip() and _is_encrypted(message):
        raise CorruptDocument(
            "the Outlook message is encrypted (S/MIME or PGP): its body cannot be read"
        )
    text = f"{header_block}\n\n{body}".strip()
    return [Segment(text=budget.take(text), heading=subject or None)]


def _is_encrypted(message: Message) -> bool:
    if "SMIME" in message.message_class.upper():
        return True
    names = [(a.file_name or "").rstrip("\x00").lower() for a in message.attachments]
    return any(name.endswith((".pgp-encrypted", ".p7m")) for name in names)


# --- attachments ----------------------------------------------------------------


def msg_attachments(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of each attachment; an attached message as an .eml file."""
    yield from _attachments(_load(data))


def _attachments(message: Message) -> Iterator[tuple[str, bytes]]:
    for number, attachment in enumerate(message.attachments, start=1):
        name = (attachment.file_name or "").rstrip("\x00").strip()
        embedded = _embedded(attachment)
        if embedded is not None:
            stem = name.removesuffix(".msg") or _headers(embedded)["Subject"]
            yield f"{stem or f'message-{number}'}.eml", _as_eml(embedded).as_bytes()
        else:
            yield name or f"attachment-{number}", attachment.file_bytes or b""


def _embedded(attachment: Attachment) -> Message | None:
    # oxmsg reads only attached files: the storage of an attached message is ours to read.
    storage = attachment._storage
    for inner in getattr(storage, "storages", ()):
        if inner.name == _EMBEDDED_STORAGE:
            return _EmbeddedMessage(inner)
    return None


def _as_eml(message: Message) -> EmailMessage:
    """An attached Outlook message as an e-mail, its own attachments included, so
    it is read (and expanded) as any attached e-mail is."""
    mail = EmailMessage()
    for header, value in _headers(message).items():
        if value:
            mail[header] = value
    body = message.body or ""
    if not body.strip() and message.html_body:
        body = _html_to_markdown(message.html_body)
    mail.set_content(body)
    for name, payload in _attachments(message):
        if name.endswith(".eml"):
            mail.add_attachment(payload, "message", "rfc822", filename=name)
        else:
            mail.add_attachment(payload, "application", "octet-stream", filename=name)
    return mail
