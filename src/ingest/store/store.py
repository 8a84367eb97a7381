"""The store's front door: documents and chunks to read, the embedding cache,
maintenance, search, and the unit of work (`transaction()`) every write goes through.

The job ledger, staged files, the worker registry and API access hang off it
(`store.jobs`, `store.staged_files`, `store.workers`, `store.access`,
`store.sources`), all on
the primary's engine.

With a read replica (`DATABASE_READ_URL`), search and the read-only listings
(documents list, a document's chunks) read from it; every write, the ledger and a
single document's lookup stay on the primary, so what a client just wrote is
what it reads back by id (read-your-writes), whatever the replica's lag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from ingest.errors import ConfigError
from ingest.store import bm25, migrate, pg_search, sqlite_search
from ingest.store.access import Access
from ingest.store.document_statements import document_statements
from ingest.store.documents import (
    ChunkHit,
    ChunkRecord,
    DocumentRecord,
    documents_query,
    to_document,
)
from ingest.store.engine import (
    create_db_engine,
    read_transaction,
    sqlite_backup,
    write_transaction,
)
from ingest.store.ledger import Ledger
from ingest.store.prebuilt import run
from ingest.store.schema import CHUNK_FTS, chunks, collections, documents, vectors
from ingest.store.sources import Sources
from ingest.store.staged_files import StagedFiles
from ingest.store.transaction import Transaction, transaction
from ingest.store.workers import WorkerRegistry
from ingest.vocabulary import DocumentStatus

if TYPE_CHECKING:
    from ingest.settings import Settings

MetadataFilter = Mapping[str, str | int | float | bool]

# Built once: read before every ingestion (see store/document_statements.py).
_DOCUMENT_BY_ID = documents_query().where(documents.c.id == sa.bindparam("doc_id"))
_DOCUMENTS_BY_ID = documents_query().where(
    documents.c.id.in_(sa.bindparam("doc_ids", expanding=True))
)


class Store:
    def __init__(
        self,
        engine: Engine,
        *,
        read_engine: Engine | None = None,
        keyword_rank_limit: int = 5000,
    ) -> None:
        self.engine = engine
        # Search and listings: the replica's engine, or the primary's when there is none.
        self.read_engine = read_engine if read_engine is not None else engine
        self.keyword_rank_limit = keyword_rank_limit
        self.jobs = Ledger(engine)
        self.staged_files = StagedFiles(engine)
        self.workers = WorkerRegistry(engine)
        self.access = Access(engine)
        self.sources = Sources(engine)

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        busy_timeout_ms: int = 60_000,
        pool_size: int = 5,
        max_overflow: int = 10,
        keyword_rank_limit: int = 5000,
        read_url: str | None = None,
        prepared_statements: bool = True,
    ) -> Store:
        def engine(url: str, setting: str) -> Engine:
            return create_db_engine(
                url,
                busy_timeout_ms=busy_timeout_ms,
                pool_size=pool_size,
                max_overflow=max_overflow,
                prepared_statements=prepared_statements,
                setting=setting,
            )

        primary = engine(database_url, "DATABASE_URL")
        replica = None
        if read_url:
            if primary.dialect.name != "postgresql":
                primary.dispose()
                raise ConfigError(
                    "DATABASE_READ_URL is for a PostgreSQL streaming replica; "
                    "unset it with a SQLite DATABASE_URL"
                )
            replica = engine(read_url, "DATABASE_READ_URL")
            if replica.dialect.name != "postgresql":
                primary.dispose()
                raise ConfigError("DATABASE_READ_URL must be a postgresql+psycopg:// URL")
        return cls(primary, read_engine=replica, keyword_rank_limit=keyword_rank_limit)

    @classmethod
    def from_settings(cls, settings: Settings, *, light: bool = False) -> Store:
        """The one way a process opens its store; `light`: a single connection, for
        health probes and one-shot commands."""
        return cls.open(
            settings.database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=1 if light else settings.db_pool_size,
            max_overflow=0 if light else settings.db_max_overflow,
            keyword_rank_limit=settings.keyword_rank_limit,
            # One-shot commands read their own writes: they need no replica.
            read_url=None if light else settings.database_read_url,
            prepared_statements=settings.db_prepared_statements,
        )

    def close(self) -> None:
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- schema --------------------------------------------------------------

    def migrate(self) -> tuple[str | None, str]:
        return migrate.upgrade_to_head(self.engine)

    def require_current_schema(self) -> None:
        migrate.require_current_schema(self.engine)

    def schema_is_current(self) -> bool:
        return migrate.current_revision(self.engine) == migrate.head_revision()

    def read_replica_status(self) -> str:
        """The replica behind DATABASE_READ_URL answers: how long ago it replayed the
        primary's last commit (grows while the primary is idle, too)."""
        with read_transaction(self.read_engine) as conn:
            row = conn.execute(
                sa.text(
                    "SELECT pg_is_in_recovery() AS standby, "
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS age"
                )
            ).one()
        if not row.standby:
            return "not a standby (a primary serves the reads)"
        if row.age is None:
            return "standby, nothing replayed yet"
        return f"standby, last commit replayed {float(row.age):.1f} s ago"

    def backup_to(self, target: Path) -> int:
        """A consistent copy of a SQLite store at `target` while it is in use (its size in
        bytes). PostgreSQL is backed up with its own tools (pg_dump -Fc)."""
        if self.dialect != "sqlite":
            raise ConfigError(
                "`ingest backup` copies a SQLite database; back PostgreSQL up with "
                'pg_dump -Fc -d "$DATABASE_URL" -f ingest.dump (docs/operations.md)'
            )
        if target.exists():
            raise ConfigError(f"{target} exists: back up to a new file")
        return sqlite_backup(self.engine, target)

    # --- the unit of work ----------------------------------------------------

    def transaction(self) -> AbstractContextManager[Transaction]:
        """`with store.transaction() as tx:` documents, chunks, jobs and staged files
        written through `tx` commit together; on SQLite it takes the write lock up front."""
        return transaction(self.engine)

    # --- documents -------------------------------------------------------------

    def get_document(self, document_id: str) -> DocumentRecord | None:
        with read_transaction(self.engine) as conn:
            row = run(conn, _DOCUMENT_BY_ID, {"doc_id": document_id}).first()
        return to_document(row) if row else None

    def get_documents(self, document_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The documents among `document_ids` that exist, by id: one snapshot, a
        statement per 500 ids (planning a 1,000-file `ingest add` read each file's
        document on its own: ~0.4 ms of CPU apiece)."""
        found: dict[str, DocumentRecord] = {}
        wanted = list(dict.fromkeys(document_ids))
        with read_transaction(self.engine) as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(_DOCUMENTS_BY_ID, {"doc_ids": wanted[start : start + 500]})
                found.update((row.id, to_document(row)) for row in rows)
        return found

    def list_documents(
        self,
        *,
        collection: str | None = None,
        status: DocumentStatus | None = None,
        source_prefix: str | None = None,
        parent_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[DocumentRecord], int]:
        """A page of documents (newest first) and the total matching; `parent_id`:
        only the members of that container."""
        conditions = []
        if collection is not None:
            conditions.append(collections.c.name == collection)
        if status is not None:
            conditions.append(documents.c.status == status)
        if source_prefix is not None:
            conditions.append(documents.c.source_uri.startswith(source_prefix, autoescape=True))
        if parent_id is not None:
            conditions.append(documents.c.parent_id == parent_id)
        page = (
            documents_query()
            .where(*conditions)
            .order_by(documents.c.updated_at.desc(), documents.c.id)
            .limit(limit)
            .offset(offset)
        )
        total = (
            sa.select(sa.func.count())
            .select_from(documents.join(collections, collections.c.id == documents.c.collection_id))
            .where(*conditions)
        )
        with read_transaction(self.read_engine) as conn:
            rows = conn.execute(page).all()
            count = conn.execute(total).scalar_one()
        return [to_document(r) for r in rows], int(count)

    def documents_in(self, collection: str) -> list[DocumentRecord]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(documents_query().where(collections.c.name == collection)).all()
        return [to_document(r) for r in rows]

    def has_members_to_retry(self, document_id: str) -> bool:
        """Whether a container has a member (at any depth) that failed for a reason
        other than its bytes (a parse timeout, a memory limit: recorded without a
        fingerprint), so ingesting the unchanged container again is not a no-op."""
        doc = self.get_document(document_id)
        if doc is None:
            return False
        stmt = (
            sa.select(documents.c.id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .where(
                collections.c.name == doc.collection,
                documents.c.source_uri.startswith(doc.source_uri + "!/", autoescape=True),
                documents.c.status == DocumentStatus.FAILED,
                documents.c.fingerprint.is_(None),
            )
            .limit(1)
        )
        with read_transaction(self.engine) as conn:
            return conn.execute(stmt).first() is not None

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        with self.transaction() as tx:
            return tx.documents.delete(doc_ids)

    def chunks_of(
        self, document_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[ChunkRecord]:
        """A document's chunks in order; a page of them with `limit`/`offset`."""
        stmt = (
            sa.select(chunks)
            .where(chunks.c.document_id == document_id)
            .order_by(chunks.c.ordinal)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with read_transaction(self.read_engine) as conn:
            rows = conn.execute(stmt).all()
        return [
            ChunkRecord(
                id=r.id,
                ordinal=r.ordinal,
                text=r.text,
                text_hash=r.text_hash,
                token_count=r.token_count,
                page=r.page,
                heading=r.heading,
                ocr=r.ocr,
            )
            for r in rows
        ]

    # --- vectors (content-addressed embedding cache) ---------------------------

    def cached_vectors(self, model: str, text_hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(text_hashes))
        found: dict[str, bytes] = {}
        if not wanted:
            return found
        select = document_statements(self.dialect).cached_vectors
        with read_transaction(self.engine) as conn:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                rows = run(conn, select, {"model": model, "hashes": batch})
                found.update({r.text_hash: r.embedding for r in rows})
        return found

    def put_vectors(self, model: str, dim: int, by_hash: Mapping[str, bytes]) -> None:
        """Cache a batch of embeddings at once, in a transaction of its own: a retry
        after a crash resumes from what is cached."""
        if by_hash:
            with self.transaction() as tx:
                tx.documents.put_vectors(model, dim, by_hash)

    # --- maintenance -------------------------------------------------------------

    def remove_orphans(self, *, vectors_older_than: float) -> dict[str, int]:
        """Delete rows nothing points at. Vectors get a grace period: a running job
        caches its embeddings before it commits the chunks that use them."""
        with write_transaction(self.engine) as conn:
            if self.dialect == "postgresql":
                # The foreign key cascades, so there should be none; if there are,
                # BM25's statistics must lose them too.
                orphaned = conn.execute(
                    sa.select(chunks.c.document_id)
                    .distinct()
                    .where(~sa.exists().where(documents.c.id == chunks.c.document_id))
                ).scalars()
                bm25.record_change(conn, removed_documents=list(orphaned), added_texts=[])
            chunks_removed = conn.execute(
                chunks.delete().where(~sa.exists().where(documents.c.id == chunks.c.document_id))
            ).rowcount
            keyword_removed = 0
            if self.dialect == "sqlite":
                keyword_removed = conn.exec_driver_sql(
                    f"DELETE FROM {CHUNK_FTS} WHERE rowid NOT IN (SELECT pk FROM chunks)"
                ).rowcount
            vectors_removed = conn.execute(
                vectors.delete().where(
                    vectors.c.created_at < vectors_older_than,
                    ~sa.exists().where(chunks.c.text_hash == vectors.c.text_hash),
                )
            ).rowcount
        return {
            "chunks": int(chunks_removed or 0),
            "keyword_rows": int(keyword_removed or 0),
            "vectors": int(vectors_removed or 0),
        }

    def integrity_report(self, model: str, *, sample: int = 20) -> dict[str, Any]:
        """Ready documents without chunks, and chunks without a vector for `model`."""
        no_chunks = sa.select(documents.c.id).where(
            documents.c.status == DocumentStatus.READY,
            documents.c.chunk_count > 0,
            ~sa.exists().where(chunks.c.document_id == documents.c.id),
        )
        no_vector = sa.select(chunks.c.id).where(
            ~sa.exists().where(vectors.c.model == model, vectors.c.text_hash == chunks.c.text_hash)
        )
        with read_transaction(self.engine) as conn:
            docs = [r.id for r in conn.execute(no_chunks.limit(sample))]
            n_docs = conn.execute(
                sa.select(sa.func.count()).select_from(no_chunks.subquery())
            ).scalar_one()
            chunk_ids = [r.id for r in conn.execute(no_vector.limit(sample))]
            n_chunks = conn.execute(
                sa.select(sa.func.count()).select_from(no_vector.subquery())
            ).scalar_one()
        return {
            "documents_without_chunks": int(n_docs),
            "documents_without_chunks_sample": docs,
            "chunks_without_vectors": int(n_chunks),
            "chunks_without_vectors_sample": chunk_ids,
        }

    # --- counts ----------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            by_status: dict[str, int] = dict(
                conn.execute(
                    sa.select(documents.c.status, sa.func.count()).group_by(documents.c.status)
                ).all()
            )
            n_chunks = conn.execute(sa.select(sa.func.count()).select_from(chunks)).scalar_one()
            n_vectors = conn.execute(sa.select(sa.func.count()).select_from(vectors)).scalar_one()
            n_collections = conn.execute(
                sa.select(sa.func.count()).select_from(collections)
            ).scalar_one()
        return {
            "documents": int(sum(by_status.values())),
            "chunks": int(n_chunks),
            "vectors": int(n_vectors),
            "collections": int(n_collections),
            "by_status": {str(k): int(v) for k, v in by_status.items()},
        }

    # --- search ----------------------------------------------------------------

    def _filter(
        self, collection: str | None, filters: MetadataFilter | None
    ) -> sqlite_search.Filter:
        def apply(stmt: sa.Select[Any]) -> sa.Select[Any]:
            if collection is not None:
                stmt = stmt.where(collections.c.name == collection)
            for key, value in (filters or {}).items():
                stmt = stmt.where(_metadata_equals(key, value, self.dialect))
            return stmt

        return apply

    def vector_search(
        self,
        model: str,
        query_vector: bytes,
        k: int,
        *,
        collection: str | None = None,
        filters: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k chunks by cosine similarity: [(chunk pk, similarity)]."""
        has_filters = collection is not None or bool(filters)
        filtered = self._filter(collection, filters)
        if self.dialect == "postgresql":
            with read_transaction(self.read_engine) as conn:
                return pg_search.vector_ranking(
                    conn,
                    filtered,
                    model,
                    query_vector,
                    k,
                    has_filters=has_filters,
                    ef_search=max(40, k * pg_search.ANN_OVERFETCH),
                )
        return sqlite_search.vector_ranking(
            self.read_engine, filtered, model, query_vector, k, has_filters=has_filters
        )

    def keyword_search(
        self,
        query: str,
        k: int,
        *,
        collection: str | None = None,
        filters: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k chunks by keyword relevance: [(chunk pk, score, higher is better)]."""
        has_filters = collection is not None or bool(filters)
        filtered = self._filter(collection, filters)
        if self.dialect == "postgresql":
            with read_transaction(self.read_engine) as conn:
                return pg_search.keyword_ranking(
                    conn,
                    filtered,
                    query,
                    k,
                    rank_limit=max(self.keyword_rank_limit, k),
                    has_filters=has_filters,
                )
        return sqlite_search.keyword_ranking(
            self.read_engine, filtered, query, k, has_filters=has_filters
        )

    def hits(self, pks: Sequence[int]) -> dict[int, ChunkHit]:
        if not pks:
            return {}
        stmt = (
            sa.select(
                chunks.c.pk,
                chunks.c.id,
                chunks.c.document_id,
                chunks.c.ordinal,
                chunks.c.text,
                chunks.c.page,
                chunks.c.heading,
                chunks.c.ocr,
                documents.c.source_uri,
                documents.c.meta,
                collections.c.name.label("collection_name"),
            )
            .join(documents, documents.c.id == chunks.c.document_id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .where(chunks.c.pk.in_(list(pks)))
        )
        with read_transaction(self.read_engine) as conn:
            rows = conn.execute(stmt).all()
        return {
            r.pk: ChunkHit(
                pk=r.pk,
                chunk_id=r.id,
                document_id=r.document_id,
                source=r.source_uri,
                collection=r.collection_name,
                ordinal=r.ordinal,
                text=r.text,
                page=r.page,
                heading=r.heading,
                ocr=r.ocr,
                metadata=dict(r._mapping["meta"] or {}),
            )
            for r in rows
        }


def _metadata_equals(
    key: str, value: str | int | float | bool, dialect: str
) -> sa.ColumnElement[bool]:
    """The document's metadata holds `value` under `key`, as the same JSON type (2024
    matches 2024 and 2024.0, never "2024" or true). Keys and values are bound, never
    spliced into a JSON path, and no stored value is ever cast: a document whose
    value has another type is simply not a match, on either backend."""
    if dialect == "postgresql":
        as_jsonb = sa.cast(documents.c.meta, JSONB)
        return as_jsonb.contains({key: value})
    each = sa.func.json_each(documents.c.meta).table_valued("key", "type", "value")
    typed: sa.ColumnElement[bool]
    if isinstance(value, bool):
        typed = each.c.type == ("true" if value else "false")
    elif isinstance(value, int | float):
        typed = sa.and_(each.c.type.in_(["integer", "real"]), each.c.value == value)
    else:
        typed = sa.and_(each.c.type == "text", each.c.value == value)
    return sa.exists(sa.select(1).select_from(each).where(each.c.key == key, typed))
