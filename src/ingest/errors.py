"""The exception tree: one root, one subtree per layer, all in this module.

Every error a user can see derives from IngestError and carries a message that
says what went wrong in terms of their input, not our internals. The API maps
them to problem+json in one place (api/problems.py); the CLI to exit code 2.
"""


class IngestError(Exception):
    """Root of every error raised on purpose by ingest."""


class ConfigError(IngestError):
    """A setting is missing, contradictory or points at something unusable."""


class NotFound(IngestError):
    """The requested record (job, document, key) does not exist."""


# --- pipeline ---------------------------------------------------------------


class PipelineError(IngestError):
    """A document could not be turned into chunks or vectors."""


class DocumentRejected(PipelineError):
    """Bad input: retrying will not help (the job fails at once)."""


class UnsupportedFormat(DocumentRejected):
    """No parser handles this kind of file."""


class ContentMismatch(DocumentRejected):
    """The bytes plainly are not the type the file's name claims."""


class FileTooLarge(DocumentRejected):
    """The file exceeds INGEST_MAX_FILE_BYTES."""


class EmptyDocument(DocumentRejected):
    """The file holds no text we could extract."""


class CorruptDocument(DocumentRejected):
    """The file claims a format but its bytes do not parse as that format."""


class ContainerTooLarge(DocumentRejected):
    """An archive or message expands past INGEST_CONTAINER_MAX_FILES or
    INGEST_CONTAINER_MAX_EXPANDED_MB (a zip bomb): the container fails."""


class ParseTimeout(DocumentRejected):
    """The parser ran past INGEST_PARSE_TIMEOUT_SECONDS and was killed."""


class ParseOutOfMemory(DocumentRejected):
    """The parser needed more than INGEST_PARSE_MEMORY_MB and was stopped."""


class StagedFileChanged(DocumentRejected):
    """A staged upload's bytes no longer match the size and SHA-256 recorded when it
    was accepted (or sit on storage this process is not configured for)."""


class EmbeddingError(PipelineError):
    """The embedder failed; usually transient (a busy HTTP endpoint)."""


class EmbedderLoading(PipelineError):
    """The embedding model is still loading: this process cannot embed yet."""


# --- store ------------------------------------------------------------------


class StoreError(IngestError):
    """The database could not be used as expected."""


class SchemaOutOfDate(StoreError):
    """The database schema is older than this code; run `ingest migrate`."""


class LeaseLost(StoreError):
    """This worker no longer owns the job's current attempt; nothing it writes may land."""


class StagingUnavailable(IngestError):
    """The staging storage (INGEST_STORAGE: the incoming folder or the S3 bucket)
    could not be written or read just now; worth retrying."""


# --- jobs -------------------------------------------------------------------


class JobInterrupted(IngestError):
    """Raised at a checkpoint to stop a running job cleanly."""


class JobCancelled(JobInterrupted):
    """The user cancelled the job."""


class JobTimedOut(JobInterrupted):
    """The job ran past its soft time limit."""


class JobLeaseLost(JobInterrupted):
    """Seen at a checkpoint: another attempt owns the job now."""


class WorkerStopping(JobInterrupted):
    """The worker is shutting down and hands this job back."""


class UnknownJobKind(JobInterrupted):
    """No handler is registered for the job's kind."""


class RunInterrupted(IngestError):
    """The user stopped a command that ran jobs in its own process (Ctrl-C): its
    running jobs were handed back to the queue, named in `handed_back`."""

    def __init__(self, handed_back: list[str]) -> None:
        super().__init__(f"interrupted; {len(handed_back)} running job(s) handed back")
        self.handed_back = handed_back


# --- query ------------------------------------------------------------------


class QueryError(IngestError):
    """A search request was invalid."""


# --- requests: what a caller asked for cannot be done as asked ----------------


class InvalidInput(IngestError):
    """A value the caller sent breaks a rule the schema cannot express (a NUL
    character, a non-finite number, metadata nested too deep...)."""

    def __init__(self, message: str, *, field: str = "", location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.location = location


class TooManyFiles(IngestError):
    """An upload names more files than INGEST_MAX_FILES_PER_UPLOAD."""


class PathNotAllowed(IngestError):
    """A client path that is not a plain relative path inside INGEST_INCOMING_DIR."""


class IncomingFileNotFound(NotFound):
    """A relative path inside INGEST_INCOMING_DIR names no readable file."""


class Conflict(IngestError):
    """The request conflicts with the current state of a record."""


class JobFinished(Conflict):
    """Cancelling a job that already reached a terminal state."""


class JobNotRetryable(Conflict):
    """Retrying a job that is neither failed, dead nor cancelled."""


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key already used for a request with a different body."""


class SourceExists(Conflict):
    """Adding a source for a location and collection that already have one."""


class SourceNotAllowed(IngestError):
    """A folder source the API may not add: outside INGEST_SOURCE_ROOTS."""


class SourceUnavailable(IngestError):
    """A synced source cannot be listed (folder missing, bucket unreachable): its
    sync fails with this reason and its documents stay as they are."""


class QueueFull(IngestError):
    """Backpressure: INGEST_MAX_QUEUED jobs are already waiting."""

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- client: what the HTTP API answered (transport errors of ingest.client) ---------


class ClientError(IngestError):
    """Raised by `ingest.client` only: talking to an `ingest serve` went wrong."""


class ServerUnreachable(ClientError):
    """No HTTP answer at all: connection refused, DNS, TLS or a network timeout."""


class WaitTimedOut(ClientError):
    """`Client.wait` ran past its timeout before every job reached a final status."""


class ApiError(ClientError):
    """The server answered with an RFC 9457 problem. `.type` is the stable slug URN
    (`urn:ingest:problem:not-found`), `.status` the HTTP status, `.problem` the whole
    body (validation errors list their fields under `errors`)."""

    def __init__(
        self,
        status: int,
        type_: str,
        title: str,
        detail: str | None = None,
        *,
        problem: dict[str, object] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))
        self.status = status
        self.type = type_
        self.title = title
        self.detail = detail
        self.problem = problem or {}
        self.retry_after = retry_after

    @property
    def slug(self) -> str:
        """The part of `type` after `urn:ingest:problem:`."""
        return self.type.rsplit(":", 1)[-1]


class BadRequestError(ApiError):
    """400 / 422: the request breaks the API's rules; `.problem["errors"]` names fields."""


class AuthError(ApiError):
    """401: no API key, or one the server does not know (or revoked)."""


class PermissionDenied(AuthError):
    """403: the key is valid but its role is below what the route needs."""


class NotFoundError(ApiError):
    """404: no such document, job or route."""


class ConflictError(ApiError):
    """409: the record's state forbids it (a finished job, a reused Idempotency-Key)."""


class PayloadRejected(ApiError):
    """413 / 415: a file too large, too many files, or a type ingest does not parse."""


class RateLimited(ApiError):
    """429 after the client's bounded retries; `.retry_after` in seconds."""


class ServiceUnavailable(ApiError):
    """503 after the client's bounded retries: queue full, embedder down."""


class ServerError(ApiError):
    """500 or any other status the API does not document: a bug on the server."""


# --- console: the operator pages of `ingest serve` ----------------------------------


class ConsoleRedirect(IngestError):
    """A console page asked for without a valid session: answered 303 to sign-in."""

    def __init__(self, location: str) -> None:
        super().__init__(f"sign in first: {location}")
        self.location = location


class ConsoleDenied(IngestError):
    """A console request without the role (403), without a session (401) or without the
    session's CSRF token (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
