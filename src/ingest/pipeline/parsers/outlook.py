"""Outlook messages (.msg, an OLE compound file): header block and body; never attachments."""

from __future__ import annotations

from oxmsg import Message

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.html import _html_to_markdown
from ingest.pipeline.segments import Segment

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _parse_msg(data: bytes, budget: _TextBudget) -> list[Segment]:
    if not data.startswith(_OLE_MAGIC):
        raise CorruptDocument("not a valid Outlook message (.msg): not an OLE compound file")
    message = Message.load(data)
    subject = " ".join(message.subject.split())
    to = ", ".join(recipient.email_address or recipient.name for recipient in message.recipients)
    sent = message.sent_date.isoformat() if message.sent_date else ""
    headers = {"Subject": subject, "From": message.sender or "", "To": to, "Date": sent}
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
