"""What `ingest add` prints without a terminal while its jobs run (cli/watch.py)."""

from __future__ import annotations

import io

from rich.console import Console

from ingest.cli.watch import RunWatcher
from ingest.context import Context
from ingest.store import NewJob
from ingest.vocabulary import Queue


def _submit(ctx: Context, name: str) -> str:
    payload = {"source_uri": f"/docs/{name}", "filename": name, "collection": "default"}
    return ctx.ledger.submit(NewJob(kind="ingest", payload=payload)).id


def test_the_watcher_says_each_finished_job_once_and_what_is_running(
    sqlite_ctx: Context,
) -> None:
    ids = [_submit(sqlite_ctx, name) for name in ("a.txt", "b.txt", "c.txt")]
    sqlite_ctx.ledger.cancel(ids[0])
    [claim] = sqlite_ctx.ledger.claim_many("w1", [Queue.INGEST], 60.0, limit=1)
    assert claim.job.id == ids[1]
    out = io.StringIO()
    watcher = RunWatcher(
        sqlite_ctx,
        ids,
        Console(file=out, width=200),
        lines=True,
        still_working_every_s=0.0,  # say the "still working" line at every look
    )

    watcher._poll()
    first = out.getvalue().splitlines()
    assert first == [
        "[1/3] cancelled /docs/a.txt: cancelled",
        "... 1/3 done; running b.txt: starting 0%",
    ]

    sqlite_ctx.ledger.cancel(ids[2])
    watcher._poll()
    second = out.getvalue().splitlines()[len(first) :]
    assert second == [
        "[2/3] cancelled /docs/c.txt: cancelled",
        "... 2/3 done; running b.txt: starting 0%",
    ]
