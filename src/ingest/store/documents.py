"""Documents and their chunks: the records read back, and the writes a unit of
work makes (store/transaction.py).

A document's new chunks and keyword rows replace its old ones in the caller's
transaction, so search never sees half a document. A document's status follows
its latest job (`DocumentWriter.follow_latest_job`, the one rule, run by the
ledger in every transaction that changes a document's job).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.store import bm25
from ingest.store.document_statements import (
    FTS_DELETE_OF_DOCUMENT,
    FTS_INSERT_OF_DOCUMENT,
    document_statements,
)
from ingest.store.prebuilt import run, run_many
from ingest.store.schema import CHUNK_FTS, chunks, collections, documents, jobs
from ingest.vocabulary import ACTIVE, REJECTED, DocumentStatus, JobStatus

# The error of a document whose every job was cancelled before one indexed it.
CANCELLED_BEFORE_INDEXED = "ingestion was cancelled before anything of this document was indexed"


def document_id_for(collection: str, source_uri: str) -> str:
    """Stable id: the same (collection, source) is the same document in every process."""
    return hashlib.sha256(f"{collection}\x00{source_uri}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    collection: str
    source_uri: str
    content_hash: str | None
    fingerprint: str | None
    status: DocumentStatus
    error: str | None
    metadata: dict[str, Any]
    chunk_count: int
    size_bytes: int | None
    created_at: float
    updated_at: float
    # The container (archive, e-mail) this document is a member of; None: top level.
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: str
    ordinal: int
    text: str
    text_hash: str
    token_count: int
    page: int | None
    heading: str | None
    ocr: bool = False


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """A chunk as search finds it, with where it comes from and how well it matched:
    the one hit record from the store to the wire (models.HitOut shows it)."""

    pk: int
    chunk_id: str
    document_id: str
    source: str
    collection: str
    ordinal: int
    text: str
    page: int | None
    heading: str | None
    metadata: dict[str, Any]
    score: float = 0.0
    ocr: bool = False


def documents_query() -> sa.Select[Any]:
    return sa.select(documents, collections.c.name.label("collection_name")).join(
        collections, collections.c.id == documents.c.collection_id
    )


def to_document(row: sa.Row[Any]) -> DocumentRecord:
    m = row._mapping
    return DocumentRecord(
        id=m["id"],
        collection=m["collection_name"],
        source_uri=m["source_uri"],
        content_hash=m["content_hash"],
        fingerprint=m["fingerprint"],
        status=DocumentStatus(m["status"]),
        error=m["error"],
        metadata=dict(m["meta"] or {}),
        chunk_count=m["chunk_count"],
        size_bytes=m["size_bytes"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        parent_id=m["parent_id"],
    )


def upsert(conn: sa.Connection) -> Any:
    """INSERT ... ON CONFLICT in this connection's dialect."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


class DocumentWriter:
    """Inside a transaction: create, replace, fail and delete documents."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._sql = document_statements(conn.dialect.name)
        self._sqlite = conn.dialect.name == "sqlite"
        # Ids looked up in this transaction: `ingest add` queues 200 files of one
        # collection per transaction. (Only this transaction: a collection deleted
        # and made again gets a new id.)
        self._collection_ids: dict[str, int] = {}

    def _collection_id(self, name: str) -> int:
        """The collection's id, created first if need be (one statement when it exists)."""
        if name not in self._collection_ids:
            self._collection_ids[name] = self._look_up_collection(name)
        return self._collection_ids[name]

    def _look_up_collection(self, name: str) -> int:
        row = run(self._conn, self._sql.collection_id, {"name": name}).first()
        if row is not None:
            return int(row.id)
        self._conn.execute(self._sql.insert_collection, {"name": name, "created_at": time.time()})
        return int(self._conn.execute(self._sql.collection_id, {"name": name}).scalar_one())

    def ensure(
        self, *, collection: str, source_uri: str, metadata: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Create the row of a document about to be ingested (status queued). An
        existing document keeps its row and its chunks, searchable until replaced;
        its status follows the new job (the ledger applies follow_latest_job).
        Returns the document's id, and whether its row is new."""
        doc_id = document_id_for(collection, source_uri)
        now = time.time()
        inserted = run(
            self._conn,
            self._sql.ensure_document,
            {
                "id": doc_id,
                "collection_id": self._collection_id(collection),
                "source_uri": source_uri,
                "status": DocumentStatus.QUEUED,
                "meta": dict(metadata),
                "chunk_count": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        return doc_id, inserted.rowcount == 1

    def _upsert(self, *, collection: str, source_uri: str, values: dict[str, Any]) -> str:
        """Insert or update the document's row; `values` holds every other column."""
        doc_id = document_id_for(collection, source_uri)
        now = time.time()
        row = {
            "id": doc_id,
            "collection_id": self._collection_id(collection),
            "source_uri": source_uri,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        run(self._conn, self._sql.upsert_document, row)
        return doc_id

    def replace(
        self,
        *,
        collection: str,
        source_uri: str,
        content_hash: str,
        fingerprint: str,
        size_bytes: int,
        metadata: Mapping[str, Any],
        chunk_rows: Sequence[ChunkRecord],
        parent_id: str | None = None,
    ) -> str:
        """The document is ready with exactly these chunks (and keyword rows)."""
        doc_id = self._upsert(
            collection=collection,
            source_uri=source_uri,
            values={
                "status": DocumentStatus.READY,
                "error": None,
                "content_hash": content_hash,
                "fingerprint": fingerprint,
                "size_bytes": size_bytes,
                "meta": dict(metadata),
                "chunk_count": len(chunk_rows),
                "parent_id": parent_id,
            },
        )
        self._count_keywords(removed=[doc_id], added=chunk_rows)
        self._delete_chunks_of([doc_id])
        self._insert_chunks(doc_id, chunk_rows)
        return doc_id

    def record_failed(
        self,
        *,
        collection: str,
        source_uri: str,
        error: str,
        content_hash: str | None,
        fingerprint: str | None,
        size_bytes: int | None,
        metadata: Mapping[str, Any],
        parent_id: str | None = None,
    ) -> str:
        """Mark a document failed. Its previous chunks, if any, stay searchable:
        a bad new version must not destroy a good old one."""
        doc_id = document_id_for(collection, source_uri)
        prev = self._conn.execute(self._sql.chunk_count_of, {"doc_id": doc_id}).scalar_one_or_none()
        return self._upsert(
            collection=collection,
            source_uri=source_uri,
            values={
                "status": DocumentStatus.FAILED,
                "error": error,
                "content_hash": content_hash,
                "fingerprint": fingerprint,
                "size_bytes": size_bytes,
                "meta": dict(metadata),
                "chunk_count": prev or 0,
                "parent_id": parent_id,
            },
        )

    # --- the status rule ----------------------------------------------------------

    def lock(self, doc_ids: Iterable[str]) -> None:
        """PostgreSQL: lock the documents' rows before any of their jobs' rows, the
        order every writer follows (the ingest handler writes the document first),
        so two writers never wait on each other in a cycle. SQLite's write
        transaction holds the whole database already."""
        ids = sorted(set(doc_ids))
        if ids and self._conn.dialect.name == "postgresql":
            self._conn.execute(
                sa.select(documents.c.id)
                .where(documents.c.id.in_(ids))
                .order_by(documents.c.id)
                .with_for_update()
            )

    def follow_latest_job(self, document_id: str, kind: str) -> None:
        """The one rule: a document's status follows its latest job (of `kind`, most
        recently created). Queued or running: `queued`. Succeeded: `ready`. Failed or
        dead: `failed`, with the job's error. Cancelled: what the document was before
        (`queued` while another of its jobs is in flight). Run in the transaction
        that changed the job, so the two never disagree. Chunks are never touched:
        an earlier version stays searchable whatever happens to a newer job."""
        latest = self._conn.execute(
            self._sql.latest_job, {"doc_id": document_id, "kind": kind}
        ).first()
        if latest is None:
            return
        status = JobStatus(latest.status)
        if status == JobStatus.CANCELLED:
            values = self._status_before_cancel(document_id, kind)
        else:
            values = _status_after(status, latest.error_type, latest.error_message)
        self._conn.execute(
            self._sql.update_document,
            {**values, "updated_at": time.time(), "doc_id": document_id},
        )

    def _status_before_cancel(self, document_id: str, kind: str) -> dict[str, Any]:
        in_flight = self._conn.execute(
            sa.select(jobs.c.id)
            .where(
                jobs.c.document_id == document_id,
                jobs.c.kind == kind,
                jobs.c.status.in_(list(ACTIVE)),
            )
            .limit(1)
        ).first()
        if in_flight is not None:
            return {"status": DocumentStatus.QUEUED}
        row = self._conn.execute(
            sa.select(documents.c.error, documents.c.content_hash).where(
                documents.c.id == document_id
            )
        ).first()
        # The error is set by a failure and cleared by a success: it says how the
        # last version processed ended, whatever jobs were queued since.
        if row is not None and row.error is not None:
            return {"status": DocumentStatus.FAILED}
        if row is not None and row.content_hash is not None:
            return {"status": DocumentStatus.READY}
        return {"status": DocumentStatus.FAILED, "error": CANCELLED_BEFORE_INDEXED}

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete documents with their chunks, and their child documents (the members
        of an archive, an e-mail's attachments) with theirs: how many were deleted."""
        ids = self._with_descendants(doc_ids)
        self._count_keywords(removed=ids, added=[])
        self._delete_chunks_of(ids)
        deleted = 0
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            result = self._conn.execute(documents.delete().where(documents.c.id.in_(batch)))
            deleted += int(result.rowcount or 0)
        return deleted

    def delete_children_except(self, parent_id: str, keep: Iterable[str]) -> int:
        """A container ingested again: its descendants no longer in it go."""
        kept = {parent_id, *keep}
        gone = [d for d in self._with_descendants([parent_id]) if d not in kept]
        return self.delete(gone) if gone else 0

    def _children_of(self, parent_ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(parent_ids), 500):
            batch = list(parent_ids[start : start + 500])
            rows = self._conn.execute(
                sa.select(documents.c.id).where(documents.c.parent_id.in_(batch))
            )
            found.extend(r.id for r in rows)
        return found

    def _with_descendants(self, doc_ids: Sequence[str]) -> list[str]:
        seen = list(dict.fromkeys(doc_ids))
        known = set(seen)
        frontier = seen
        # Bounded by INGEST_CONTAINER_MAX_DEPTH in practice; `known` stops any cycle.
        while frontier:
            frontier = [c for c in self._children_of(frontier) if c not in known]
            known.update(frontier)
            seen.extend(frontier)
        return seen

    def _count_keywords(self, *, removed: Sequence[str], added: Sequence[ChunkRecord]) -> None:
        """PostgreSQL: BM25's statistics follow the chunks, in this transaction and in
        one statement (store/bm25.py), before the old chunks are deleted. FTS5 keeps
        its own."""
        if self._conn.dialect.name == "postgresql":
            bm25.record_change(
                self._conn, removed_documents=removed, added_texts=[c.text for c in added]
            )

    def _insert_chunks(self, doc_id: str, chunk_rows: Sequence[ChunkRecord]) -> None:
        if not chunk_rows:
            return
        run_many(
            self._conn,
            self._sql.insert_chunks,
            [
                {
                    "id": c.id,
                    "document_id": doc_id,
                    "ordinal": c.ordinal,
                    "text": c.text,
                    "text_hash": c.text_hash,
                    "token_count": c.token_count,
                    "page": c.page,
                    "heading": c.heading,
                    "ocr": c.ocr,
                }
                for c in chunk_rows
            ],
        )
        if self._sqlite:
            self._conn.exec_driver_sql(FTS_INSERT_OF_DOCUMENT, (doc_id,))

    def _delete_chunks_of(self, doc_ids: Sequence[str]) -> None:
        if len(doc_ids) == 1:  # a document replaced: its own prebuilt statements
            self._delete_chunks_of_one(doc_ids[0])
            return
        for start in range(0, len(doc_ids), 500):
            self._delete_chunks_of_batch(doc_ids[start : start + 500])

    def _delete_chunks_of_one(self, doc_id: str) -> None:
        if self._sqlite:
            self._conn.exec_driver_sql(FTS_DELETE_OF_DOCUMENT, (doc_id,))
        run(self._conn, self._sql.delete_chunks_of_document, {"doc_id": doc_id})

    def _delete_chunks_of_batch(self, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        if self._sqlite:
            self._conn.execute(
                sa.text(
                    f"DELETE FROM {CHUNK_FTS} WHERE rowid IN "
                    "(SELECT pk FROM chunks WHERE document_id IN :ids)"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": list(doc_ids)},
            )
        self._conn.execute(chunks.delete().where(chunks.c.document_id.in_(doc_ids)))

    def put_vectors(self, model: str, dim: int, by_hash: Mapping[str, bytes]) -> None:
        """Cache embeddings (content-addressed: one already cached is kept)."""
        if not by_hash:
            return
        now = time.time()
        run_many(
            self._conn,
            self._sql.insert_vectors,
            [
                {"model": model, "text_hash": h, "dim": dim, "embedding": b, "created_at": now}
                for h, b in by_hash.items()
            ],
        )


def _status_after(status: JobStatus, error_type: str | None, message: str | None) -> dict[str, Any]:
    if status in ACTIVE:
        # The error stays: it tells the job how the last version processed ended.
        return {"status": DocumentStatus.QUEUED}
    if status == JobStatus.SUCCEEDED:
        return {"status": DocumentStatus.READY, "error": None}
    values: dict[str, Any] = {
        "status": DocumentStatus.FAILED,
        "error": message or f"the job ended {status} ({error_type or 'no reason given'})",
    }
    if error_type != REJECTED:
        # Not a verdict on the input (the worker died, the time ran out): forget which
        # input was processed last, so the next submission processes the file again
        # instead of skipping it or rejecting it for this reason.
        values["fingerprint"] = None
    return values
