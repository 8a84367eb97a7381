"""What a test checks in the database beyond the store's own API."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.store import Store


def duplicate_chunk_count(store: Store) -> int:
    """Chunks sharing an id or a (document, ordinal): zero by construction."""
    with store.engine.connect() as conn:
        dup_ids = conn.execute(
            sa.text("SELECT COUNT(*) FROM (SELECT id FROM chunks GROUP BY id HAVING COUNT(*) > 1)")
        ).scalar_one()
        dup_pos = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM (SELECT document_id, ordinal FROM chunks "
                "GROUP BY document_id, ordinal HAVING COUNT(*) > 1)"
            )
        ).scalar_one()
    return int(dup_ids) + int(dup_pos)
