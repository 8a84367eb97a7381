"""Running work: ingestion of documents (and, later, the durable job ledger)."""
