"""A synced folder (or S3 prefix) of many small files: the first sync, then a sync with
nothing changed (a folder: reads and hashes every file; both submit nothing and
embed nothing).

    flock /tmp/bench.lock .venv/bin/python bench/sources_bench.py [--files 10000] [--json OUT]
    flock /tmp/bench.lock .venv/bin/python bench/sources_bench.py --s3 --files 1000

--s3: the files are objects under s3://bench/share/ on moto's S3-compatible server
(tests/support/s3.py, started here, uploaded on 8 threads). The first sync reads
every object; the unchanged one lists them and finds each with the ETag, size and
LastModified it had when read, so reads none (the GetObject calls are counted on
the sync's own client and reported).

The files are generated in a temporary folder: small text files cycling through
--distinct texts (the first sync embeds only those; it is not what is measured).
SQLite, inline mode, the default local model, parsing in-process. Timed: the
unchanged sync job (from its report's timestamps) and the wall time of the whole
re-sync (queue the job, a worker claims and runs it, the queues drain).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingest.context import Context
from ingest.embedding import Embedder, Vectors, build_embedder
from ingest.ingestion import sources
from ingest.ingestion.source_listing import S3Listing
from ingest.settings import Settings
from ingest.vocabulary import Queue

TOPICS = ["signing keys", "backups", "onboarding", "payroll", "the vault", "cold storage"]


class CountingEmbedder:
    """The real embedder, with a count of the texts it embeds."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts += len(texts)
        return self.inner.embed(texts)


def generate(folder: Path, files: int, distinct: int) -> None:
    for i in range(files):
        sub = folder / f"team{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        topic = TOPICS[(i % distinct) % len(TOPICS)]
        text = f"Note {i % distinct} about {topic}: how the team handles {topic} every week.\n"
        (sub / f"note{i:05d}.txt").write_text(text)


@contextlib.contextmanager
def s3_share(root: Path, files: int, distinct: int) -> Iterator[tuple[str, str]]:
    """The generated files as objects on a local S3-compatible server: (location,
    endpoint)."""
    import boto3

    # The test suite's S3 server helper, from the repository root (as pg_bench.py does).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.s3 import S3Server

    server = S3Server(root / "s3")
    server.start()
    try:
        os.environ.update(server.env())
        client = boto3.client("s3", endpoint_url=server.endpoint_url)
        client.create_bucket(Bucket="bench")
        generate(root / "files", files, distinct)

        def put(path: Path) -> None:
            key = "share/" + path.relative_to(root / "files").as_posix()
            client.put_object(Bucket="bench", Key=key, Body=path.read_bytes())

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, sorted((root / "files").rglob("*.txt"))))
        print(f"uploaded {files} objects in {time.perf_counter() - started:.1f} s", flush=True)
        yield "s3://bench/share/", server.endpoint_url
    finally:
        server.stop()


class GetCounter:
    """Counts the GetObject calls of the syncs' S3 clients (a botocore event hook)."""

    def __init__(self) -> None:
        self.gets = 0
        self._listing_for = sources.listing_for
        sources.listing_for = self._counting_listing_for  # type: ignore[assignment]

    def _counting_listing_for(self, location: str, *, endpoint_url: str | None) -> Any:
        listing = self._listing_for(location, endpoint_url=endpoint_url)
        if isinstance(listing, S3Listing):
            listing._client.meta.events.register("before-call.s3.GetObject", self._count)
        return listing

    def _count(self, **_: Any) -> None:
        self.gets += 1


def sync(ctx: Context, source_id: str | None) -> tuple[dict[str, Any], float]:
    """Run a sync to the end (the queued one, or a new one); its report and wall time."""
    started = time.perf_counter()
    if source_id is not None:
        sources.sync_now(ctx.store, ctx.settings, ctx.doorbell, source_id)
    ctx.worker(queues=[Queue.SOURCES, Queue.INGEST], burst=True).run()
    wall = time.perf_counter() - started
    job = ctx.ledger.list_jobs(kind=sources.SYNC, limit=1)[0]
    assert job.result is not None, job.error_message
    return job.result, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--distinct", type=int, default=100, help="distinct texts among the files")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--s3", action="store_true", help="objects on a local S3 server")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        location, endpoint = str(root / "share"), None
        if args.s3:
            location, endpoint = stack.enter_context(s3_share(root, args.files, args.distinct))
        else:
            generate(root / "share", args.files, args.distinct)
        settings = Settings(
            database_url=f"sqlite:///{root / 'ingest.db'}",
            incoming_dir=root / "incoming",
            isolate_parsing=False,
            s3_endpoint_url=endpoint,
        )
        embedder = CountingEmbedder(build_embedder(settings))
        counter = GetCounter()
        ctx = Context(settings, embedder=embedder)  # type: ignore[arg-type]
        try:
            source, _ = sources.add_source(
                ctx.store, settings, ctx.doorbell, location, collection="bench"
            )
            first, first_wall = sync(ctx, None)
            embedded_first, gets_first = embedder.texts, counter.gets
            again, again_wall = sync(ctx, source.id)
            embedded_again, gets_again = embedder.texts - embedded_first, counter.gets - gets_first
        finally:
            ctx.close()
    job_s = again["finished_at"] - again["started_at"]
    figures = {
        "source": "s3" if args.s3 else "folder",
        "files": args.files,
        "first sync wall s": round(first_wall, 2),
        "first sync submitted": first["submitted"],
        "first sync texts embedded": embedded_first,
        "first sync objects read": gets_first if args.s3 else "-",
        "unchanged sync job s": round(job_s, 2),
        "unchanged sync wall s": round(again_wall, 2),
        "unchanged sync us per file": round(1e6 * job_s / args.files, 1),
        "unchanged sync submitted": again["submitted"],
        "unchanged sync unchanged": again["unchanged"],
        "unchanged sync texts embedded": embedded_again,
        "unchanged sync objects read": gets_again if args.s3 else "-",
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
