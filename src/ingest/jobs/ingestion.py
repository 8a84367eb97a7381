"""Ingesting files: read, skip if unchanged, parse, chunk, embed what is new, swap in.

A document is (collection, source URI). Its content hash and the pipeline
fingerprint decide skip vs re-process; only chunks whose text hash has no
cached vector for this model are embedded; the chunk swap is one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from ingest.errors import DocumentRejected, IngestError
from ingest.jobs.discovery import discover_files, is_under_roots
from ingest.pipeline.chunking import Chunk
from ingest.pipeline.embedders import to_blob
from ingest.pipeline.pipeline import Pipeline
from ingest.pipeline.segments import Segment
from ingest.store import ChunkRecord, DocumentRecord, Store
from ingest.store.store import document_id_for

Outcome = Literal["added", "updated", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    current: int
    total: int
    message: str = ""


ProgressCallback = Callable[[Progress], None]
ParseFunction = Callable[[bytes, str], list[Segment]]


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    outcome: Outcome
    document_id: str
    chunks: int = 0
    embedded: int = 0
    reason: str | None = None


@dataclass(slots=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    chunks: int = 0
    embedded: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def record(self, result: FileResult) -> None:
        setattr(self, result.outcome, getattr(self, result.outcome) + 1)
        self.chunks += result.chunks
        self.embedded += result.embedded
        if result.reason:
            self.errors.append({"source": result.source, "reason": result.reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": self.failed,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "errors": self.errors,
        }


CommitHook = Callable[[sa.Connection, FileResult], None]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ignore_progress(_: Progress) -> None:
    return None


class Ingestor:
    def __init__(self, store: Store, pipeline: Pipeline, *, embed_batch_size: int = 8) -> None:
        self.store = store
        self.pipeline = pipeline
        self.embed_batch_size = embed_batch_size

    # --- one document ----------------------------------------------------------

    def ingest_file(
        self,
        path: Path,
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        source_uri: str | None = None,
        filename: str | None = None,
        on_progress: ProgressCallback = _ignore_progress,
        parse: ParseFunction | None = None,
        hook: CommitHook | None = None,
    ) -> FileResult:
        """Bring one document up to date. `hook`, when given, runs inside the same
        transaction that records the outcome (the job ledger marks the job done
        there), so the document and its job can never disagree."""
        source = source_uri or str(path.resolve())
        name = filename or path.name
        meta = {"filename": name, **(metadata or {})}
        doc_id = document_id_for(collection, source)
        previous = self.store.get_document(doc_id)
        try:
            data = self._read(path)
        except DocumentRejected as exc:
            return self._fail(collection, source, meta, str(exc), None, None, None, hook)
        digest = content_hash(data)
        if (
            previous is not None
            and previous.content_hash == digest
            and previous.fingerprint == self.pipeline.fingerprint
        ):
            if self._is_current(previous, digest, meta):
                return self._skip(FileResult(source, "skipped", doc_id), hook)
            if previous.status == "failed":
                # Rejected before with these very bytes and this pipeline: it would be again.
                reason = previous.error or "rejected"
                fingerprint = self.pipeline.fingerprint
                return self._fail(
                    collection, source, meta, reason, digest, len(data), fingerprint, hook
                )
        try:
            return self._process(
                data,
                name,
                collection,
                source,
                meta,
                digest,
                existed=previous is not None and previous.content_hash is not None,
                on_progress=on_progress,
                parse=parse or self.pipeline.parse,
                hook=hook,
            )
        except DocumentRejected as exc:
            fingerprint = self.pipeline.fingerprint
            return self._fail(
                collection, source, meta, str(exc), digest, len(data), fingerprint, hook
            )

    def _is_current(self, previous: DocumentRecord, digest: str, meta: Mapping[str, Any]) -> bool:
        return (
            previous.status == "ready"
            and previous.content_hash == digest
            and previous.fingerprint == self.pipeline.fingerprint
            and previous.metadata == meta
        )

    def is_unchanged(
        self, path: Path, *, collection: str, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """True when ingesting `path` would be a skip: same bytes, same pipeline,
        same metadata as what is indexed. Lets callers avoid queueing no-op jobs."""
        previous = self.store.get_document(document_id_for(collection, str(path.resolve())))
        if previous is None or previous.status != "ready":
            return False
        try:
            digest = content_hash(self._read(path))
        except DocumentRejected:
            return False
        return self._is_current(previous, digest, {"filename": path.name, **(metadata or {})})

    def _skip(self, result: FileResult, hook: CommitHook | None) -> FileResult:
        if hook is not None:
            with self.store.write() as conn:
                hook(conn, result)
        return result

    def _read(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise DocumentRejected(f"cannot read file: {exc.strerror}") from exc
        self.pipeline.check_size(size)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DocumentRejected(f"cannot read file: {exc.strerror}") from exc

    def _process(
        self,
        data: bytes,
        filename: str,
        collection: str,
        source: str,
        meta: Mapping[str, Any],
        digest: str,
        *,
        existed: bool,
        on_progress: ProgressCallback,
        parse: ParseFunction,
        hook: CommitHook | None,
    ) -> FileResult:
        on_progress(Progress("parse", 0, 1, f"parsing {filename}"))
        self.pipeline.check_size(len(data))
        segments = parse(data, filename)
        on_progress(Progress("parse", 1, 1, f"parsed {len(segments)} segments"))
        chunks = self.pipeline.chunk(segments)
        on_progress(Progress("chunk", len(chunks), len(chunks), f"{len(chunks)} chunks"))
        embedded = self._embed_missing(chunks, on_progress)
        on_progress(Progress("write", 0, 1, f"writing {len(chunks)} chunks"))
        doc_id = document_id_for(collection, source)
        outcome: Outcome = "updated" if existed else "added"
        result = FileResult(source, outcome, doc_id, chunks=len(chunks), embedded=embedded)
        self.store.replace_document(
            collection=collection,
            source_uri=source,
            content_hash=digest,
            fingerprint=self.pipeline.fingerprint,
            size_bytes=len(data),
            metadata=meta,
            chunk_rows=[_chunk_record(doc_id, c) for c in chunks],
            also=(lambda conn: hook(conn, result)) if hook else None,
        )
        on_progress(Progress("write", 1, 1, "done"))
        return result

    def _embed_missing(self, chunks: Sequence[Chunk], on_progress: ProgressCallback) -> int:
        """Embed chunk texts with no cached vector for this model, batch by batch.

        Each batch is committed as it completes: the cache is content-addressed,
        so a retry after a crash resumes instead of starting over."""
        model = self.pipeline.embedder.model_id
        by_hash = {c.text_hash: c.text for c in chunks}
        cached = self.store.cached_vectors(model, by_hash)
        missing = [(h, t) for h, t in by_hash.items() if h not in cached]
        total = len(missing)
        on_progress(Progress("embed", 0, total, f"embedding {total} new chunks"))
        for start in range(0, total, self.embed_batch_size):
            batch = missing[start : start + self.embed_batch_size]
            vectors = self.pipeline.embed([text for _, text in batch])
            self.store.put_vectors(
                model,
                int(vectors.shape[1]),
                {h: to_blob(v) for (h, _), v in zip(batch, vectors, strict=True)},
            )
            done = start + len(batch)
            on_progress(Progress("embed", done, total, f"embedded {done}/{total} chunks"))
        return total

    def _fail(
        self,
        collection: str,
        source: str,
        meta: Mapping[str, Any],
        reason: str,
        digest: str | None,
        size: int | None,
        fingerprint: str | None,
        hook: CommitHook | None,
    ) -> FileResult:
        result = FileResult(source, "failed", document_id_for(collection, source), reason=reason)
        self.store.record_failed_document(
            collection=collection,
            source_uri=source,
            error=reason,
            content_hash=digest,
            fingerprint=fingerprint,
            size_bytes=size,
            metadata=meta,
            also=(lambda conn: hook(conn, result)) if hook else None,
        )
        return result

    # --- a whole `ingest add` run -------------------------------------------------

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        collection: str,
        sync: bool = False,
        metadata: Mapping[str, Any] | None = None,
        on_file_start: Callable[[Path, int, int], None] | None = None,
        on_file_done: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        files = discover_files(paths)
        report = IngestReport()
        for index, path in enumerate(files):
            if on_file_start:
                on_file_start(path, index, len(files))
            result = self._ingest_one_safely(path, collection, metadata)
            report.record(result)
            if on_file_done:
                on_file_done(result)
        if sync:
            report.deleted = self.delete_missing(paths, collection, {str(p) for p in files})
        return report

    def _ingest_one_safely(
        self, path: Path, collection: str, metadata: Mapping[str, Any] | None
    ) -> FileResult:
        try:
            return self.ingest_file(path, collection=collection, metadata=metadata)
        except IngestError as exc:
            # Transient trouble (embedder down, say) fails this file, not the run.
            reason = str(exc)
        except Exception as exc:  # a bug on one file must not sink the others
            reason = f"internal error ({type(exc).__name__}): {exc}"
        source = str(path.resolve())
        return FileResult(source, "failed", document_id_for(collection, source), reason=reason)

    def delete_missing(self, roots: Sequence[Path], collection: str, seen: set[str]) -> int:
        """`--sync`: drop the collection's documents under the given roots whose file is gone."""
        resolved = [r.resolve() for r in roots]
        gone = [
            d.id
            for d in self.store.documents_in(collection)
            if d.source_uri not in seen and is_under_roots(d.source_uri, resolved)
        ]
        return self.store.delete_documents(gone) if gone else 0


def _chunk_record(doc_id: str, chunk: Chunk) -> ChunkRecord:
    chunk_id = hashlib.sha256(f"{doc_id}:{chunk.ordinal}:{chunk.text_hash}".encode()).hexdigest()
    return ChunkRecord(
        id=chunk_id[:32],
        ordinal=chunk.ordinal,
        text=chunk.text,
        text_hash=chunk.text_hash,
        token_count=chunk.token_count,
        page=chunk.page,
        heading=chunk.heading,
    )
