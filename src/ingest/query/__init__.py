"""Retrieval: hybrid (vector + keyword) search with rank fusion."""
