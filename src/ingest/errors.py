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


class EmbedderLoading(PipelineError):
    """The embedding model is still loading: this process cannot embed yet."""


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
