"""Synced sources: where documents come from (a folder, an S3 prefix), how often
to re-list it, and how its last sync ended."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.errors import SourceExists
from ingest.store.documents import upsert
from ingest.store.engine import read_transaction, write_transaction
from ingest.store.schema import source_objects, sources

# Rows per statement when remembering or forgetting objects (SQLite's bound
# parameters per statement are limited).
_BATCH = 500


@dataclass(frozen=True, slots=True)
class SourceRecord:
    id: str
    location: str
    collection: str
    interval_seconds: float
    include: list[str]
    exclude: list[str]
    created_at: float
    last_sync_job_id: str | None = None
    last_sync_status: str | None = None
    last_sync_started_at: float | None = None
    last_sync_finished_at: float | None = None
    last_sync_error: str | None = None
    last_sync_report: dict[str, Any] | None = None


def _to_source(row: sa.Row[Any]) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        location=row.location,
        collection=row.collection,
        interval_seconds=float(row.interval_seconds),
        include=list(row.include or []),
        exclude=list(row.exclude or []),
        created_at=float(row.created_at),
        last_sync_job_id=row.last_sync_job_id,
        last_sync_status=row.last_sync_status,
        last_sync_started_at=row.last_sync_started_at,
        last_sync_finished_at=row.last_sync_finished_at,
        last_sync_error=row.last_sync_error,
        last_sync_report=row.last_sync_report,
    )


@dataclass(frozen=True, slots=True)
class RememberedObject:
    """An object as its source's listing described it (S3: ETag, size, LastModified)
    and the content hash of the bytes read when it was listed so."""

    listed: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """How one sync ended, as the source row keeps it."""

    job_id: str
    status: str
    started_at: float
    finished_at: float
    error: str | None = None
    report: Mapping[str, Any] | None = None


class SourceWriter:
    """Inside a transaction: record a sync's outcome with the job's own."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def record_sync(self, source_id: str, outcome: SyncOutcome) -> None:
        self._conn.execute(
            sa.update(sources)
            .where(sources.c.id == source_id)
            .values(
                last_sync_job_id=outcome.job_id,
                last_sync_status=outcome.status,
                last_sync_started_at=outcome.started_at,
                last_sync_finished_at=outcome.finished_at,
                last_sync_error=outcome.error,
                last_sync_report=dict(outcome.report) if outcome.report is not None else None,
            )
        )


class Sources:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        *,
        location: str,
        collection: str,
        interval_seconds: float,
        include: Sequence[str],
        exclude: Sequence[str],
    ) -> SourceRecord:
        values = {
            "id": uuid.uuid4().hex,
            "location": location,
            "collection": collection,
            "interval_seconds": interval_seconds,
            "include": list(include),
            "exclude": list(exclude),
            "created_at": time.time(),
        }
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(sources.insert().values(**values))
        except sa.exc.IntegrityError:
            raise SourceExists(f"{location} already syncs into collection {collection!r}") from None
        found = self.get(str(values["id"]))
        assert found is not None
        return found

    def get(self, source_id: str) -> SourceRecord | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(sa.select(sources).where(sources.c.id == source_id)).first()
        return _to_source(row) if row else None

    def list(self) -> list[SourceRecord]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(sources).order_by(sources.c.created_at, sources.c.id))
            return [_to_source(r) for r in rows]

    def remove(self, source_id: str) -> bool:
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(sa.delete(sources).where(sources.c.id == source_id))
        return bool(deleted.rowcount)

    # --- the objects a source's syncs read: listed the same again, not read again ----

    def objects(self, source_id: str) -> dict[str, RememberedObject]:
        """What the source's syncs remember, by source URI."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    source_objects.c.source_uri,
                    source_objects.c.listed,
                    source_objects.c.content_hash,
                ).where(source_objects.c.source_id == source_id)
            )
            return {r.source_uri: RememberedObject(r.listed, r.content_hash) for r in rows}

    def remember(self, source_id: str, objects: Mapping[str, RememberedObject]) -> None:
        """Record (or replace) these objects' listing and content hash: an upsert, as
        two syncs of one source (a requested one, a scheduled one) may overlap."""
        items = list(objects.items())
        if not items:
            return
        with write_transaction(self.engine) as conn:
            insert = upsert(conn)
            for start in range(0, len(items), _BATCH):
                stmt = insert(source_objects).values(
                    [
                        {
                            "source_id": source_id,
                            "source_uri": uri,
                            "listed": remembered.listed,
                            "content_hash": remembered.content_hash,
                        }
                        for uri, remembered in items[start : start + _BATCH]
                    ]
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["source_id", "source_uri"],
                        set_={
                            "listed": stmt.excluded.listed,
                            "content_hash": stmt.excluded.content_hash,
                        },
                    )
                )

    def forget(self, source_id: str, uris: Collection[str]) -> None:
        """Objects no longer listed (or whose listing says nothing to trust)."""
        items = list(uris)
        if not items:
            return
        with write_transaction(self.engine) as conn:
            for start in range(0, len(items), _BATCH):
                _delete_objects(conn, source_id, items[start : start + _BATCH])


def _delete_objects(conn: sa.Connection, source_id: str, uris: Sequence[str]) -> None:
    conn.execute(
        sa.delete(source_objects).where(
            source_objects.c.source_id == source_id, source_objects.c.source_uri.in_(uris)
        )
    )
