"""Embedders: adapters that turn text into vectors, built from Settings by the wiring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.embedding.base import Embedder, Vectors, normalize, to_blob
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from ingest.embedding.http import OpenAIEmbedder
    from ingest.embedding.local import LocalEmbedder
    from ingest.embedding.onnx_embedder import OnnxEmbedder
    from ingest.settings import Settings

__all__ = ["Embedder", "Vectors", "build_embedder", "normalize", "to_blob"]


def build_embedder(settings: Settings) -> OnnxEmbedder | LocalEmbedder | OpenAIEmbedder:
    """The embedder the settings name. Imported here, not above: a process that
    never embeds (a health probe, `ingest status`) loads no adapter."""
    if settings.embedder == "openai":
        return _openai(settings)
    from ingest.embedding.model_cache import default_cache_dir
    from ingest.embedding.model_files import resolve_model

    cache_dir = settings.model_cache_dir or default_cache_dir()
    model = resolve_model(
        settings.embedding_model,
        pooling=settings.embedding_pooling,
        query_prefix=settings.embedding_query_prefix,
        document_prefix=settings.embedding_document_prefix,
        onnx=settings.embedding_runtime == "onnx",
    )
    batch_size, threads = settings.embedding_batch_size, settings.embedding_threads
    if settings.embedding_runtime == "torch":
        from ingest.embedding.local import LocalEmbedder

        return LocalEmbedder(model, cache_dir=cache_dir, batch_size=batch_size, threads=threads)
    from ingest.embedding.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(
        model, cache_dir=cache_dir, precision=settings.embedding_precision, threads=threads
    )


def _openai(settings: Settings) -> OpenAIEmbedder:
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
