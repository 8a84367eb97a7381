"""/api/v1/search and /api/v1/chat (a streamed answer with citations)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from sse_starlette import EventSourceResponse, ServerSentEvent

from ingest.api.problems import problem_responses
from ingest.api.security import Viewer
from ingest.api.services import Services, get_services
from ingest.errors import IngestError
from ingest.models import ChatRequest, HitOut, SearchRequest, SearchResponse
from ingest.query.answers import (
    ChatModel,
    build_prompt,
    citations_for,
    extractive_answer,
    stream_words,
)
from ingest.query.search import SearchHit

router = APIRouter(prefix="/api/v1", tags=["search"])
ServicesDep = Annotated[Services, Depends(get_services)]


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Hybrid search",
    responses=problem_responses(400, 401, 413, 422, 429, 503),
)
def search(services: ServicesDep, principal: Viewer, body: SearchRequest) -> SearchResponse:
    hits = services.ctx.searcher.search(
        body.query, k=body.k, collection=body.collection, filters=body.filters, mode=body.mode
    )
    return SearchResponse(results=[HitOut.from_hit(h) for h in hits])


@router.post(
    "/chat",
    summary="Answer from the indexed documents, streamed as Server-Sent Events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token events, then a done event",
        },
        **problem_responses(400, 401, 413, 422, 429, 503),
    },
)
async def chat(services: ServicesDep, principal: Viewer, body: ChatRequest) -> EventSourceResponse:
    settings = services.ctx.settings
    session_id = body.session_id or uuid.uuid4().hex
    k = body.k or settings.chat_context_chunks
    hits: list[SearchHit] = await anyio.to_thread.run_sync(
        lambda: services.ctx.searcher.search(body.message, k=k, collection=body.collection)
    )
    history = await anyio.to_thread.run_sync(services.memory.history, session_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        parts: list[str] = []
        try:
            async for token in _answer_tokens(services, body.message, hits, history):
                parts.append(token)
                yield ServerSentEvent(data=json.dumps({"text": token}), event="token")
        except IngestError as exc:
            yield ServerSentEvent(data=json.dumps({"error": str(exc)}), event="error")
            return
        answer = "".join(parts)
        await anyio.to_thread.run_sync(services.memory.append, session_id, "user", body.message)
        await anyio.to_thread.run_sync(services.memory.append, session_id, "assistant", answer)
        done = {
            "session_id": session_id,
            "answer": answer,
            "citations": [c.as_dict() for c in citations_for(hits)],
            "history_messages": len(history),
        }
        yield ServerSentEvent(data=json.dumps(done), event="done")

    return EventSourceResponse(events(), ping=int(settings.sse_ping_seconds))


async def _answer_tokens(
    services: Services, question: str, hits: list[SearchHit], history: list[dict[str, str]]
) -> AsyncIterator[str]:
    s = services.ctx.settings
    if s.llm_url:
        model = ChatModel(
            url=s.llm_url,
            model=s.llm_model,
            api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else None,
            timeout_s=s.llm_timeout_s,
        )
        async for token in model.stream(build_prompt(question, hits, history)):
            yield token
        return
    async for token in stream_words(extractive_answer(question, hits)):
        yield token
