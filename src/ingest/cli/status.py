"""`ingest status`: one picture of what the system holds and how its jobs stand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.ingestion.overview import status_report

__all__ = ["print_status", "status_report"]


def print_status(out: Console, report: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    if report.get("database"):  # a remote status (--server) does not name it
        table.add_row("database", escape(report["database"]))
    table.add_row("mode", report["mode"])
    table.add_row("documents", str(report["documents"]))
    for name, n in sorted(report["by_status"].items()):
        table.add_row(f"  {name}", str(n))
    table.add_row("chunks", str(report["chunks"]))
    table.add_row("vectors", str(report["vectors"]))
    table.add_row("collections", str(report["collections"]))
    for queue, by_status in sorted(report["jobs"].items()):
        summary = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
        # Escaped: Rich would take "[ingest]" for markup and print a bare "jobs".
        table.add_row(escape(f"jobs [{queue}]"), summary)
    table.add_row("workers live", str(report["live_workers"]))
    for w in report["workers"]:
        if w["live"]:
            table.add_row(
                f"  {w['id']}",
                f"queues {','.join(w['queues'])}, running {w['running']}/{w['concurrency']}, "
                f"heartbeat {w['heartbeat_age_s']} s ago",
            )
    integrity = report["integrity"]
    if integrity is None:
        table.add_row("integrity", f"not checked yet ({_CHECK_NOW})")
    else:
        verdict = "ok" if integrity.get("ok") else "PROBLEMS"
        table.add_row(
            "integrity",
            f"{verdict}: {integrity['documents_without_chunks']} documents without chunks, "
            f"{integrity['chunks_without_vectors']} chunks without vectors, "
            f"{integrity['staged_files_missing']} staged files missing",
        )
        table.add_row("  checked", _when(report.get("integrity_checked_at")))
    out.print(table)


# Only a scheduler runs the check periodically; CLI-only use runs it by hand.
_CHECK_NOW = "`ingest maintenance run integrity` checks now"


def _when(checked_at: str | None) -> str:
    if checked_at is None:
        return "unknown"
    at = datetime.fromisoformat(checked_at)
    minutes = int((datetime.now(UTC) - at).total_seconds() // 60)
    ago = f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
    return f"{at:%Y-%m-%d %H:%M} UTC, {ago}"
