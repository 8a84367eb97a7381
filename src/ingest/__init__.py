"""ingest: durable document ingestion and hybrid retrieval for RAG applications."""

__version__ = "0.1.0"
