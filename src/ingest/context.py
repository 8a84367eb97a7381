"""Wiring: settings -> store, pipeline, searcher. Heavy parts (the model) load lazily."""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property

from ingest.errors import ConfigError
from ingest.jobs.doorbell import Doorbell, InProcessDoorbell, RedisDoorbell
from ingest.jobs.ingestion import Ingestor
from ingest.jobs.submit import Submitter
from ingest.jobs.worker import Worker
from ingest.pipeline.embedders import Embedder
from ingest.pipeline.pipeline import Pipeline, build_embedder, build_pipeline
from ingest.query.search import FusionConfig, Searcher
from ingest.settings import Settings
from ingest.store import Store
from ingest.store.ledger import Ledger

log = logging.getLogger(__name__)

# The queue whose jobs embed: a worker taking it loads the model before its first claim.
_EMBEDDING_QUEUE = "ingest"


def build_doorbell(settings: Settings) -> Doorbell:
    if settings.mode == "queue":
        if not settings.redis_url:
            raise ConfigError("INGEST_MODE=queue needs REDIS_URL (redis://host:port/db)")
        return RedisDoorbell(settings.redis_url, prefix=settings.redis_queue_prefix)
    return InProcessDoorbell()


class Context:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._built_embedder: Embedder | None = None
        self._warm_lock = threading.Lock()
        self._warm = threading.Event()
        self.warm_up_error: Exception | None = None
        self.store = Store.open(
            settings.database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            keyword_rank_limit=settings.keyword_rank_limit,
        )
        try:
            self._prepare_schema()
        except BaseException:
            self.store.close()
            raise
        self.ledger = Ledger(self.store.engine)

    def _prepare_schema(self) -> None:
        # Embedded SQLite has one owner, so it migrates itself; a shared PostgreSQL
        # is migrated once by `ingest migrate`, never raced at start-up.
        if self.settings.is_sqlite and self.settings.auto_migrate:
            if not self.store.schema_is_current():
                self.store.migrate()
        else:
            self.store.require_current_schema()

    @cached_property
    def embedder(self) -> Embedder:
        # A warm-up thread and a first query may ask at once: build one embedder,
        # or the query would load a second copy of the model.
        with self._embedder_lock:
            if self._built_embedder is None:
                self._built_embedder = self._embedder or build_embedder(self.settings)
            return self._built_embedder

    @cached_property
    def pipeline(self) -> Pipeline:
        return build_pipeline(self.settings, self.embedder)

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(
            self.store, self.pipeline, embed_batch_size=self.settings.embedding_batch_size
        )

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(
            self.store,
            self.embedder,
            FusionConfig(**self.settings.fusion()),
        )

    def warm_up(self) -> None:
        """Build the pipeline and load the embedding model now, once per process:
        before a worker's first claim (a load inside a job would run against its
        lease) and before the API reports ready (else the first query waits for it).
        Safe from several threads; a failed warm-up raises, and the next call tries
        again."""
        with self._warm_lock:
            if self._warm.is_set():
                return
            started = time.monotonic()
            try:
                self.pipeline.embedder.warm_up()
            except Exception as exc:
                self.warm_up_error = exc
                raise
            self.warm_up_error = None
            self._warm.set()
        log.info("embedder ready (warm-up took %.1f s)", time.monotonic() - started)

    @property
    def embedder_ready(self) -> bool:
        """True once warm_up() has succeeded: a query embeds without loading anything."""
        return self._warm.is_set()

    @cached_property
    def doorbell(self) -> Doorbell:
        return build_doorbell(self.settings)

    @cached_property
    def submitter(self) -> Submitter:
        return Submitter(self, self.doorbell)

    def worker(
        self,
        *,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        burst: bool = False,
    ) -> Worker:
        names = queues or self.settings.queue_names
        return Worker(
            self,
            doorbell=self.doorbell,
            queues=names,
            concurrency=concurrency or self.settings.concurrency,
            burst=burst,
            isolate_parsing=self.settings.isolate_parsing,
            # A maintenance-only worker never embeds: it need not hold a model.
            warm_up=self.warm_up if _EMBEDDING_QUEUE in names else None,
        )

    def close(self) -> None:
        if "doorbell" in self.__dict__:
            self.doorbell.close()
        # Only what this context built: an embedder handed in belongs to the caller.
        built = self.__dict__.get("embedder")
        if self._embedder is None and built is not None and hasattr(built, "close"):
            built.close()
        self.store.close()
