"""`AsyncClient`: the same API as `Client`, for asyncio / anyio code (httpx)."""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx

from ingest.client._common import (
    API,
    ChatAnswer,
    Progress,
    SseParser,
    Waiting,
    auth_headers,
    chat_body,
    chat_event,
    close_files,
    list_params,
    open_files,
    past,
    raise_for_problem,
    retry_delay,
    search_body,
    source_body,
    upload_form,
)
from ingest.errors import RateLimited, ServerUnreachable, ServiceUnavailable
from ingest.models import (
    ChunkOut,
    ChunkPage,
    DocumentOut,
    DocumentPage,
    HitOut,
    JobOut,
    JobPage,
    QueuedUpload,
    ReadinessOut,
    SearchResponse,
    SourceAdded,
    SourceOut,
    SourcePage,
    StatusOut,
    UploadAccepted,
)


class AsyncClient:
    """`Client`, awaitable: `async with AsyncClient(url, key) as c: await c.search(...)`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self.jobs = AsyncJobs(self)
        self.documents = AsyncDocuments(self)
        self.sources = AsyncSources(self)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        files_factory = kwargs.pop("files", None)
        attempt = 0
        while True:
            files = files_factory() if callable(files_factory) else files_factory
            try:
                request = self._http.build_request(method, path, files=files, **kwargs)
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise ServerUnreachable(f"{method} {path}: {exc}") from exc
            finally:
                if callable(files_factory) and files:
                    close_files(files)
            delay = retry_delay(response, attempt, self.max_retry_wait)
            if delay is None or attempt >= self.max_retries or past(deadline, delay):
                break
            await response.aclose()
            attempt += 1
            await anyio.sleep(delay)  # the server asked us to wait this long
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise_for_problem(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._send(method, path, **kwargs)).json()

    async def health(self) -> ReadinessOut:
        try:
            response = await self._http.get("/health/ready")
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"GET /health/ready: {exc}") from exc
        if response.status_code not in (200, 503):
            raise_for_problem(response)
        return ReadinessOut.model_validate(response.json())

    async def status(self) -> StatusOut:
        """Documents by status, jobs by queue and status, workers, integrity."""
        return StatusOut.model_validate(await self._json("GET", f"{API}/status"))

    async def upload(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> list[QueuedUpload]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = await self._json(
            "POST",
            f"{API}/documents",
            files=lambda: open_files(paths),
            data=upload_form(collection, metadata),
            headers=headers,
        )
        return UploadAccepted.model_validate(body).jobs

    async def wait(
        self,
        job_ids: Sequence[str],
        *,
        progress: Progress | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.2,
        max_poll_interval: float = 2.0,
    ) -> list[JobOut]:
        """`Client.wait`, awaitable."""
        waiting = Waiting(job_ids, progress, timeout, poll_interval, max_poll_interval)
        while True:
            for job_id in waiting.pending():
                try:
                    body = await self._json(
                        "GET", f"{API}/jobs/{job_id}", deadline=waiting.deadline
                    )
                except (RateLimited, ServiceUnavailable) as refused:
                    waiting.refused(refused)
                waiting.note(JobOut.model_validate(body))
            if waiting.done():
                return waiting.result()
            await anyio.sleep(waiting.next_sleep())  # polling interval between status reads

    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        collection: str | None = None,
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
    ) -> list[HitOut]:
        body = search_body(query, k, collection, filters, mode)
        answer = await self._json("POST", f"{API}/search", json=body)
        return SearchResponse.model_validate(answer).results

    def ask(
        self,
        message: str,
        *,
        session_id: str | None = None,
        collection: str | None = None,
        k: int | None = None,
    ) -> AsyncChatStream:
        """`async for text in client.ask(...)`, then `.answer`."""
        return AsyncChatStream(self, chat_body(message, session_id, collection, k))


class AsyncChatStream:
    def __init__(self, client: AsyncClient, body: dict[str, Any]) -> None:
        self._client = client
        self._body = body
        self.answer: ChatAnswer | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        parser = SseParser()
        response = await self._client._send("POST", f"{API}/chat", json=self._body, stream=True)
        try:
            async for line in response.aiter_lines():
                for event, data in parser.feed(line):
                    item = chat_event(event, data)
                    if isinstance(item, ChatAnswer):
                        self.answer = item
                    elif item:
                        yield item
        finally:
            await response.aclose()

    async def result(self) -> ChatAnswer:
        if self.answer is None:
            async for _ in self:
                pass
        assert self.answer is not None, "the chat stream ended without a done event"
        return self.answer


class AsyncJobs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def list(
        self,
        *,
        status: Sequence[str] | None = None,
        kind: str | None = None,
        queue: str | None = None,
        document_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobOut]:
        params = list_params(
            status=list(status) if status else None,
            kind=kind,
            queue=queue,
            document_id=document_id,
            limit=limit,
            offset=offset,
        )
        return JobPage.model_validate(await self._c._json("GET", f"{API}/jobs", params=params)).jobs

    async def get(self, job_id: str) -> JobOut:
        return JobOut.model_validate(await self._c._json("GET", f"{API}/jobs/{job_id}"))

    async def cancel(self, job_id: str) -> JobOut:
        return JobOut.model_validate(await self._c._json("DELETE", f"{API}/jobs/{job_id}"))

    async def retry(self, job_id: str) -> JobOut:
        return JobOut.model_validate(await self._c._json("POST", f"{API}/jobs/{job_id}/retry"))


class AsyncDocuments:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def list(
        self,
        *,
        collection: str | None = None,
        status: str | None = None,
        source_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
        parent_id: str | None = None,
    ) -> DocumentPage:
        params = list_params(
            collection=collection,
            status=status,
            source_prefix=source_prefix,
            parent_id=parent_id,
            limit=limit,
            offset=offset,
        )
        return DocumentPage.model_validate(
            await self._c._json("GET", f"{API}/documents", params=params)
        )

    async def get(self, document_id: str) -> DocumentOut:
        body = await self._c._json("GET", f"{API}/documents/{document_id}")
        return DocumentOut.model_validate(body)

    async def chunks(
        self, document_id: str, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[ChunkOut]:
        body = await self._c._json(
            "GET",
            f"{API}/documents/{document_id}/chunks",
            params={"limit": limit, "offset": offset},
        )
        return ChunkPage.model_validate(body).chunks

    async def delete(self, document_id: str) -> None:
        await (await self._c._send("DELETE", f"{API}/documents/{document_id}")).aclose()


class AsyncSources:
    """Synced sources: admins add, sync and remove; viewers list and read."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def add(
        self,
        location: str,
        *,
        collection: str = "default",
        every: str = "1h",
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> SourceAdded:
        """Add a folder (under the server's INGEST_SOURCE_ROOTS) or s3://bucket/prefix;
        its first sync is queued (`.job`)."""
        body = source_body(location, collection, every, include, exclude)
        return SourceAdded.model_validate(await self._c._json("POST", f"{API}/sources", json=body))

    async def list(self) -> builtins.list[SourceOut]:
        return SourcePage.model_validate(await self._c._json("GET", f"{API}/sources")).sources

    async def get(self, source_id: str) -> SourceOut:
        return SourceOut.model_validate(await self._c._json("GET", f"{API}/sources/{source_id}"))

    async def sync(self, source_id: str) -> JobOut:
        """Queue a sync now; its job's `result` is the sync report once it ends."""
        body = await self._c._json("POST", f"{API}/sources/{source_id}/sync")
        return JobOut.model_validate(body)

    async def remove(self, source_id: str) -> None:
        await (await self._c._send("DELETE", f"{API}/sources/{source_id}")).aclose()
