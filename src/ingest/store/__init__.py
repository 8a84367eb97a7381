"""The only code that talks SQL. SQLite and PostgreSQL differ only inside here."""

from ingest.store.documents import ChunkHit, ChunkRecord, DocumentRecord, document_id_for
from ingest.store.job_records import Claim, Job, NewJob, new_job_id
from ingest.store.store import Store
from ingest.store.transaction import Transaction

__all__ = [
    "ChunkHit",
    "ChunkRecord",
    "Claim",
    "DocumentRecord",
    "Job",
    "NewJob",
    "Store",
    "Transaction",
    "document_id_for",
    "new_job_id",
]
