"""API keys (stored hashed), the audit log, and SQL conversation memory."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.errors import InvalidInput
from ingest.store.engine import write_transaction
from ingest.store.schema import api_keys, audit_log, conversation_messages

ROLES = ("admin", "editor", "viewer")
KEY_PREFIX = "ingk_"


def key_prefix(secret: str) -> str:
    """The first characters of a key: shown in `ingest keys list`, and what failed
    attempts are counted and audited by (never the whole secret)."""
    return secret[:12]


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens: a plain SHA-256 cannot be brute-forced back.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    prefix: str
    created_at: float
    revoked_at: float | None


class Access:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self) -> AbstractContextManager[sa.Connection]:
        return write_transaction(self.engine)

    # --- keys ----------------------------------------------------------------------

    def create_key(self, role: str, name: str = "") -> tuple[str, ApiKey]:
        """Returns (the secret key, shown once; its record)."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=uuid.uuid4().hex,
            name=name or role,
            role=role,
            prefix=key_prefix(secret),
            created_at=time.time(),
            revoked_at=None,
        )
        with self._write() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=record.id,
                    name=record.name,
                    role=record.role,
                    key_hash=hash_key(secret),
                    prefix=record.prefix,
                    created_at=record.created_at,
                )
            )
        return secret, record

    def lookup(self, secret: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys).where(
                    api_keys.c.key_hash == hash_key(secret), api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return _key(row) if row else None

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return bool(result.rowcount)

    # --- audit ---------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str | None,
        source_ip: str | None,
        action: str,
        target: str | None,
        outcome: str,
        status_code: int,
        request_id: str | None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                audit_log.insert().values(
                    ts=time.time(),
                    actor=actor,
                    source_ip=source_ip,
                    action=action,
                    target=target,
                    outcome=outcome,
                    status_code=status_code,
                    request_id=request_id,
                )
            )

    def audit_entries(self, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        stmt = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # --- conversation memory (SQL flavour) -------------------------------------------

    def append_message(self, session_id: str, role: str, content: str, keep: int) -> None:
        with self._write() as conn:
            conn.execute(
                conversation_messages.insert().values(
                    session_id=session_id, role=role, content=content, created_at=time.time()
                )
            )
            keep_ids = (
                sa.select(conversation_messages.c.id)
                .where(conversation_messages.c.session_id == session_id)
                .order_by(conversation_messages.c.id.desc())
                .limit(keep)
            )
            conn.execute(
                conversation_messages.delete().where(
                    conversation_messages.c.session_id == session_id,
                    conversation_messages.c.id.not_in(keep_ids),
                )
            )

    def messages(self, session_id: str, limit: int) -> list[dict[str, str]]:
        stmt = (
            sa.select(conversation_messages.c.role, conversation_messages.c.content)
            .where(conversation_messages.c.session_id == session_id)
            .order_by(conversation_messages.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [{"role": r.role, "content": r.content} for r in reversed(rows)]


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
