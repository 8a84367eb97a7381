"""What the sync and async clients share: problems to exceptions, Retry-After,
Server-Sent Events, and the chat answer's shape. No I/O here."""

from __future__ import annotations

import json
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import BaseModel

from ingest.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadRejected,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    WaitTimedOut,
)
from ingest.models import JobOut
from ingest.vocabulary import JobStatus

API = "/api/v1"
USER_AGENT = "ingest-client"
# Statuses a request is sent again for, after the server's Retry-After: the server
# refused it before doing anything (rate limit, queue full), so a retry is safe.
RETRYABLE = frozenset({429, 503})
FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD})

_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthError,
    403: PermissionDenied,
    404: NotFoundError,
    405: BadRequestError,
    409: ConflictError,
    413: PayloadRejected,
    415: PayloadRejected,
    422: BadRequestError,
    429: RateLimited,
    503: ServiceUnavailable,
}


class Citation(BaseModel):
    n: int
    document_id: str
    chunk_id: str
    source: str
    page: int | None = None
    heading: str | None = None


class ChatAnswer(BaseModel):
    """The `done` event of `POST /api/v1/chat`: the whole answer and its sources."""

    session_id: str
    answer: str
    citations: list[Citation]
    history_messages: int


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the API sends delta-seconds), or None."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def retry_delay(response: httpx.Response, attempt: int, max_wait: float) -> float | None:
    """How long to wait before sending again, or None when we should not."""
    if response.status_code not in RETRYABLE:
        return None
    after = retry_after_seconds(response)
    delay = after if after is not None else min(2.0**attempt, 30.0)
    return min(delay, max_wait)


def raise_for_problem(response: httpx.Response) -> None:
    """An error answer becomes the ApiError subclass of its status family."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    cls = _BY_STATUS.get(response.status_code, ServerError)
    raise cls(
        response.status_code,
        str(problem.get("type") or "about:blank"),
        str(problem.get("title") or response.reason_phrase or "HTTP error"),
        problem.get("detail") if isinstance(problem.get("detail"), str) else None,
        problem=problem,
        retry_after=retry_after_seconds(response),
    )


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def upload_form(collection: str | None, metadata: dict[str, Any] | None) -> dict[str, str]:
    data: dict[str, str] = {}
    if collection is not None:
        data["collection"] = collection
    if metadata:
        data["metadata"] = json.dumps(metadata)
    return data


def open_files(
    paths: Sequence[str | os.PathLike[str]],
) -> list[tuple[str, tuple[str, IO[bytes], str]]]:
    """The multipart `files` parts; the caller closes each handle."""
    parts: list[tuple[str, tuple[str, IO[bytes], str]]] = []
    for raw in paths:
        path = Path(raw)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts.append(("files", (path.name, path.open("rb"), kind)))
    return parts


def close_files(parts: Iterable[tuple[str, tuple[str, IO[bytes], str]]]) -> None:
    for _, (_, handle, _) in parts:
        handle.close()


def search_body(
    query: str,
    k: int,
    collection: str | None,
    filters: dict[str, Any] | None,
    mode: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "k": k, "mode": mode}
    if collection is not None:
        body["collection"] = collection
    if filters:
        body["filters"] = filters
    return body


def chat_body(
    message: str, session_id: str | None, collection: str | None, k: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    for key, value in (("session_id", session_id), ("collection", collection), ("k", k)):
        if value is not None:
            body[key] = value
    return body


def source_body(
    location: str,
    collection: str,
    every: str,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
) -> dict[str, Any]:
    return {
        "location": location,
        "collection": collection,
        "every": every,
        "include": list(include or []),
        "exclude": list(exclude or []),
    }


def list_params(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def is_final(job: JobOut) -> bool:
    return job.status in FINAL


Progress = Callable[[JobOut], None]


class Waiting:
    """The bookkeeping of `Client.wait` and `AsyncClient.wait`, without I/O: which jobs
    are still moving (only those are read again), `progress` on every change, backoff
    while nothing changes, and the deadline, which also bounds waiting out a 429/503."""

    def __init__(
        self,
        job_ids: Sequence[str],
        progress: Progress | None,
        timeout: float | None,
        poll_interval: float,
        max_poll_interval: float,
    ) -> None:
        self.job_ids = list(job_ids)
        self.progress = progress
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.interval = poll_interval
        self.final: dict[str, JobOut] = {}
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.changed = False

    def pending(self) -> list[str]:
        """The jobs to read this round: each not-yet-final id once, in the order asked."""
        return [j for j in dict.fromkeys(self.job_ids) if j not in self.final]

    def note(self, job: JobOut) -> None:
        fingerprint = (job.status, job.progress, job.stage, job.message, job.attempt)
        if self.seen.get(job.job_id) != fingerprint:
            self.seen[job.job_id] = fingerprint
            self.changed = True
            if self.progress is not None:
                self.progress(job)
        if is_final(job):
            self.final[job.job_id] = job

    def done(self) -> bool:
        return not self.pending()

    def result(self) -> list[JobOut]:
        return [self.final[j] for j in self.job_ids]

    def next_sleep(self) -> float:
        """Seconds until the next round (never past the deadline); WaitTimedOut if the
        deadline has passed. Back to the shortest interval after a change."""
        if self.changed:
            self.interval = self.poll_interval
        else:
            self.interval = min(self.interval * 1.5, self.max_poll_interval)
        self.changed = False
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise self._timed_out()
        return self.interval if remaining is None else min(self.interval, remaining)

    def refused(self, exc: RateLimited | ServiceUnavailable) -> None:
        """The server still refused after the client's retries: WaitTimedOut when its
        Retry-After reaches past the deadline (the retries stopped for that), else
        the refusal itself."""
        remaining = self._remaining()
        if remaining is not None and (exc.retry_after or 0.0) >= remaining:
            raise self._timed_out() from exc
        raise exc

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _timed_out(self) -> WaitTimedOut:
        left = len(self.pending())
        return WaitTimedOut(f"{left} job(s) not final after {self.timeout:g} s")


def past(deadline: float | None, delay: float) -> bool:
    """Would waiting `delay` seconds from now end after `deadline`?"""
    return deadline is not None and time.monotonic() + delay > deadline


class SseParser:
    """Feeds text/event-stream lines; yields (event, data) as each event completes."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[tuple[str, str]]:
        if not line:
            if self._data:
                yield self._event, "\n".join(self._data)
            self._event, self._data = "message", []
            return
        if line.startswith(":"):
            return  # a comment: the server's keep-alive ping
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)


def chat_event(event: str, data: str) -> str | ChatAnswer:
    """A token's text, or the final answer; an `error` event raises."""
    payload = json.loads(data)
    if event == "token":
        return str(payload["text"])
    if event == "done":
        return ChatAnswer.model_validate(payload)
    if event == "error":
        raise ServerError(200, "urn:ingest:problem:chat-error", "Chat failed", payload.get("error"))
    return ""
