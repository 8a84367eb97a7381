"""Prometheus metrics. Job and document figures are read from the ledger at scrape
time, so every API replica reports the same truth whichever process did the work;
HTTP latency is per process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ingest.vocabulary import JobStatus

if TYPE_CHECKING:
    from ingest.context import Context

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))


class LedgerCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        ledger, store = self.ctx.ledger, self.ctx.store
        jobs = GaugeMetricFamily("ingest_jobs", "Jobs in the ledger", labels=["queue", "status"])
        dead = 0
        for queue, by_status in ledger.counts().items():
            for status, n in by_status.items():
                jobs.add_metric([queue, status], n)
                dead += n if status == JobStatus.DEAD else 0
        yield jobs
        yield GaugeMetricFamily(
            "ingest_dead_letter_jobs", "Jobs in the dead-letter list", value=dead
        )
        snapshot = ledger.metrics_snapshot()
        failures = CounterMetricFamily(
            "ingest_job_failures", "Failed and dead jobs by reason", labels=["kind", "reason"]
        )
        for kind, reason, n in snapshot["failures"]:
            failures.add_metric([kind, reason], n)
        yield failures
        yield CounterMetricFamily(
            "ingest_job_retries", "Attempts beyond the first", value=snapshot["retries"]
        )
        yield _duration_histogram(snapshot["durations"])
        counts = store.counts()
        docs = GaugeMetricFamily("ingest_documents", "Documents by status", labels=["status"])
        for status, n in counts["by_status"].items():
            docs.add_metric([status], n)
        yield docs
        yield GaugeMetricFamily("ingest_chunks", "Chunks indexed", value=counts["chunks"])
        workers = self.ctx.store.workers.list(stale_after=self.ctx.settings.worker_stale_seconds)
        live = sum(1 for w in workers if w.live)
        yield GaugeMetricFamily(
            "ingest_live_workers", "Workers with a recent heartbeat", value=live
        )


def _duration_histogram(durations: list[tuple[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "ingest_job_duration_seconds", "Run time of recent succeeded jobs", labels=["kind"]
    )
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in durations:
        by_kind.setdefault(kind, []).append(seconds)
    for kind, values in by_kind.items():
        buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in DURATION_BUCKETS]
        family.add_metric([kind], buckets, sum_value=sum(values))
    return family


def build_registry(ctx: Context) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ctx))
    latency = Histogram(
        "ingest_http_request_duration_seconds",
        "HTTP request latency",
        labelnames=["method", "route", "status"],
        registry=registry,
    )
    return registry, latency
