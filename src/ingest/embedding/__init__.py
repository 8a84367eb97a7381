"""Embedders: adapters that turn text into vectors, built from Settings by the wiring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.embedding.base import Embedder, Vectors, normalize, to_blob
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from ingest.embedding.http import OpenAIEmbedder
    from ingest.embedding.local import LocalEmbedder
    from ingest.settings import Settings

__all__ = ["Embedder", "Vectors", "build_embedder", "normalize", "to_blob"]


def build_embedder(settings: Settings) -> LocalEmbedder | OpenAIEmbedder:
    """The embedder the settings name. Imported here, not above: a process that
    never embeds (a health probe, `ingest status`) loads neither adapter."""
    if settings.embedder == "openai":
        from ingest.embedding.http import OpenAIEmbedder

        if not settings.embedding_url:
            raise ConfigError("INGEST_EMBEDDER=openai needs INGEST_EMBEDDING_URL")
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbedder(
            url=settings.embedding_url,
            model=settings.embedding_model,
            api_key=key,
            dimensions=settings.embedding_dimensions,
            timeout_s=settings.embedding_timeout_s,
            attempts=settings.embedding_attempts,
        )
    from ingest.embedding.local import LocalEmbedder

    return LocalEmbedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        threads=settings.embedding_threads,
    )
