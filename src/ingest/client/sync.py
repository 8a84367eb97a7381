"""`Client`: the HTTP API from Python, blocking (httpx)."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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


class Client:
    """One `ingest serve`, typed with the models the API publishes (`ingest.models`).

    Error answers raise `ingest.errors.ApiError` subclasses; 429 and 503 are sent again
    after the server's Retry-After, at most `max_retries` times."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self.jobs = Jobs(self)
        self.documents = Documents(self)
        self.sources = Sources(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, sent again on 429/503 after Retry-After (not when that would
        end past `deadline`, a time.monotonic()); errors raised.
        `files` may be a callable that opens them afresh for every attempt."""
        files_factory = kwargs.pop("files", None)
        attempt = 0
        while True:
            files = files_factory() if callable(files_factory) else files_factory
            try:
                request = self._http.build_request(method, path, files=files, **kwargs)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise ServerUnreachable(f"{method} {path}: {exc}") from exc
            finally:
                if callable(files_factory) and files:
                    close_files(files)
            delay = retry_delay(response, attempt, self.max_retry_wait)
            if delay is None or attempt >= self.max_retries or past(deadline, delay):
                break
            response.close()
            attempt += 1
            time.sleep(delay)  # the server asked us to wait this long
        if response.status_code >= 400:
            response.read()
            response.close()
            raise_for_problem(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # --- the API ------------------------------------------------------------------

    def health(self) -> ReadinessOut:
        """`/health/ready`: every check, also when one fails (503)."""
        try:
            response = self._http.get("/health/ready")
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"GET /health/ready: {exc}") from exc
        if response.status_code not in (200, 503):
            raise_for_problem(response)
        return ReadinessOut.model_validate(response.json())

    def status(self) -> StatusOut:
        """Documents by status, jobs by queue and status, workers, integrity."""
        return StatusOut.model_validate(self._json("GET", f"{API}/status"))

    def upload(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> list[QueuedUpload]:
        """Upload files in one request: every one is queued, or none (an ApiError)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = self._json(
            "POST",
            f"{API}/documents",
            files=lambda: open_files(paths),
            data=upload_form(collection, metadata),
            headers=headers,
        )
        return UploadAccepted.model_validate(body).jobs

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        progress: Progress | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.2,
        max_poll_interval: float = 2.0,
    ) -> list[JobOut]:
        """Poll until every job is final (succeeded, failed, cancelled, dead); the
        jobs in the order asked. Each round reads only the jobs not final yet (one
        small GET each, never a list), with backoff while nothing changes; `progress`
        sees each job whenever it changes. A 429/503 is waited out after its
        Retry-After like any call, but never past `timeout`: WaitTimedOut then."""
        waiting = Waiting(job_ids, progress, timeout, poll_interval, max_poll_interval)
        while True:
            for job_id in waiting.pending():
                try:
                    body = self._json("GET", f"{API}/jobs/{job_id}", deadline=waiting.deadline)
                except (RateLimited, ServiceUnavailable) as refused:
                    waiting.refused(refused)
                waiting.note(JobOut.model_validate(body))
            if waiting.done():
                return waiting.result()
            time.sleep(waiting.next_sleep())  # polling interval between status reads

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        collection: str | None = None,
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
    ) -> list[HitOut]:
        body = search_body(query, k, collection, filters, mode)
        return SearchResponse.model_validate(self._json("POST", f"{API}/search", json=body)).results

    def ask(
        self,
        message: str,
        *,
        session_id: str | None = None,
        collection: str | None = None,
        k: int | None = None,
    ) -> ChatStream:
        """Iterate the returned stream for the answer's text as it is written; then
        `.answer` holds the whole answer with its citations."""
        return ChatStream(self, chat_body(message, session_id, collection, k))

    @contextmanager
    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        response = self._send("POST", path, json=body, stream=True)
        try:
            yield response
        finally:
            response.close()


class ChatStream:
    """`for text in client.ask(...)`, then `.answer`."""

    def __init__(self, client: Client, body: dict[str, Any]) -> None:
        self._client = client
        self._body = body
        self.answer: ChatAnswer | None = None

    def __iter__(self) -> Iterator[str]:
        parser = SseParser()
        with self._client._stream(f"{API}/chat", self._body) as response:
            for line in response.iter_lines():
                for event, data in parser.feed(line):
                    item = chat_event(event, data)
                    if isinstance(item, ChatAnswer):
                        self.answer = item
                    elif item:
                        yield item

    def result(self) -> ChatAnswer:
        """Read the whole stream (if not yet) and return the final answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None, "the chat stream ended without a done event"
        return self.answer


class Jobs:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(
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
        return JobPage.model_validate(self._c._json("GET", f"{API}/jobs", params=params)).jobs

    def get(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._c._json("GET", f"{API}/jobs/{job_id}"))

    def cancel(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._c._json("DELETE", f"{API}/jobs/{job_id}"))

    def retry(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._c._json("POST", f"{API}/jobs/{job_id}/retry"))


class Documents:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(
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
        return DocumentPage.model_validate(self._c._json("GET", f"{API}/documents", params=params))

    def get(self, document_id: str) -> DocumentOut:
        return DocumentOut.model_validate(self._c._json("GET", f"{API}/documents/{document_id}"))

    def chunks(
        self, document_id: str, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[ChunkOut]:
        body = self._c._json(
            "GET",
            f"{API}/documents/{document_id}/chunks",
            params={"limit": limit, "offset": offset},
        )
        return ChunkPage.model_validate(body).chunks

    def delete(self, document_id: str) -> None:
        self._c._send("DELETE", f"{API}/documents/{document_id}").close()


class Sources:
    """Synced sources: admins add, sync and remove; viewers list and read."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def add(
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
        return SourceAdded.model_validate(self._c._json("POST", f"{API}/sources", json=body))

    def list(self) -> builtins.list[SourceOut]:
        return SourcePage.model_validate(self._c._json("GET", f"{API}/sources")).sources

    def get(self, source_id: str) -> SourceOut:
        return SourceOut.model_validate(self._c._json("GET", f"{API}/sources/{source_id}"))

    def sync(self, source_id: str) -> JobOut:
        """Queue a sync now; its job's `result` is the sync report once it ends."""
        body = self._c._json("POST", f"{API}/sources/{source_id}/sync")
        return JobOut.model_validate(body)

    def remove(self, source_id: str) -> None:
        self._c._send("DELETE", f"{API}/sources/{source_id}").close()
