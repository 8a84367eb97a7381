"""The exception tree: one root, one subtree per layer.

Every error a user can see derives from IngestError and carries a message that
says what went wrong in terms of their input, not our internals.
"""


class IngestError(Exception):
    """Root of every error raised on purpose by ingest."""


class ConfigError(IngestError):
    """A setting is missing, contradictory or points at something unusable."""


# --- pipeline ---------------------------------------------------------------


class PipelineError(IngestError):
    """A document could not be turned into chunks or vectors."""


class DocumentRejected(PipelineError):
    """Bad input: retrying will not help (the job fails at once)."""


class UnsupportedFormat(DocumentRejected):
    """No parser handles this kind of file."""


class FileTooLarge(DocumentRejected):
    """The file exceeds INGEST_MAX_FILE_BYTES."""


class EmptyDocument(DocumentRejected):
    """The file holds no text we could extract."""


class CorruptDocument(DocumentRejected):
    """The file claims a format but its bytes do not parse as that format."""


class EmbeddingError(PipelineError):
    """The embedder failed; usually transient (a busy HTTP endpoint)."""


# --- store ------------------------------------------------------------------


class StoreError(IngestError):
    """The database could not be used as expected."""


class SchemaOutOfDate(StoreError):
    """The database schema is older than this code; run `ingest migrate`."""


class NotFound(StoreError):
    """The requested record does not exist."""


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


class ContentMismatch(DocumentRejected):
    """The bytes plainly are not of the type the file name claims."""


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


class QueueFull(IngestError):
    """Backpressure: INGEST_MAX_QUEUED jobs are already waiting."""

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after
