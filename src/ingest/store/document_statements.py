"""The document writes' prebuilt statements: one set per dialect, built once.

Writing a small document runs about a dozen statements; building each of them and
computing its cache key cost SQLAlchemy more than SQLite spends running it (the
same reason as store/job_statements.py). A prebuilt statement keeps its cache key,
so SQLAlchemy finds its compiled form at once. Values are bound at execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.store.job_statements import param
from ingest.store.schema import CHUNK_FTS, chunks, collections, documents, jobs, vectors

# The columns an upsert of a document sets on a row that exists (not its identity
# and not when it was created).
_KEPT_ON_UPDATE = ("id", "created_at", "collection_id", "source_uri")

# SQLite's keyword index follows the chunks of one document (rowid = chunks.pk).
FTS_DELETE_OF_DOCUMENT = (
    f"DELETE FROM {CHUNK_FTS} WHERE rowid IN (SELECT pk FROM chunks WHERE document_id = ?)"
)
FTS_INSERT_OF_DOCUMENT = (
    f"INSERT INTO {CHUNK_FTS}(rowid, text) SELECT pk, text FROM chunks WHERE document_id = ?"
)


@dataclass(frozen=True, slots=True)
class DocumentStatements:
    collection_id: sa.Select[Any]
    insert_collection: Any
    # A new document's row; one that exists is left as it is.
    ensure_document: Any
    # Every column of a document's row given (DocumentWriter._upsert): insert it, or
    # update all but its identity and creation time.
    upsert_document: Any
    chunk_count_of: sa.Select[Any]
    insert_chunks: sa.Insert
    delete_chunks_of_document: sa.Delete
    # Cache a vector unless one is cached for (model, text hash) already.
    insert_vectors: Any
    cached_vectors: sa.Select[Any]
    latest_job: sa.Select[Any]
    # SET columns come from the execution's parameters; the row is `doc_id`'s.
    update_document: sa.Update


def _statements(dialect: str) -> DocumentStatements:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    upsert = insert(documents)
    upsert = upsert.on_conflict_do_update(
        index_elements=["id"],
        # Column objects as keys: the "metadata" column is keyed "meta" in Python.
        set_={c: upsert.excluded[c.key] for c in documents.c if c.key not in _KEPT_ON_UPDATE},
    )
    return DocumentStatements(
        collection_id=sa.select(collections.c.id).where(
            collections.c.name == param(collections.c.name)
        ),
        insert_collection=insert(collections).on_conflict_do_nothing(index_elements=["name"]),
        ensure_document=insert(documents).on_conflict_do_nothing(index_elements=["id"]),
        upsert_document=upsert,
        chunk_count_of=sa.select(documents.c.chunk_count).where(
            documents.c.id == param(documents.c.id, "doc_id")
        ),
        insert_chunks=chunks.insert(),
        delete_chunks_of_document=chunks.delete().where(
            chunks.c.document_id == param(chunks.c.document_id, "doc_id")
        ),
        insert_vectors=insert(vectors).on_conflict_do_nothing(
            index_elements=["model", "text_hash"]
        ),
        cached_vectors=sa.select(vectors.c.text_hash, vectors.c.embedding).where(
            vectors.c.model == param(vectors.c.model),
            vectors.c.text_hash.in_(sa.bindparam("hashes", expanding=True)),
        ),
        latest_job=sa.select(jobs.c.status, jobs.c.error_type, jobs.c.error_message)
        .where(
            jobs.c.document_id == param(jobs.c.document_id, "doc_id"),
            jobs.c.kind == param(jobs.c.kind),
        )
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(1),
        update_document=documents.update().where(documents.c.id == param(documents.c.id, "doc_id")),
    )


_BUILT: dict[str, DocumentStatements] = {}


def document_statements(dialect: str) -> DocumentStatements:
    if dialect not in _BUILT:
        _BUILT[dialect] = _statements(dialect)
    return _BUILT[dialect]
