"""The wiring: from one Settings object, the store, the embedder, the pipeline,
the job runtime with its registered handlers, the submitter and the searcher.
Heavy parts (the model, the parser processes) are built on first use."""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.embedding import Embedder, build_embedder
from ingest.errors import ConfigError
from ingest.ingestion.maintenance import TASKS, Maintenance
from ingest.ingestion.sources import SourceSync, due_syncs
from ingest.ingestion.submit import Submitter
from ingest.jobs.doorbell import Doorbell, InProcessDoorbell, RedisDoorbell
from ingest.jobs.handlers import NOOP, Handler, run_noop
from ingest.jobs.runtime import Runtime
from ingest.jobs.worker import Worker
from ingest.pipeline.segments import ContainerLimits, ParseLimits
from ingest.query.search import FusionConfig, Searcher
from ingest.settings import Settings
from ingest.staging import Staging, build_staging
from ingest.store import Store
from ingest.store.ledger import Ledger
from ingest.vocabulary import Queue

# The pipeline (parser libraries, the chunker) and the parser pool are imported where
# they are built: a one-shot `ingest search` or `ingest status` needs none of them.
if TYPE_CHECKING:
    from ingest.ingestion.ingestor import Ingestor
    from ingest.pipeline.isolation import IsolatedParser
    from ingest.pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)

# The queue whose jobs embed: a worker taking it loads the model before its first claim.


def build_doorbell(settings: Settings) -> Doorbell:
    if settings.mode == "queue":
        if not settings.redis_url:
            raise ConfigError("INGEST_MODE=queue needs REDIS_URL (redis://host:port/db)")
        return RedisDoorbell(settings.redis_url, prefix=settings.redis_queue_prefix)
    return InProcessDoorbell()


def build_pipeline(settings: Settings, embedder: Embedder) -> Pipeline:
    from ingest.pipeline.chunking import Chunker, load_tokenizer
    from ingest.pipeline.pipeline import Pipeline

    tokenizer_path = Path(settings.tokenizer) if settings.tokenizer else embedder.tokenizer_path
    max_tokens = min(settings.chunk_tokens, embedder.max_tokens)
    chunker = Chunker(
        load_tokenizer(tokenizer_path),
        max_tokens=max_tokens,
        overlap_tokens=min(settings.chunk_overlap_tokens, max_tokens // 2),
        max_chunks=settings.max_chunks_per_document,
    )
    return Pipeline(
        embedder=embedder,
        chunker=chunker,
        limits=parse_limits(settings),
        max_file_bytes=settings.max_file_bytes,
        containers=container_limits(settings),
    )


def parse_limits(settings: Settings) -> ParseLimits:
    return ParseLimits(
        max_text_chars=settings.max_text_chars,
        max_pages=settings.max_pages,
        ocr=settings.ocr,
        max_ocr_pages=settings.ocr_max_pages,
    )


def container_limits(settings: Settings) -> ContainerLimits:
    return ContainerLimits(
        max_depth=settings.container_max_depth,
        max_files=settings.container_max_files,
        max_expanded_bytes=settings.container_max_expanded_mb * 1024 * 1024,
        max_member_bytes=settings.max_file_bytes,
    )


class Context:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._built_embedder: Embedder | None = None
        self._warm_lock = threading.Lock()
        self._warm = threading.Event()
        self.warm_up_error: Exception | None = None
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
        # A warm-up thread and a first query may ask at once: build one embedder,
        # or the query would load a second copy of the model.
        with self._embedder_lock:
            if self._built_embedder is None:
                self._built_embedder = self._embedder or self._build_embedder()
            return self._built_embedder

    def _build_embedder(self) -> Embedder:
        embedder = build_embedder(self.settings)
        if self.settings.embedder != "local":
            return embedder
        # The local model: one executor for all of this process's job threads.
        from ingest.embedding.batcher import SharedBatcher, available_cpus

        runners = max(1, available_cpus() // self.settings.embedding_threads)
        # ONNX runs one text at a time (faster here); runners taking one text each
        # never wait for each other. PyTorch gains from batches.
        onnx = self.settings.embedding_runtime == "onnx"
        batch_size = 1 if onnx else self.settings.embedding_batch_size
        return SharedBatcher(embedder, batch_size=batch_size, runners=runners)

    @cached_property
    def pipeline(self) -> Pipeline:
        return build_pipeline(self.settings, self.embedder)

    @cached_property
    def parser(self) -> IsolatedParser | None:
        """Parsing in child processes with time and memory limits, one per job slot."""
        if not self.settings.isolate_parsing:
            return None
        from ingest.pipeline.isolation import IsolatedParser

        s = self.settings
        return IsolatedParser(
            workers=s.concurrency,
            timeout_s=s.parse_timeout_seconds,
            memory_mb=s.parse_memory_mb,
            limits=parse_limits(s),
            containers=container_limits(s),
        )

    @cached_property
    def ingestor(self) -> Ingestor:
        from ingest.ingestion.ingestor import Ingestor

        parser = self.parser
        return Ingestor(
            self.store,
            self.pipeline,
            embed_batch_size=self.settings.embedding_batch_size,
            parse=parser.parse if parser else None,
            expand=parser.expand if parser else None,
        )

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.store, self.embedder, FusionConfig(**self.settings.fusion()))

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
    def staging(self) -> Staging:
        """Where uploads wait for a worker (INGEST_STORAGE), built once per process."""
        return build_staging(self.settings)

    @cached_property
    def submitter(self) -> Submitter:
        return Submitter(self.store, self.settings, self.doorbell, self.staging)

    # --- the job runtime, with this application's job kinds --------------------------

    def handlers(self) -> dict[str, Handler]:
        from ingest.ingestion.handlers import INGEST, IngestHandler
        from ingest.ingestion.sources import SYNC, SyncHandler

        maintenance = Maintenance(
            self.store, self.settings, lambda: self.embedder.model_id, self.staging
        )
        # The ingestor (model, tokenizer, parser pool) is built at the first ingest job.
        ingest = IngestHandler(
            self.store,
            lambda: self.ingestor,
            staging=self.staging,
            max_file_bytes=self.settings.max_file_bytes,
        )
        sync = SyncHandler(self.store, lambda: self.source_sync)
        return {INGEST: ingest, SYNC: sync, NOOP: run_noop, **maintenance.handlers()}

    @cached_property
    def source_sync(self) -> SourceSync:
        return SourceSync(self.store, self.settings, self.submitter, lambda: self.ingestor)

    def warm_up_for(self, queues: list[str]) -> None:
        """Before a worker's first claim: a worker of the maintenance queue alone
        never embeds, and need not hold a model."""
        if Queue.INGEST in queues:
            self.warm_up()

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(
            settings=self.settings,
            store=self.store,
            doorbell=self.doorbell,
            handlers=self.handlers(),
            scheduled_kinds=TASKS,
            periodic_jobs=due_syncs(self.store, self.settings),
            warm_up=self.warm_up_for,
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
