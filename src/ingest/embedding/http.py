"""Any OpenAI-compatible /embeddings endpoint (OpenAI, TEI, Ollama, vLLM), with
bounded retries on what is worth retrying."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ingest.embedding.base import Vectors, normalize
from ingest.embedding.model_files import bundled_model_dir
from ingest.errors import EmbeddingError


class _RetryableHTTP(Exception):
    pass


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableHTTP, httpx.TransportError))


class OpenAIEmbedder:
    """POST {url}/embeddings with {"model", "input": [...]}, as OpenAI, TEI, vLLM and
    Ollama serve it. Busy (429/5xx) and network errors retry with jittered backoff."""

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout_s: float = 60.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        """`backoff_s` is the first wait before a retry; later waits double (up to
        10 s), each plus a random jitter of up to twice `backoff_s` (1 s by default)."""
        self._endpoint = url.rstrip("/") + "/embeddings"
        self._model = model
        self._dimensions = dimensions
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._attempts = attempts
        self._backoff_s = backoff_s

    @property
    def model_id(self) -> str:
        return f"openai:{self._model}"

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = int(self.embed(["dimension probe"]).shape[1])
        return self._dimensions

    @property
    def tokenizer_path(self) -> Path:
        # We cannot see a remote model's tokenizer; the bundled BERT word-piece
        # tokenizer is a conservative stand-in unless INGEST_TOKENIZER is set.
        return bundled_model_dir() / "tokenizer.json"

    @property
    def max_tokens(self) -> int:
        return 510

    def warm_up(self) -> None:
        # Nothing loads here; a call would only probe the endpoint, which each job
        # does anyway (and whose failures it retries).
        return None

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """The endpoint's model applies its own query handling, if any."""
        return self.embed(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        try:
            return normalize(self._post_with_retries(list(texts)))
        except (_RetryableHTTP, httpx.HTTPError) as exc:
            raise EmbeddingError(f"embedding endpoint {self._endpoint} failed: {exc}") from exc

    def _post_with_retries(self, texts: list[str]) -> NDArray[np.float32]:
        @retry(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self._attempts),
            # Spelled out rather than wait_exponential_jitter, whose `initial`
            # is deprecated in new tenacity and whose `multiplier` old ones lack.
            wait=wait_exponential(multiplier=self._backoff_s, max=10)
            + wait_random(0, 2 * self._backoff_s),
            reraise=True,
        )
        def call() -> NDArray[np.float32]:
            return self._post(texts)

        return call()

    def _post(self, texts: list[str]) -> NDArray[np.float32]:
        body: dict[str, Any] = {"model": self._model, "input": texts, "encoding_format": "float"}
        response = self._client.post(self._endpoint, json=body)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableHTTP(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} refused the request: "
                f"HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            if len(data) != len(texts):
                raise EmbeddingError(
                    f"embedding endpoint {self._endpoint} returned {len(data)} vectors "
                    f"for {len(texts)} inputs"
                )
            if [item["index"] for item in data] != list(range(len(texts))):
                raise EmbeddingError(
                    f"embedding endpoint {self._endpoint} returned vectors whose indexes "
                    f"are not 0..{len(texts) - 1}"
                )
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            # Not JSON, no "data", items without "index"/"embedding", ragged rows.
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} sent a response that is not an "
                f"OpenAI embeddings list: {response.text[:200]!r}"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} sent vectors of shape {vectors.shape}"
            )
        return vectors

    def close(self) -> None:
        self._client.close()
