"""Ingesting one file: read, skip if unchanged, parse, chunk, embed what is new.

A document is (collection, source URI). Its content hash and the pipeline
fingerprint decide skip vs re-process; only chunks whose text hash has no
cached vector for this model are embedded. `prepare` computes and returns a
value, `Prepared`; the caller writes it in its own unit of work (handlers.py),
so the document and its job commit together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingest.embedding import to_blob
from ingest.errors import (
    ContentMismatch,
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    UnsupportedFormat,
)
from ingest.ingestion.results import FileResult, Outcome
from ingest.jobs.progress import Progress, ProgressCallback, ignore_progress
from ingest.pipeline.chunking import Chunk, ChunkProgress
from ingest.pipeline.containers import Expansion, is_container
from ingest.pipeline.filenames import recorded_metadata
from ingest.pipeline.parse_progress import ParseProgress, ParseProgressCallback
from ingest.pipeline.pipeline import Pipeline
from ingest.pipeline.segments import Segment
from ingest.store import ChunkRecord, DocumentRecord, Store, Transaction, document_id_for
from ingest.vocabulary import DocumentStatus


class ParseFunction(Protocol):
    """Pipeline.parse, or IsolatedParser.parse: the same callback either way."""

    def __call__(
        self, data: bytes, filename: str, on_progress: ParseProgressCallback | None = None
    ) -> list[Segment]: ...


ExpandFunction = Callable[[bytes, str, Path], Expansion]

# Rejections that only a change of the file (or of the pipeline) can undo. A parse
# timeout or memory limit depends on settings outside the pipeline fingerprint, so
# such a rejection is recorded without a fingerprint and tried again next time.
PERMANENT_REJECTIONS = (UnsupportedFormat, ContentMismatch, EmptyDocument, CorruptDocument)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class NewVectors:
    """Embeddings not cached yet: they commit with the document that uses them."""

    model: str
    dim: int
    by_hash: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A document's new chunks, ready to replace its old ones (with the vectors of
    its last embedding batch, cached in the same transaction)."""

    collection: str
    source_uri: str
    content_hash: str
    fingerprint: str
    size_bytes: int
    metadata: Mapping[str, Any]
    chunk_rows: Sequence[ChunkRecord]
    parent_id: str | None = None
    vectors: NewVectors | None = None

    def write(self, tx: Transaction) -> None:
        if self.vectors is not None:
            tx.documents.put_vectors(self.vectors.model, self.vectors.dim, self.vectors.by_hash)
        tx.documents.replace(
            collection=self.collection,
            source_uri=self.source_uri,
            content_hash=self.content_hash,
            fingerprint=self.fingerprint,
            size_bytes=self.size_bytes,
            metadata=self.metadata,
            chunk_rows=self.chunk_rows,
            parent_id=self.parent_id,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Bad input: the document is marked failed, its old chunks stay searchable."""

    collection: str
    source_uri: str
    metadata: Mapping[str, Any]
    reason: str
    content_hash: str | None = None
    size_bytes: int | None = None
    fingerprint: str | None = None
    parent_id: str | None = None

    def write(self, tx: Transaction) -> None:
        tx.documents.record_failed(
            collection=self.collection,
            source_uri=self.source_uri,
            error=self.reason,
            content_hash=self.content_hash,
            fingerprint=self.fingerprint,
            size_bytes=self.size_bytes,
            metadata=self.metadata,
            parent_id=self.parent_id,
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ingesting one file came to: the result to report, what to write
    (nothing for a skip), and for a container its members, spilled, to ingest as
    child documents (ingestion/containers.py)."""

    result: FileResult
    change: NewVersion | Rejection | None = None
    expansion: Expansion | None = None

    def write(self, tx: Transaction) -> None:
        if self.change is not None:
            self.change.write(tx)


class Ingestor:
    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        *,
        embed_batch_size: int = 8,
        parse: ParseFunction | None = None,
        expand: ExpandFunction | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.embed_batch_size = embed_batch_size
        # Parsing in an isolated child process (pipeline/isolation.py) when given.
        self.parse = parse or pipeline.parse
        self.expand = expand or pipeline.expand

    def prepare(
        self,
        path: Path,
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        source_uri: str | None = None,
        filename: str | None = None,
        on_progress: ProgressCallback = ignore_progress,
        parent_id: str | None = None,
        spill_dir: Path | None = None,
    ) -> Prepared:
        """Bring one document up to date, up to the write: what changed, computed.

        `spill_dir`: a container's members are expanded there (not for a child
        document: the top container expands its nested ones)."""
        source = source_uri or str(path.resolve())
        name = filename or path.name
        meta = recorded_metadata(metadata, name)  # ours: a user cannot replace it
        doc_id = document_id_for(collection, source)
        previous = self.store.get_document(doc_id)
        try:
            data = self._read(path)
        except DocumentRejected as exc:
            return _rejected(Rejection(collection, source, meta, str(exc), parent_id=parent_id))
        digest = content_hash(data)
        fingerprint = self.pipeline.fingerprint_for(name)
        rejection = Rejection(
            collection, source, meta, "", digest, len(data), fingerprint, parent_id
        )
        # The document is queued (for this job): its error, set by a failure and
        # cleared by a success, says how the last version processed ended.
        if previous is not None and self._same_input(previous, digest, fingerprint):
            if (
                previous.error is None
                and previous.metadata == meta
                and self._members_done(name, doc_id)
            ):
                return Prepared(FileResult(source, "skipped", doc_id))
            if previous.error is not None:
                # Rejected before with these very bytes and this pipeline: it would be
                # again. (Other failures forget the input: see store/documents.py.)
                return _rejected(_with_reason(rejection, previous.error or "rejected"))
        existed = previous is not None and previous.content_hash is not None
        expansion = None
        try:
            version = self._process(data, name, rejection, on_progress)
            if spill_dir is not None and is_container(name):
                on_progress(Progress("parse", 0, 1, f"expanding {name}"))
                expansion = self.expand(data, name, spill_dir)
        except DocumentRejected as exc:
            return _rejected(_with_reason(rejection, str(exc), permanent=_is_permanent(exc)))
        outcome: Outcome = "updated" if existed else "added"
        embedded = version[1]
        result = FileResult(
            source, outcome, doc_id, chunks=len(version[0].chunk_rows), embedded=embedded
        )
        return Prepared(result, version[0], expansion)

    def reject_member(
        self,
        *,
        collection: str,
        source_uri: str,
        metadata: Mapping[str, Any],
        reason: str,
        parent_id: str,
    ) -> Prepared:
        """A container's member that could not be extracted: its document fails so."""
        return _rejected(Rejection(collection, source_uri, metadata, reason, parent_id=parent_id))

    def _members_done(self, filename: str, doc_id: str) -> bool:
        """A container is a no-op again only if none of its members failed for a
        reason other than its bytes (a parse timeout): those are tried again."""
        return not is_container(filename) or not self.store.has_members_to_retry(doc_id)

    def _same_input(self, previous: DocumentRecord, digest: str, fingerprint: str) -> bool:
        return previous.content_hash == digest and previous.fingerprint == fingerprint

    def unchanged_record(
        self,
        path: Path,
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        known: Mapping[str, DocumentRecord] | None = None,
    ) -> DocumentRecord | None:
        """The document's record when ingesting `path` again would change nothing:
        same bytes, same pipeline, same metadata. Its status says which: `ready`
        (a skip) or `failed` (a known failure: rejected before for a reason only a
        change of the file can undo). Lets callers avoid queueing no-op jobs. `known`:
        the collection's documents by source URI, read once for many files."""
        previous = self._settled(collection, str(path.resolve()), known)
        if previous is None:
            return None
        try:
            data = self._read(path)
        except DocumentRejected:
            return None
        return self._if_unchanged(previous, data, path.name, metadata)

    def unchanged_bytes(
        self,
        data: bytes,
        *,
        source_uri: str,
        filename: str,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        known: Mapping[str, DocumentRecord] | None = None,
    ) -> DocumentRecord | None:
        """`unchanged_record` for bytes read elsewhere (an S3 object)."""
        previous = self._settled(collection, source_uri, known)
        if previous is None:
            return None
        return self._if_unchanged(previous, data, filename, metadata)

    def unchanged_digest(
        self,
        digest: str,
        *,
        source_uri: str,
        filename: str,
        collection: str,
        known: Mapping[str, DocumentRecord] | None = None,
    ) -> DocumentRecord | None:
        """`unchanged_bytes` for bytes known only by their content hash (an S3 object
        listed as when it was last read): no metadata but the filename."""
        previous = self._settled(collection, source_uri, known)
        if previous is None:
            return None
        return self._if_same_digest(previous, digest, filename, None)

    def _settled(
        self, collection: str, source_uri: str, known: Mapping[str, DocumentRecord] | None
    ) -> DocumentRecord | None:
        if known is not None:
            previous = known.get(source_uri)
        else:
            previous = self.store.get_document(document_id_for(collection, source_uri))
        if previous is None or previous.status == DocumentStatus.QUEUED:
            return None
        return previous

    def _if_unchanged(
        self,
        previous: DocumentRecord,
        data: bytes,
        filename: str,
        metadata: Mapping[str, Any] | None,
    ) -> DocumentRecord | None:
        return self._if_same_digest(previous, content_hash(data), filename, metadata)

    def _if_same_digest(
        self,
        previous: DocumentRecord,
        digest: str,
        filename: str,
        metadata: Mapping[str, Any] | None,
    ) -> DocumentRecord | None:
        meta = recorded_metadata(metadata, filename)
        fingerprint = self.pipeline.fingerprint_for(filename)
        if (
            self._same_input(previous, digest, fingerprint)
            and previous.metadata == meta
            and (previous.error is not None or self._members_done(filename, previous.id))
        ):
            return previous
        return None

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
        self, data: bytes, filename: str, target: Rejection, on_progress: ProgressCallback
    ) -> tuple[NewVersion, int]:
        """Parse, chunk and embed: the new version and how many chunks were embedded."""
        on_progress(Progress("parse", 0, 1, f"parsing {filename}"))
        self.pipeline.check_size(len(data))
        segments = self.parse(data, filename, _ocr_progress(on_progress))
        on_progress(Progress("parse", 1, 1, f"parsed {len(segments)} segments"))
        chunks = self.pipeline.chunk(segments, _chunk_progress(on_progress))
        chars = sum(len(segment.text) for segment in segments)
        on_progress(Progress("chunk", chars, chars, f"{len(chunks)} chunks"))
        embedded, last_batch = self._embed_missing(chunks, on_progress)
        doc_id = document_id_for(target.collection, target.source_uri)
        assert target.content_hash is not None
        assert target.fingerprint is not None
        version = NewVersion(
            collection=target.collection,
            source_uri=target.source_uri,
            content_hash=target.content_hash,
            fingerprint=target.fingerprint,
            size_bytes=len(data),
            metadata=target.metadata,
            chunk_rows=[_chunk_record(doc_id, c) for c in chunks],
            parent_id=target.parent_id,
            vectors=last_batch,
        )
        return version, embedded

    def _embed_missing(
        self, chunks: Sequence[Chunk], on_progress: ProgressCallback
    ) -> tuple[int, NewVectors | None]:
        """Embed chunk texts with no cached vector for this model, batch by batch:
        how many, and the last batch's vectors, which commit with the document.

        Every earlier batch is committed as it completes: the cache is
        content-addressed, so a retry after a crash resumes instead of starting
        over. The last batch (a small document's only one) rides in the document's
        own transaction instead of one of its own: a crash before it loses one batch."""
        model = self.pipeline.embedder.model_id
        by_hash = {c.text_hash: c.text for c in chunks}
        cached = self.store.cached_vectors(model, by_hash)
        missing = [(h, t) for h, t in by_hash.items() if h not in cached]
        total = len(missing)
        on_progress(Progress("embed", 0, total, f"embedding {total} new chunks"))
        last_batch = None
        for start in range(0, total, self.embed_batch_size):
            if last_batch is not None:
                self.store.put_vectors(last_batch.model, last_batch.dim, last_batch.by_hash)
            batch = missing[start : start + self.embed_batch_size]
            vectors = self.pipeline.embed([text for _, text in batch])
            last_batch = NewVectors(
                model,
                int(vectors.shape[1]),
                {h: to_blob(v) for (h, _), v in zip(batch, vectors, strict=True)},
            )
            done = start + len(batch)
            on_progress(Progress("embed", done, total, f"embedded {done}/{total} chunks"))
        return total, last_batch


def _ocr_progress(on_progress: ProgressCallback) -> ParseProgressCallback:
    """OCR inside the parse reports each page (image, picture, slide) it starts: the
    job's stage is `ocr`, its message "OCR page 3 of 10"."""

    def report(p: ParseProgress) -> None:
        if p.done < p.total:
            message = f"OCR {p.unit} {p.done + 1} of {p.total}"
        else:
            message = f"OCR done ({p.unit} {p.total} of {p.total})"
        on_progress(Progress("ocr", p.done, p.total, message))

    return report


def _chunk_progress(on_progress: ProgressCallback) -> ChunkProgress:
    """Chunking reports after each window: a checkpoint (cancel, soft time limit)."""

    def report(done: int, total: int) -> None:
        on_progress(Progress("chunk", done, total, f"chunked {done:,} of {total:,} characters"))

    return report


def _is_permanent(exc: DocumentRejected) -> bool:
    return isinstance(exc, PERMANENT_REJECTIONS)


def _with_reason(rejection: Rejection, reason: str, *, permanent: bool = True) -> Rejection:
    return Rejection(
        rejection.collection,
        rejection.source_uri,
        rejection.metadata,
        reason,
        rejection.content_hash,
        rejection.size_bytes,
        rejection.fingerprint if permanent else None,
        rejection.parent_id,
    )


def _rejected(rejection: Rejection) -> Prepared:
    doc_id = document_id_for(rejection.collection, rejection.source_uri)
    result = FileResult(rejection.source_uri, "failed", doc_id, reason=rejection.reason)
    return Prepared(result, rejection)


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
        ocr=chunk.ocr,
    )
