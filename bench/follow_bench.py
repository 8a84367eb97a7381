"""What one poll of `ingest add`'s follow loop costs (cli/follow.py follow_jobs).

    .venv/bin/python bench/follow_bench.py [--jobs 5000] [--finished 0.5]

A SQLite ledger holds --jobs jobs of one run, a --finished share of them succeeded
(with a result, as ingest jobs have). Timed, median of 20: the old poll (every job of
the run read whole: Ledger.get_many) and the new one (id and status of the jobs not
yet terminal: Ledger.unfinished). The loop polls every 0.1 s for the whole run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from ingest.store import NewJob, Store
from ingest.store.engine import write_transaction
from ingest.store.schema import jobs
from ingest.vocabulary import JobStatus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--finished", type=float, default=0.5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        store.migrate()
        payload = {"source_uri": "/data/" + "x" * 60, "filename": "report.pdf", "size": 123456}
        ids = [
            store.jobs.submit(NewJob(kind="ingest", payload=payload)).id for _ in range(args.jobs)
        ]
        done = ids[: int(len(ids) * args.finished)]
        result = {"outcome": "added", "chunks": 12, "embedded": 12, "document_id": "d" * 32}
        with write_transaction(store.engine) as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_(done))
                .values(status=JobStatus.SUCCEEDED, result=result)
            )
        for name, poll in (
            ("old: get_many(all jobs)", lambda: store.jobs.get_many(ids)),
            ("new: unfinished(pending jobs)", lambda: store.jobs.unfinished(ids[len(done) :])),
        ):
            times = []
            for _ in range(20):
                started = time.perf_counter()
                poll()
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            print(
                f"{name:<32} {1000 * median:7.1f} ms per poll "
                f"({10 * median:.0%} of a core at 10 polls/s)"
            )
        store.close()


if __name__ == "__main__":
    main()
