"""The one Settings object. Built by `load_settings()`, never at import time.

Every field is documented in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INGEST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # Topology
    mode: Literal["inline", "queue"] = "inline"
    database_url: str = Field(
        default="sqlite:///./ingest.db",
        validation_alias=AliasChoices("DATABASE_URL", "INGEST_DATABASE_URL"),
    )
    # A PostgreSQL streaming replica for search and read-only listings (Store docstring).
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "INGEST_DATABASE_READ_URL"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "INGEST_REDIS_URL")
    )
    incoming_dir: Path = Path("./ingest_incoming")
    # Where uploads wait for a worker: INGEST_INCOMING_DIR, or an S3-compatible bucket
    # (ingest[s3]; credentials from the standard AWS variables) shared by no volume.
    storage: Literal["filesystem", "s3"] = "filesystem"
    s3_bucket: str | None = None
    s3_prefix: str = "ingest/staged/"
    s3_endpoint_url: str | None = None
    max_attempts: int = Field(default=3, ge=1)

    # Input bounds
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_text_chars: int = Field(default=20_000_000, ge=1)
    # 5,000 dense pages hold about the 20 M characters above; past it pages are sparse
    # (a 16 MB PDF can hold 100,000 blank ones), each a chunk to embed.
    max_pages: int = Field(default=5_000, ge=1)
    # Prose within the text limit makes ~25,000 chunks; this bounds what pathological
    # splitting makes (a run without spaces is one chunk per 100 characters).
    max_chunks_per_document: int = Field(default=50_000, ge=1)
    # OCR (tesseract) for images and for PDF pages without a text layer (or scans with
    # only a stamp for one); "force"
    # OCRs every PDF page, "off" fails such documents with a reason that says so.
    ocr: Literal["auto", "off", "force"] = "auto"
    # Most pages, image frames and Office pictures one document may send to OCR: about
    # 2 CPU-s each, so the default fits inside the default parse timeout (300 s).
    ocr_max_pages: int = Field(default=100, ge=1)
    # Archives (.zip) and e-mail attachments become child documents, within these bounds.
    container_max_depth: int = Field(default=3, ge=1, le=20)
    container_max_files: int = Field(default=1000, ge=1)
    container_max_expanded_mb: int = Field(default=1024, ge=1)

    # Chunking
    chunk_tokens: int = Field(default=254, ge=16)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    tokenizer: str | None = None

    # Embedding
    embedder: Literal["local", "openai"] = "local"
    embedding_model: str = "all-MiniLM-L6-v2"
    # local: ONNX Runtime (default, no PyTorch) or sentence-transformers (ingest[torch]).
    embedding_runtime: Literal["onnx", "torch"] = "onnx"
    embedding_precision: Literal["int8", "fp32"] = "int8"
    embedding_pooling: Literal["mean", "cls"] | None = None
    embedding_query_prefix: str | None = None
    embedding_document_prefix: str | None = None
    # Built ONNX graphs and weight-hash verdicts. Unset: $XDG_CACHE_HOME/ingest or ~/.cache/ingest.
    model_cache_dir: Path | None = None
    embedding_batch_size: int = Field(default=8, ge=1)
    embedding_threads: int = Field(default=1, ge=1, le=256)
    embedding_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1)
    embedding_timeout_s: float = Field(default=60.0, gt=0)
    embedding_attempts: int = Field(default=4, ge=1)

    # Retrieval
    # Tuned on BEIR SciFact's training judgments (bench/tune_fusion.py, docs/benchmarks.md)
    # with SQLite's keyword ranking; fusion() gives PostgreSQL its own (POSTGRES_FUSION).
    fusion_rrf_k: int = Field(default=5, ge=1)
    fusion_vector_weight: float = Field(default=0.67, ge=0)
    fusion_keyword_weight: float = Field(default=1.0, ge=0)
    fusion_candidates: int = Field(default=100, ge=1)
    # PostgreSQL: at most this many keyword matches are ranked per query (rarest words first).
    keyword_rank_limit: int = Field(default=5000, ge=100)

    # Jobs: leases, retries, limits
    concurrency: int = Field(default=2, ge=1, le=64)
    queues: str = "ingest,maintenance,sources"
    lease_seconds: float = Field(default=6.0, gt=0)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=300.0, ge=0)
    job_soft_timeout_seconds: float = Field(default=1800.0, gt=0)
    job_hard_timeout_seconds: float = Field(default=3600.0, gt=0)
    parse_timeout_seconds: float = Field(default=300.0, gt=0)
    parse_memory_mb: int = Field(default=2048, ge=64)
    isolate_parsing: bool = True
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    worker_stale_seconds: float = Field(default=15.0, gt=0)
    job_retention: timedelta = timedelta(days=7)
    upload_retention: timedelta = timedelta(days=1)
    maintenance_interval_seconds: float = Field(default=3600.0, gt=0)
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    redis_queue_prefix: str = "ingest:queue:"

    # Synced sources (s3://bucket/prefix) use s3_endpoint_url above too.
    # Folders (comma-separated) under which the API may add folder sources; unset, only
    # the CLI can (an admin key must not make the server read any folder it can).
    source_roots: str = ""

    # HTTP API
    # uvicorn worker processes of `ingest serve` (its --workers overrides it).
    api_workers: int = Field(default=1, ge=1, le=64)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_files_per_upload: int = Field(default=100, ge=1)
    max_queued: int = Field(default=10_000, ge=1)
    rate_limit: str = "600/minute"
    auth_failure_rate_limit: str = "30/minute"
    sse_ping_seconds: float = Field(default=15.0, gt=0)

    # Remote CLI: `ingest --server URL` (or this) sends add/search/status/jobs there.
    server_url: str | None = None
    api_key: SecretStr | None = None

    # Operator console (/console): signs session cookies; unset, a random secret per
    # process (sessions end on restart and are not shared between API processes).
    console_secret: SecretStr | None = None
    console_session_minutes: int = Field(default=480, ge=1, le=10_080)

    # Answers (chat)
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=120.0, gt=0)
    chat_context_chunks: int = Field(default=5, ge=1, le=50)
    chat_history_messages: int = Field(default=20, ge=0, le=200)

    # Logs
    # Unset: servers and workers log at info, one-shot commands at warning.
    log_level: Literal["debug", "info", "warning", "error"] | None = None
    log_format: Literal["plain", "json"] = "plain"

    # Store
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # false behind PgBouncer < 1.21 in transaction mode (see docs/scaling.md).
    db_prepared_statements: bool = True
    sqlite_busy_timeout_ms: int = Field(default=60_000, ge=0)
    auto_migrate: bool = True

    @property
    def queue_names(self) -> list[str]:
        return [q.strip() for q in self.queues.split(",") if q.strip()]

    @property
    def source_root_paths(self) -> list[Path]:
        return [Path(r.strip()).resolve() for r in self.source_roots.split(",") if r.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def fusion(self) -> dict[str, Any]:
        """The hybrid fusion settings in effect: what the user set, else the defaults
        tuned for this backend's keyword ranking (FTS5's BM25 or ours on PostgreSQL)."""
        values = {name: getattr(self, f"fusion_{name}") for name in FUSION_FIELDS}
        if not self.is_sqlite:
            for name, value in POSTGRES_FUSION.items():
                if f"fusion_{name}" not in self.model_fields_set:
                    values[name] = value
        return values


FUSION_FIELDS = ("rrf_k", "vector_weight", "keyword_weight", "candidates")
# PostgreSQL's BM25 (store/bm25.py) ranks a little differently from FTS5's (stemmer,
# stopwords): tuned on it, the vector side weighs 0.9 instead of 0.67 (SciFact train
# nDCG@10 0.7188 against 0.7156 with SQLite's values; bench/pg_bench.py hybrid).
POSTGRES_FUSION: dict[str, Any] = {"vector_weight": 0.9}


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and a local .env) into a Settings object. A bad value
    is a ConfigError naming the variable, the value and what is allowed."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc)) from None


def env_name(field: str) -> str:
    """The environment variable a user sets for a field (DATABASE_URL, INGEST_MODE)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"INGEST_{field.upper()}"


def describe_invalid(exc: ValidationError) -> str:
    """One line per bad setting: `INGEST_MODE='bogus': must be one of ...`."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        reason = str(error["msg"])
        if error["type"] == "literal_error":
            allowed = (error.get("ctx") or {}).get("expected", "")
            reason = f"must be one of {allowed}"
        lines.append(f"{env_name(field)}={error.get('input')!r}: {reason}")
    return "invalid setting: " + "; ".join(lines)
