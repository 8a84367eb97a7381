"""The objects every interface shows: the HTTP API, the CLI's `--json`, a Python client.

Pydantic only (no FastAPI, no database driver at import), so a client can import
them. Each response model has a converter from the record the store or the query
layer returns; the JSON field names and shapes are the API's contract.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

from ingest.errors import InvalidInput
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, DocumentStatus, JobStatus

if TYPE_CHECKING:
    from ingest.query.search import SearchHit
    from ingest.store import ChunkRecord, DocumentRecord, Job
    from ingest.store.access import ApiKey
    from ingest.store.sources import SourceRecord

# PostgreSQL text and jsonb cannot hold U+0000, so no string we store or query may.
NO_NUL = r"^[^\x00]*$"
# ...and a question needs something besides white space (U+001C-U+001F count as
# white space to Python's str.strip, not to every regex engine).
NOT_BLANK = r"^[^\x00]*[^\s\x00\x1c-\x1f][^\x00]*$"
# User metadata: the JSON text of one upload's `metadata`, and how deep it may nest.
MAX_METADATA_CHARS = 65_536
MAX_METADATA_DEPTH = 32
# Keys the pipeline writes into a document's metadata itself.
RESERVED_METADATA_KEYS = frozenset({"filename", "code_language"})

SearchMode = Literal["hybrid", "vector", "keyword"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
FilterKey = Annotated[str, Field(max_length=200, pattern=NO_NUL)]
# SQLite binds 64-bit integers, no wider.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
ScalarValue = Annotated[str, Field(pattern=NO_NUL)] | Int64 | FiniteFloat | bool


def iso(ts: float | None) -> str | None:
    """Epoch seconds as the ISO-8601 text every interface shows."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


# --- jobs --------------------------------------------------------------------------


class StageOut(BaseModel):
    """One stage of a job's run (parse, chunk, embed...), as epoch seconds."""

    model_config = ConfigDict(extra="allow")

    stage: str
    started_at: float
    ended_at: float
    current: int
    total: int


class JobError(TypedDict):
    """Why a job failed. A TypedDict, not a model: `traceback` is absent (not null)
    unless the caller may see it (admins, `ingest jobs show`)."""

    type: str | None
    message: str | None
    traceback: NotRequired[str | None]


class JobOut(BaseModel):
    """The one job object: `GET /api/v1/jobs/{id}`, job events, `ingest jobs ... --json`."""

    job_id: str
    kind: str
    queue: str
    priority: int
    status: JobStatus
    progress: float = Field(description="0.0 to 1.0")
    current: int
    total: int
    stage: str | None
    message: str | None
    attempt: int
    max_attempts: int
    cancel_requested: bool
    document_id: str | None
    idempotency_key: str | None
    result: dict[str, Any] | None
    error: JobError | None
    stages: list[StageOut]
    created_at: str = Field(description="ISO-8601")
    started_at: str | None
    finished_at: str | None
    updated_at: str
    not_before: str | None

    @classmethod
    def from_job(cls, job: Job, *, include_traceback: bool = False) -> JobOut:
        error: JobError | None = None
        if job.error_type or job.error_message:
            error = JobError(type=job.error_type, message=job.error_message)
            if include_traceback:
                error["traceback"] = job.error_traceback
        return cls(
            job_id=job.id,
            kind=job.kind,
            queue=job.queue,
            priority=job.priority,
            status=job.status,
            progress=job.progress,
            current=job.progress_current,
            total=job.progress_total,
            stage=job.stage,
            message=job.progress_message,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            cancel_requested=job.cancel_requested,
            document_id=job.document_id,
            idempotency_key=job.idempotency_key,
            result=job.result,
            error=error,
            stages=[StageOut.model_validate(s) for s in job.stages],
            created_at=iso(job.created_at) or "",
            started_at=iso(job.started_at),
            finished_at=iso(job.finished_at),
            updated_at=iso(job.updated_at) or "",
            not_before=iso(job.not_before),
        )


class JobPage(BaseModel):
    jobs: list[JobOut]
    limit: int
    offset: int


class JobAccepted(BaseModel):
    """`POST /api/v1/jobs/ingest`: the first job's id and status, and every job."""

    job_id: str
    status: JobStatus
    jobs: list[JobOut]


class IngestRequest(BaseModel):
    document_paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=1000, description="Paths relative to INGEST_INCOMING_DIR"
    )
    collection: Name = "default"
    metadata: dict[FilterKey, ScalarValue] = Field(
        default_factory=dict,
        description=(
            "Flat metadata for every document; the keys `filename` and `code_language` are reserved"
        ),
    )
    priority: int = Field(
        default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Higher runs first"
    )


# --- synced sources ----------------------------------------------------------------

Glob = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]


class SourceIn(BaseModel):
    """`POST /api/v1/sources`, `ingest sources add`."""

    location: Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL)] = Field(
        description="A folder path (as the workers see it) or s3://bucket/prefix"
    )
    collection: Name = "default"
    every: Annotated[str, Field(max_length=32, pattern=r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$")] = Field(
        default="1h", description="Sync period: a number with s, m, h or d (15m); at least 10 s"
    )
    include: list[Glob] = Field(default_factory=list, max_length=100)
    exclude: list[Glob] = Field(default_factory=list, max_length=100)


class SyncOut(BaseModel):
    """How a source's last sync ended; `report` holds listed / submitted / unchanged
    / deleted / failed (and the first errors) when it succeeded."""

    job_id: str | None
    status: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    report: dict[str, Any] | None


class SourceOut(BaseModel):
    source_id: str
    location: str
    collection: str
    interval_seconds: float
    include: list[str]
    exclude: list[str]
    created_at: str
    last_sync: SyncOut | None

    @classmethod
    def from_record(cls, source: SourceRecord) -> SourceOut:
        last = None
        if source.last_sync_job_id is not None:
            last = SyncOut(
                job_id=source.last_sync_job_id,
                status=source.last_sync_status,
                started_at=iso(source.last_sync_started_at),
                finished_at=iso(source.last_sync_finished_at),
                error=source.last_sync_error,
                report=source.last_sync_report,
            )
        return cls(
            source_id=source.id,
            location=source.location,
            collection=source.collection,
            interval_seconds=source.interval_seconds,
            include=source.include,
            exclude=source.exclude,
            created_at=iso(source.created_at) or "",
            last_sync=last,
        )


class SourcePage(BaseModel):
    sources: list[SourceOut]


class SourceAdded(BaseModel):
    """A new source and its first sync job (queued)."""

    source: SourceOut
    job: JobOut


# --- documents ---------------------------------------------------------------------


class QueuedUpload(BaseModel):
    job_id: str
    document_id: str
    filename: str
    status: JobStatus


class UploadAccepted(BaseModel):
    jobs: list[QueuedUpload]


class DocumentOut(BaseModel):
    document_id: str
    collection: str
    source: str
    status: DocumentStatus
    error: str | None
    content_hash: str | None
    size_bytes: int | None
    chunk_count: int
    metadata: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    last_job: JobOut | None = None
    # The container (a .zip, an e-mail) this document is a member of; None: top level.
    parent_id: str | None = None

    @classmethod
    def from_record(cls, doc: DocumentRecord, last_job: Job | None = None) -> DocumentOut:
        return cls(
            document_id=doc.id,
            collection=doc.collection,
            source=doc.source_uri,
            status=doc.status,
            error=doc.error,
            content_hash=doc.content_hash,
            size_bytes=doc.size_bytes,
            chunk_count=doc.chunk_count,
            metadata=doc.metadata,
            created_at=iso(doc.created_at),
            updated_at=iso(doc.updated_at),
            last_job=JobOut.from_job(last_job) if last_job else None,
            parent_id=doc.parent_id,
        )


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    total: int
    limit: int
    offset: int


class ChunkOut(BaseModel):
    chunk_id: str
    ordinal: int
    text: str
    token_count: int
    page: int | None
    heading: str | None
    # Some of the text was read by OCR (a scanned page, an image, a picture).
    ocr: bool = False

    @classmethod
    def from_record(cls, chunk: ChunkRecord) -> ChunkOut:
        return cls(
            chunk_id=chunk.id,
            ordinal=chunk.ordinal,
            text=chunk.text,
            token_count=chunk.token_count,
            page=chunk.page,
            heading=chunk.heading,
            ocr=chunk.ocr,
        )


class ChunkPage(BaseModel):
    document_id: str
    chunks: list[ChunkOut]


# --- search ------------------------------------------------------------------------


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, pattern=NOT_BLANK)
    k: int = Field(default=10, ge=1, le=100)
    collection: Annotated[str, Field(max_length=200, pattern=NO_NUL)] | None = None
    filters: dict[FilterKey, ScalarValue] | None = Field(default=None, max_length=20)
    mode: SearchMode = "hybrid"


class HitOut(BaseModel):
    """One search hit: `POST /api/v1/search` and `ingest search --json` alike."""

    document_id: str
    chunk_id: str
    source: str
    collection: str
    text: str
    ordinal: int
    page: int | None
    heading: str | None
    score: float
    metadata: dict[str, Any]
    # Some of the text was read by OCR (a scanned page, an image, a picture).
    ocr: bool = False

    @classmethod
    def from_hit(cls, hit: SearchHit) -> HitOut:
        return cls(
            document_id=hit.document_id,
            chunk_id=hit.chunk_id,
            source=hit.source,
            collection=hit.collection,
            text=hit.text,
            ordinal=hit.ordinal,
            page=hit.page,
            heading=hit.heading,
            score=hit.score,
            metadata=hit.metadata,
            ocr=hit.ocr,
        )


class SearchResponse(BaseModel):
    results: list[HitOut]


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=8000, pattern=NOT_BLANK)
    session_id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$"
    )
    collection: Annotated[str, Field(max_length=200, pattern=NO_NUL)] | None = None
    k: int | None = Field(default=None, ge=1, le=50)


# --- operations --------------------------------------------------------------------


class AuditEntry(BaseModel):
    id: int
    ts: str | None = Field(description="ISO-8601")
    actor: str | None
    source_ip: str | None
    action: str
    target: str | None
    outcome: str
    status_code: int
    request_id: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return cls.model_validate({**row, "ts": iso(row["ts"])})


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    limit: int
    offset: int


class ApiKeyOut(BaseModel):
    """An API key as `ingest keys list --json` shows it (never the secret)."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: str | None
    revoked_at: str | None

    @classmethod
    def from_key(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            role=key.role,
            prefix=key.prefix,
            created_at=iso(key.created_at),
            revoked_at=iso(key.revoked_at),
        )


class CheckOut(TypedDict):
    """One readiness check; `detail` is absent when there is nothing to say."""

    status: Literal["ok", "error", "disabled"]
    detail: NotRequired[str]


class HealthOut(BaseModel):
    """`GET /health/live`."""

    status: Literal["ok", "error"]


class ReadinessOut(HealthOut):
    """`GET /health/ready`: 200 when every enabled check is ok, else 503."""

    checks: dict[str, CheckOut]


# --- errors ------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field; empty for the body as a whole")
    location: str = Field(description="body, query, path, header or cookie")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; `type` is a stable `urn:ingest:problem:<slug>`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="The fields of a validation error"
    )


# --- user metadata -----------------------------------------------------------------


def parse_metadata(raw: str | None, *, field: str = "metadata") -> dict[str, Any]:
    """An upload's `metadata` form field: a JSON object, bounded in size and depth,
    that both SQLite and PostgreSQL (jsonb) can store and query."""
    if not raw:
        return {}
    if len(raw) > MAX_METADATA_CHARS:
        raise InvalidInput(f"longer than {MAX_METADATA_CHARS:,} characters", field=field)
    # Checked before parsing: json.loads recurses once per level.
    if _nesting_depth(raw) > MAX_METADATA_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_METADATA_DEPTH} levels", field=field)
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", field=field) from None
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", field=field)
    return check_metadata(value, field=field)


def check_metadata(value: dict[str, Any], *, field: str = "metadata") -> dict[str, Any]:
    """Metadata any backend can store and filter on: no NUL in keys or strings, only
    finite numbers, at most MAX_METADATA_DEPTH levels, no reserved key at the top."""
    reserved = RESERVED_METADATA_KEYS & value.keys()
    if reserved:
        raise InvalidInput(
            "reserved: ingest records it itself (the file name, a source file's language)",
            field=f"{field}.{min(reserved)}",
        )
    _check_json_value(value, field, depth=1)
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _nesting_depth(text: str) -> int:
    """The deepest [ / { nesting of a JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _check_json_value(value: Any, where: str, *, depth: int) -> None:
    """`depth` counts the objects and arrays that hold `value`, itself included."""
    if isinstance(value, dict | list) and depth > MAX_METADATA_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_METADATA_DEPTH} levels", field=where)
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("contains a NUL character", field=where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("numbers must be finite (no NaN or Infinity)", field=where)
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidInput("a key contains a NUL character", field=where)
            _check_json_value(item, f"{where}.{key}", depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}.{index}", depth=depth + 1)


# --- status ------------------------------------------------------------------------


class WorkerOut(BaseModel):
    """A worker process as its heartbeat row shows it."""

    id: str
    hostname: str | None
    pid: int | None
    queues: list[str]
    concurrency: int
    running: int
    started_at: float | None
    heartbeat_age_s: float
    live: bool


class StatusOut(BaseModel):
    """`GET /api/v1/status` and `ingest status --json`: documents, jobs, workers."""

    model_config = ConfigDict(extra="allow")

    mode: str
    documents: int
    by_status: dict[str, int]
    chunks: int
    vectors: int
    collections: int
    jobs: dict[str, dict[str, int]] = Field(description="queue -> status -> count")
    workers: list[WorkerOut]
    live_workers: int
    integrity: dict[str, Any] | None = Field(description="The latest integrity report")
