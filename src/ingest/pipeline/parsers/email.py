"""E-mail (.eml): the header block and the body. The attachments are child
documents (pipeline/containers.py)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import trafilatura

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _BINARY_SNIFF_BYTES, _decode_by_bom, _decode_text
from ingest.pipeline.parsers.html import _decode_html, _html_to_markdown
from ingest.pipeline.segments import Segment

_EMAIL_HEADERS = ("Subject", "From", "To", "Date")
_MAX_EMAIL_NESTING = 3


def _parse_eml(data: bytes, budget: _TextBudget) -> list[Segment]:
    if not data.strip():
        return []  # whitespace only: reported as an empty document
    message = email.message_from_bytes(_as_8bit_message(data), policy=email.policy.default)
    subject = _email_header(message, "Subject")
    text = _email_text(message, depth=0)
    if not text.strip():
        raise CorruptDocument("not a valid e-mail message")
    return [Segment(text=budget.take(text), heading=subject or None)]


def _email_text(message: EmailMessage, depth: int) -> str:
    """The header block, a blank line, then the body."""
    headers = {name: _email_header(message, name) for name in _EMAIL_HEADERS}
    header_block = "\n".join(f"{name}: {value}" for name, value in headers.items() if value)
    body = _email_body(message)
    if not body.strip() and depth < _MAX_EMAIL_NESTING:
        body = "\n\n".join(_inline_messages_text(message, depth))
    return f"{header_block}\n\n{body}".strip()


def _inline_messages_text(message: EmailMessage, depth: int) -> Iterator[str]:
    """Messages carried inline (a multipart/digest) are the content; attached ones are not."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and not part.is_attachment():
            for inner in part.iter_parts():
                if isinstance(inner, EmailMessage):
                    yield _email_text(inner, depth + 1)


def _as_8bit_message(data: bytes) -> bytes:
    """The email parser reads ASCII-compatible bytes: re-encode a message saved as UTF-16/32."""
    if _decode_by_bom(data) is None and b"\x00" not in data[:_BINARY_SNIFF_BYTES]:
        return data
    return _decode_text(data, "an e-mail file (.eml)").encode("utf-8")


def _email_header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # a header the policy cannot parse: fall back to its raw value
        text = next((str(v) for k, v in message.raw_items() if k.lower() == name.lower()), "")
    return " ".join(text.split())


def _email_body(message: EmailMessage) -> str:
    """The text/plain body, else the text/html one reduced to its text (attachments
    are child documents of their own)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return ""
    charset = part.get_content_charset()
    if part.get_content_subtype() == "html":
        html = _decode_html(payload, "the e-mail's HTML body", declared=charset)
        # Mail HTML is often too short for trafilatura's main-content heuristics:
        # fall back to all of its text.
        return _html_to_markdown(html) or str(trafilatura.html2txt(html))
    return _decode_text(payload, "the e-mail body", declared=charset)
