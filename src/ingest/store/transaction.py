"""One unit of work: the repositories a use case writes through, on one connection.

    with store.transaction() as tx:
        tx.documents.replace(...)
        tx.jobs.succeed(claim, ...)

Everything inside commits together or not at all; the layers above never see a
connection. On SQLite the transaction takes the write lock up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store.documents import DocumentWriter
from ingest.store.engine import write_transaction
from ingest.store.ledger import JobWriter
from ingest.store.sources import SourceWriter
from ingest.store.staged_files import StagedFileWriter


class Transaction:
    def __init__(self, conn: sa.Connection) -> None:
        self.documents = DocumentWriter(conn)
        self.jobs = JobWriter(conn)
        self.staged_files = StagedFileWriter(conn)
        self.sources = SourceWriter(conn)


@contextmanager
def transaction(engine: Engine) -> Iterator[Transaction]:
    with write_transaction(engine) as conn:
        yield Transaction(conn)
