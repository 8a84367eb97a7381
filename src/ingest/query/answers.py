"""Answers over retrieved passages, streamed token by token.

With an OpenAI-compatible chat endpoint configured (INGEST_LLM_URL) the model
writes the answer from the passages; without one, an extractive answer is
assembled from the passages' most relevant sentences, streamed the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx

from ingest.errors import QueryError
from ingest.query.search import SearchHit

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    document_id: str
    chunk_id: str
    source: str
    page: int | None
    heading: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.number,
            "document_id": self.document_id,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "page": self.page,
            "heading": self.heading,
        }


def citations_for(hits: Sequence[SearchHit]) -> list[Citation]:
    return [
        Citation(i, h.document_id, h.chunk_id, h.source, h.page, h.heading)
        for i, h in enumerate(hits, start=1)
    ]


def extractive_answer(question: str, hits: Sequence[SearchHit], max_sentences: int = 4) -> str:
    """The sentences of the passages that share the most words with the question,
    each followed by its citation number."""
    if not hits:
        return "I could not find anything about that in the indexed documents."
    wanted = {w.lower() for w in _WORD.findall(question) if len(w) > 2}
    scored: list[tuple[float, int, int, str]] = []
    for n, hit in enumerate(hits, start=1):
        for position, sentence in enumerate(_SENTENCE.split(" ".join(hit.text.split()))):
            words = {w.lower() for w in _WORD.findall(sentence)}
            overlap = len(wanted & words) / (1 + len(wanted))
            # Earlier passages rank higher; ties keep reading order.
            scored.append((overlap - 0.01 * n, n, position, sentence))
    best = sorted(scored, key=lambda s: s[0], reverse=True)[:max_sentences]
    ordered = sorted(best, key=lambda s: (s[1], s[2]))
    return " ".join(f"{sentence} [{n}]" for _, n, _, sentence in ordered if sentence)


async def stream_words(text: str) -> AsyncIterator[str]:
    """Yield the answer in word-sized tokens, as a model would stream it."""
    for token in re.findall(r"\S+\s*", text):
        yield token


def build_prompt(
    question: str, hits: Sequence[SearchHit], history: Sequence[dict[str, str]]
) -> list[dict[str, str]]:
    passages = "\n\n".join(
        f"[{i}] ({h.source}{f', page {h.page}' if h.page else ''})\n{h.text}"
        for i, h in enumerate(hits, start=1)
    )
    system = (
        "Answer the question using only the numbered passages. Cite passages like [1]. "
        "If the passages do not contain the answer, say so.\n\nPassages:\n" + passages
    )
    return [{"role": "system", "content": system}, *history, {"role": "user", "content": question}]


class ChatModel:
    """POST {url}/chat/completions with stream=true; yields content deltas."""

    def __init__(self, *, url: str, model: str, api_key: str | None, timeout_s: float) -> None:
        self._endpoint = url.rstrip("/") + "/chat/completions"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout_s

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        body = {"model": self._model, "messages": messages, "stream": True}
        async with (
            httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client,
            client.stream("POST", self._endpoint, json=body) as response,
        ):
            if response.status_code >= 400:
                detail = (await response.aread()).decode(errors="replace")[:300]
                raise QueryError(
                    f"chat endpoint {self._endpoint} answered HTTP {response.status_code}: {detail}"
                )
            async for line in response.aiter_lines():
                delta = _delta_from_sse_line(line)
                if delta is None:
                    continue
                if delta == "":
                    continue
                yield delta


def _delta_from_sse_line(line: str) -> str | None:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        choice = json.loads(data)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    content = (choice.get("delta") or {}).get("content")
    return content if isinstance(content, str) else None
