"""The wiring: from one Settings object, the store, the embedder, the pipeline,
the job runtime with its registered handlers, the submitter and the searcher.
Heavy parts (the model, the parser processes) are built on first use."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from ingest.embedding import Embedder, build_embedder
from ingest.errors import ConfigError
from ingest.ingestion.handlers import INGEST, IngestHandler
from ingest.ingestion.ingestor import Ingestor
from ingest.ingestion.maintenance import TASKS, Maintenance
from ingest.ingestion.submit import Submitter
from ingest.jobs.doorbell import Doorbell, InProcessDoorbell, RedisDoorbell
from ingest.jobs.handlers import NOOP, Handler, run_noop
from ingest.jobs.runtime import Runtime
from ingest.jobs.worker import Worker
from ingest.pipeline.chunking import Chunker, load_tokenizer
from ingest.pipeline.isolation import IsolatedParser
from ingest.pipeline.pipeline import Pipeline
from ingest.pipeline.segments import ParseLimits
from ingest.query.search import FusionConfig, Searcher
from ingest.settings import Settings
from ingest.store import Store
from ingest.store.ledger import Ledger
from ingest.vocabulary import Queue

log = logging.getLogger(__name__)


def build_doorbell(settings: Settings) -> Doorbell:
    if settings.mode == "queue":
        if not settings.redis_url:
            raise ConfigError("INGEST_MODE=queue needs REDIS_URL (redis://host:port/db)")
        return RedisDoorbell(settings.redis_url, prefix=settings.redis_queue_prefix)
    return InProcessDoorbell()


def build_pipeline(settings: Settings, embedder: Embedder) -> Pipeline:
    tokenizer_path = Path(settings.tokenizer) if settings.tokenizer else embedder.tokenizer_path
    max_tokens = min(settings.chunk_tokens, embedder.max_tokens)
    chunker = Chunker(
        load_tokenizer(tokenizer_path),
        max_tokens=max_tokens,
        overlap_tokens=min(settings.chunk_overlap_tokens, max_tokens // 2),
    )
    return Pipeline(
        embedder=embedder,
        chunker=chunker,
        limits=ParseLimits(max_text_chars=settings.max_text_chars),
        max_file_bytes=settings.max_file_bytes,
    )


class Context:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.store = Store.from_settings(settings)
        try:
            self._prepare_schema()
        except BaseException:
            self.store.close()
            raise

    def _prepare_schema(self) -> None:
        # Embedded SQLite has one owner, so it migrates itself; a shared PostgreSQL
        # is migrated once by `ingest migrate`, never raced at start-up.
        if self.settings.is_sqlite and self.settings.auto_migrate:
            if not self.store.schema_is_current():
                self.store.migrate()
        else:
            self.store.require_current_schema()

    @property
    def ledger(self) -> Ledger:
        return self.store.jobs

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or build_embedder(self.settings)

    @cached_property
    def pipeline(self) -> Pipeline:
        return build_pipeline(self.settings, self.embedder)

    @cached_property
    def parser(self) -> IsolatedParser | None:
        """Parsing in child processes with time and memory limits, one per job slot."""
        if not self.settings.isolate_parsing:
            return None
        s = self.settings
        return IsolatedParser(
            workers=s.concurrency,
            timeout_s=s.parse_timeout_seconds,
            memory_mb=s.parse_memory_mb,
            limits=ParseLimits(max_text_chars=s.max_text_chars),
        )

    @cached_property
    def ingestor(self) -> Ingestor:
        parser = self.parser
        return Ingestor(
            self.store,
            self.pipeline,
            embed_batch_size=self.settings.embedding_batch_size,
            parse=parser.parse if parser else None,
        )

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.store, self.embedder, FusionConfig(**self.settings.fusion()))

    @cached_property
    def doorbell(self) -> Doorbell:
        return build_doorbell(self.settings)

    @cached_property
    def submitter(self) -> Submitter:
        return Submitter(self.store, self.settings, self.doorbell)

    # --- the job runtime, with this application's job kinds --------------------------

    def handlers(self) -> dict[str, Handler]:
        maintenance = Maintenance(self.store, self.settings, lambda: self.embedder.model_id)
        # The ingestor (model, tokenizer, parser pool) is built at the first ingest job.
        ingest = IngestHandler(
            self.store, lambda: self.ingestor, incoming_dir=self.settings.incoming_dir
        )
        return {INGEST: ingest, NOOP: run_noop, **maintenance.handlers()}

    def warm_up(self, queues: list[str]) -> None:
        """Load what the ingest jobs need (the model, the tokenizer) before a worker
        takes its first job: a worker of the maintenance queue alone needs none of it."""
        if Queue.INGEST in queues:
            self.pipeline  # noqa: B018  (the tokenizer, and the embedder object)
            warm_up = getattr(self.embedder, "warm_up", None)
            if warm_up is not None:
                warm_up()

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(
            settings=self.settings,
            store=self.store,
            doorbell=self.doorbell,
            handlers=self.handlers(),
            scheduled_kinds=TASKS,
            warm_up=self.warm_up,
        )

    def worker(
        self,
        *,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        burst: bool = False,
    ) -> Worker:
        return Worker(
            self.runtime,
            queues=queues or self.settings.queue_names,
            concurrency=concurrency or self.settings.concurrency,
            burst=burst,
        )

    def close(self) -> None:
        if "doorbell" in self.__dict__:
            self.doorbell.close()
        parser = self.__dict__.get("parser")
        if parser is not None:
            parser.close()
        # Only what this context built: an embedder handed in belongs to the caller.
        built = self.__dict__.get("embedder")
        if self._embedder is None and built is not None and hasattr(built, "close"):
            built.close()
        self.store.close()
