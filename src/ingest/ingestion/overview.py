"""One picture of what the system holds and how its jobs stand: `ingest status`,
`GET /api/v1/status` and the console's overview all show this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.ingestion.maintenance import INTEGRITY
from ingest.models import iso

if TYPE_CHECKING:
    from ingest.context import Context


def status_report(ctx: Context) -> dict[str, Any]:
    report = ctx.store.counts()
    report["jobs"] = ctx.ledger.counts()
    workers = ctx.store.workers.list(stale_after=ctx.settings.worker_stale_seconds)
    report["workers"] = [w.as_dict() for w in workers]
    report["live_workers"] = sum(1 for w in report["workers"] if w["live"])
    integrity = ctx.ledger.latest_succeeded(INTEGRITY)
    report["integrity"] = integrity.result if integrity else None
    report["integrity_checked_at"] = iso(integrity.finished_at) if integrity else None
    report["mode"] = ctx.settings.mode
    return report
