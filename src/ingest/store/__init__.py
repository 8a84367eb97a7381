"""The only code that talks SQL. SQLite and PostgreSQL differ only inside here."""

from ingest.store.store import ChunkHit, ChunkRecord, DocumentRecord, Store

__all__ = ["ChunkHit", "ChunkRecord", "DocumentRecord", "Store"]
