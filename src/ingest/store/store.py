"""Documents, chunks, vectors and the keyword index, behind one small API.

Every multi-row change is one transaction: a document's old chunks, vectors and
keyword rows are replaced together, so search never sees half a document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from ingest.store import migrate, pg_search, vector_cache
from ingest.store.engine import create_db_engine, write_transaction
from ingest.store.keywords import fts5_match_expression
from ingest.store.schema import CHUNK_FTS, chunks, collections, documents, vectors

MetadataFilter = Mapping[str, str | int | float | bool]
InTransaction = Callable[[sa.Connection], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    status: str
    error: str | None
    metadata: dict[str, Any]
    chunk_count: int
    size_bytes: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: str
    ordinal: int
    text: str
    text_hash: str
    token_count: int
    page: int | None
    heading: str | None


@dataclass(frozen=True, slots=True)
class ChunkHit:
    pk: int
    chunk_id: str
    document_id: str
    source_uri: str
    collection: str
    ordinal: int
    text: str
    page: int | None
    heading: str | None
    metadata: dict[str, Any]


class Store:
    def __init__(self, engine: Engine, *, keyword_rank_limit: int = 5000) -> None:
        self.engine = engine
        self.keyword_rank_limit = keyword_rank_limit
        self._lexeme_stats = pg_search.LexemeStats()

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        busy_timeout_ms: int = 60_000,
        pool_size: int = 5,
        max_overflow: int = 10,
        keyword_rank_limit: int = 5000,
    ) -> Store:
        return cls(
            create_db_engine(
                database_url,
                busy_timeout_ms=busy_timeout_ms,
                pool_size=pool_size,
                max_overflow=max_overflow,
            ),
            keyword_rank_limit=keyword_rank_limit,
        )

    def close(self) -> None:
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

    # --- transactions --------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction; on SQLite it takes the write lock up front."""
        with write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        return pg_insert(table) if self.dialect == "postgresql" else sqlite_insert(table)

    # --- collections and documents -------------------------------------------

    def _collection_id(self, conn: sa.Connection, name: str) -> int:
        conn.execute(
            self._insert(collections)
            .values(name=name, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return int(
            conn.execute(sa.select(collections.c.id).where(collections.c.name == name)).scalar_one()
        )

    def _documents_query(self) -> sa.Select[Any]:
        return sa.select(documents, collections.c.name.label("collection_name")).join(
            collections, collections.c.id == documents.c.collection_id
        )

    @staticmethod
    def _to_document(row: sa.Row[Any]) -> DocumentRecord:
        m = row._mapping
        return DocumentRecord(
            id=m["id"],
            collection=m["collection_name"],
            source_uri=m["source_uri"],
            content_hash=m["content_hash"],
            fingerprint=m["fingerprint"],
            status=m["status"],
            error=m["error"],
            metadata=dict(m["meta"] or {}),
            chunk_count=m["chunk_count"],
            size_bytes=m["size_bytes"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    def get_document(self, document_id: str) -> DocumentRecord | None:
        with self._read() as conn:
            row = conn.execute(self._documents_query().where(documents.c.id == document_id)).first()
        return self._to_document(row) if row else None

    def list_documents(
        self,
        *,
        collection: str | None = None,
        status: str | None = None,
        source_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[DocumentRecord], int]:
        """A page of documents (newest first) and the total matching."""
        conditions = []
        if collection is not None:
            conditions.append(collections.c.name == collection)
        if status is not None:
            conditions.append(documents.c.status == status)
        if source_prefix is not None:
            conditions.append(documents.c.source_uri.startswith(source_prefix, autoescape=True))
        page = (
            self._documents_query()
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
        with self._read() as conn:
            rows = conn.execute(page).all()
            count = conn.execute(total).scalar_one()
        return [self._to_document(r) for r in rows], int(count)

    def documents_in(self, collection: str) -> list[DocumentRecord]:
        with self._read() as conn:
            rows = conn.execute(
                self._documents_query().where(collections.c.name == collection)
            ).all()
        return [self._to_document(r) for r in rows]

    def _upsert_document(
        self,
        conn: sa.Connection,
        *,
        collection: str,
        source_uri: str,
        values: dict[str, Any],
    ) -> str:
        doc_id = document_id_for(collection, source_uri)
        now = utcnow()
        row = {
            "id": doc_id,
            "collection_id": self._collection_id(conn, collection),
            "source_uri": source_uri,
            "meta": {},
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        update = {
            k: v
            for k, v in row.items()
            if k not in ("id", "created_at", "collection_id", "source_uri")
        }
        stmt = self._insert(documents).values(row)
        # Column objects as keys: the "metadata" column is keyed "meta" in Python.
        set_ = {documents.c[k]: stmt.excluded[k] for k in update}
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=set_))
        return doc_id

    def record_failed_document(
        self,
        *,
        collection: str,
        source_uri: str,
        error: str,
        content_hash: str | None,
        fingerprint: str | None,
        size_bytes: int | None,
        metadata: Mapping[str, Any],
        also: InTransaction | None = None,
    ) -> str:
        """Mark a document failed. Its previous chunks, if any, stay searchable:
        a bad new version must not destroy a good old one."""
        with self.write() as conn:
            doc_id = document_id_for(collection, source_uri)
            prev = conn.execute(
                sa.select(documents.c.chunk_count).where(documents.c.id == doc_id)
            ).scalar_one_or_none()
            self._upsert_document(
                conn,
                collection=collection,
                source_uri=source_uri,
                values={
                    "status": "failed",
                    "error": error,
                    "content_hash": content_hash,
                    "fingerprint": fingerprint,
                    "size_bytes": size_bytes,
                    "meta": dict(metadata),
                    "chunk_count": prev or 0,
                },
            )
            if also is not None:
                also(conn)
            return doc_id

    def replace_document(
        self,
        *,
        collection: str,
        source_uri: str,
        content_hash: str,
        fingerprint: str,
        size_bytes: int,
        metadata: Mapping[str, Any],
        chunk_rows: Sequence[ChunkRecord],
        also: InTransaction | None = None,
    ) -> str:
        """Swap in a document's new chunks and keyword rows in ONE transaction;
        `also` runs in that transaction too (marks the job done, fenced)."""
        with self.write() as conn:
            doc_id = self._upsert_document(
                conn,
                collection=collection,
                source_uri=source_uri,
                values={
                    "status": "ready",
                    "error": None,
                    "content_hash": content_hash,
                    "fingerprint": fingerprint,
                    "size_bytes": size_bytes,
                    "meta": dict(metadata),
                    "chunk_count": len(chunk_rows),
                },
            )
            self._delete_chunks_of(conn, [doc_id])
            self._insert_chunks(conn, doc_id, chunk_rows)
            if also is not None:
                also(conn)
        return doc_id

    def ensure_document(
        self, conn: sa.Connection, *, collection: str, source_uri: str, metadata: Mapping[str, Any]
    ) -> str:
        """Create the row of a document about to be ingested (status queued); an
        existing document keeps its state and stays searchable until replaced."""
        doc_id = document_id_for(collection, source_uri)
        now = utcnow()
        conn.execute(
            self._insert(documents)
            .values(
                id=doc_id,
                collection_id=self._collection_id(conn, collection),
                source_uri=source_uri,
                status="queued",
                meta=dict(metadata),
                chunk_count=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return doc_id

    def _insert_chunks(
        self, conn: sa.Connection, doc_id: str, chunk_rows: Sequence[ChunkRecord]
    ) -> None:
        if not chunk_rows:
            return
        conn.execute(
            chunks.insert(),
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
                }
                for c in chunk_rows
            ],
        )
        if self.dialect == "sqlite":
            conn.exec_driver_sql(
                f"INSERT INTO {CHUNK_FTS}(rowid, text) "
                "SELECT pk, text FROM chunks WHERE document_id = ?",
                (doc_id,),
            )

    def _delete_chunks_of(self, conn: sa.Connection, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        if self.dialect == "sqlite":
            conn.execute(
                sa.text(
                    f"DELETE FROM {CHUNK_FTS} WHERE rowid IN "
                    "(SELECT pk FROM chunks WHERE document_id IN :ids)"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": list(doc_ids)},
            )
        conn.execute(chunks.delete().where(chunks.c.document_id.in_(doc_ids)))

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        with self.write() as conn:
            self._delete_chunks_of(conn, doc_ids)
            result = conn.execute(documents.delete().where(documents.c.id.in_(doc_ids)))
            return int(result.rowcount or 0)

    def chunks_of(self, document_id: str) -> list[ChunkRecord]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(chunks)
                .where(chunks.c.document_id == document_id)
                .order_by(chunks.c.ordinal)
            ).all()
        return [
            ChunkRecord(
                id=r.id,
                ordinal=r.ordinal,
                text=r.text,
                text_hash=r.text_hash,
                token_count=r.token_count,
                page=r.page,
                heading=r.heading,
            )
            for r in rows
        ]

    # --- vectors (content-addressed embedding cache) ---------------------------

    def cached_vectors(self, model: str, text_hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(text_hashes))
        found: dict[str, bytes] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                rows = conn.execute(
                    sa.select(vectors.c.text_hash, vectors.c.embedding).where(
                        vectors.c.model == model, vectors.c.text_hash.in_(batch)
                    )
                )
                found.update({r.text_hash: r.embedding for r in rows})
        return found

    def put_vectors(self, model: str, dim: int, by_hash: Mapping[str, bytes]) -> None:
        if not by_hash:
            return
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                self._insert(vectors).on_conflict_do_nothing(index_elements=["model", "text_hash"]),
                [
                    {"model": model, "text_hash": h, "dim": dim, "embedding": b, "created_at": now}
                    for h, b in by_hash.items()
                ],
            )

    # --- maintenance -------------------------------------------------------------

    def remove_orphans(self, *, vectors_older_than: datetime) -> dict[str, int]:
        """Delete rows nothing points at. Vectors get a grace period: a running job
        caches its embeddings before it commits the chunks that use them."""
        with self.write() as conn:
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
            documents.c.status == "ready",
            documents.c.chunk_count > 0,
            ~sa.exists().where(chunks.c.document_id == documents.c.id),
        )
        no_vector = sa.select(chunks.c.id).where(
            ~sa.exists().where(vectors.c.model == model, vectors.c.text_hash == chunks.c.text_hash)
        )
        with self._read() as conn:
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
        with self._read() as conn:
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

    def duplicate_chunk_count(self) -> int:
        """Chunks sharing an id or a (document, ordinal): zero by construction."""
        with self._read() as conn:
            dup_ids = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM (SELECT id FROM chunks GROUP BY id HAVING COUNT(*) > 1)"
                )
            ).scalar_one()
            dup_pos = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM (SELECT document_id, ordinal FROM chunks "
                    "GROUP BY document_id, ordinal HAVING COUNT(*) > 1)"
                )
            ).scalar_one()
        return int(dup_ids) + int(dup_pos)

    # --- search ----------------------------------------------------------------

    def _filtered(
        self, stmt: sa.Select[Any], collection: str | None, filters: MetadataFilter | None
    ) -> sa.Select[Any]:
        if collection is not None:
            stmt = stmt.where(collections.c.name == collection)
        for key, value in (filters or {}).items():
            stmt = stmt.where(_metadata_equals(key, value, self.dialect))
        return stmt

    def vector_search(
        self,
        model: str,
        query_vector: bytes,
        k: int,
        *,
        collection: str | None = None,
        filters: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k chunks by cosine similarity: [(chunk pk, similarity)], exact.

        sqlite-vec's exact scan costs ~70 ms at 100k chunks. On a SQLite file an
        in-process copy of the vectors (store/vector_cache.py, reloaded whenever
        any connection commits) first picks the few chunks that can be in the top
        k; sqlite-vec then scores only those, so the answer is the scan's."""
        if self.dialect == "postgresql":
            with self._read() as conn:
                return pg_search.vector_ranking(
                    conn,
                    lambda stmt: self._filtered(stmt, collection, filters),
                    model,
                    query_vector,
                    k,
                    has_filters=collection is not None or bool(filters),
                    ef_search=max(40, k * pg_search.ANN_OVERFETCH),
                )
        candidates: list[int] | None = None
        allowed: set[str] | None = None
        cache = vector_cache.cache_for(self.engine)
        if cache is not None and k > 0 and len(query_vector) % 4 == 0:

            def load(version: int) -> vector_cache.VectorSnapshot | None:
                with self._read() as conn:
                    return vector_cache.load_snapshot(conn, model, version)

            snapshot = cache.snapshot(model, load)
            if snapshot is not None:
                if collection is not None or filters:
                    doc_ids = self._filtered(
                        sa.select(documents.c.id).join(
                            collections, collections.c.id == documents.c.collection_id
                        ),
                        collection,
                        filters,
                    )
                    with self._read() as conn:
                        allowed = set(conn.execute(doc_ids).scalars())
                query = np.frombuffer(query_vector, dtype="<f4")
                candidates = snapshot.candidates(query, k, allowed)
        distance = sa.func.vec_distance_cosine(vectors.c.embedding, query_vector)
        if candidates is not None:
            if not candidates:
                return []
            # sqlite-vec scores the candidates, found by key in each table: joined
            # in one statement, SQLite (no ANALYZE statistics) walks every vector of
            # the model, or every document of the collection, instead. Candidates
            # come from chunks with a document in a collection, in `allowed` if set.
            chosen = sa.select(chunks.c.pk, chunks.c.text_hash, chunks.c.document_id).where(
                chunks.c.pk.in_(candidates)
            )
            with self._read() as conn:
                hash_of = {
                    int(r.pk): str(r.text_hash)
                    for r in conn.execute(chosen)
                    if allowed is None or r.document_id in allowed
                }
                distances = {
                    str(r.text_hash): float(r.distance)
                    for r in conn.execute(
                        sa.select(vectors.c.text_hash, distance.label("distance")).where(
                            vectors.c.model == model,
                            vectors.c.text_hash.in_(set(hash_of.values())),
                        )
                    )
                }
            scored = sorted((distances[h], pk) for pk, h in hash_of.items() if h in distances)
            return [(pk, 1.0 - d) for d, pk in scored[:k]]
        stmt = (
            sa.select(chunks.c.pk, distance.label("distance"))
            .join(documents, documents.c.id == chunks.c.document_id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .join(
                vectors,
                sa.and_(vectors.c.model == model, vectors.c.text_hash == chunks.c.text_hash),
            )
            .order_by(distance)
            .limit(k)
        )
        stmt = self._filtered(stmt, collection, filters)
        with self._read() as conn:
            return [(int(r.pk), 1.0 - float(r.distance)) for r in conn.execute(stmt)]

    def keyword_search(
        self,
        query: str,
        k: int,
        *,
        collection: str | None = None,
        filters: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k chunks by BM25: [(chunk pk, score, higher is better)].

        Unfiltered, the query reads the FTS5 table alone and sorts by an explicit
        bm25(): SQLite then keeps just the best k while FTS5 scores the matches,
        where `ORDER BY rank` -- or any join -- sorts every match first (at 100k
        chunks an OR query matches ~40%: 25 ms instead of 45-70 ms). The k rows
        are checked against the chunks they index; should one be an orphan, the
        joined query decides, as it does for filtered searches."""
        if self.dialect == "postgresql":
            with self._read() as conn:
                return pg_search.keyword_ranking(
                    conn,
                    lambda stmt: self._filtered(stmt, collection, filters),
                    query,
                    k,
                    rank_limit=max(self.keyword_rank_limit, k),
                    stats=self._lexeme_stats,
                )
        match_expression = fts5_match_expression(query)
        if not match_expression:
            return []
        with self._read() as conn:
            if self.dialect == "sqlite" and collection is None and not filters and k > 0:
                # bm25() is FTS5's rank: smaller is better.
                ranked = conn.exec_driver_sql(
                    f"SELECT rowid, bm25({CHUNK_FTS}) AS score FROM {CHUNK_FTS} "
                    f"WHERE {CHUNK_FTS} MATCH ? ORDER BY score, rowid LIMIT ?",
                    (match_expression, k),
                ).all()
                pks = [int(r.rowid) for r in ranked]
                indexed = conn.execute(
                    sa.select(chunks.c.pk)
                    .join(documents, documents.c.id == chunks.c.document_id)
                    .join(collections, collections.c.id == documents.c.collection_id)
                    .where(chunks.c.pk.in_(pks))
                ).scalars()
                if len(set(indexed)) == len(pks):
                    return [(pk, -float(r.score)) for pk, r in zip(pks, ranked, strict=True)]
            fts = sa.table(CHUNK_FTS, sa.column("rowid"), sa.column("rank"))
            stmt = (
                sa.select(chunks.c.pk, fts.c.rank)
                .select_from(fts)
                .join(chunks, chunks.c.pk == fts.c.rowid)
                .join(documents, documents.c.id == chunks.c.document_id)
                .join(collections, collections.c.id == documents.c.collection_id)
                .where(sa.text(f"{CHUNK_FTS} MATCH :q").bindparams(q=match_expression))
                .order_by(fts.c.rank)
                .limit(k)
            )
            stmt = self._filtered(stmt, collection, filters)
            # FTS5 rank is bm25() negated: smaller is better.
            return [(int(r.pk), -float(r.rank)) for r in conn.execute(stmt)]

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
                documents.c.source_uri,
                documents.c.meta,
                collections.c.name.label("collection_name"),
            )
            .join(documents, documents.c.id == chunks.c.document_id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .where(chunks.c.pk.in_(list(pks)))
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return {
            r.pk: ChunkHit(
                pk=r.pk,
                chunk_id=r.id,
                document_id=r.document_id,
                source_uri=r.source_uri,
                collection=r.collection_name,
                ordinal=r.ordinal,
                text=r.text,
                page=r.page,
                heading=r.heading,
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
