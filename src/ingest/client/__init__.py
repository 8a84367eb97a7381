"""The Python client of the HTTP API: `Client` (blocking) and `AsyncClient`.

    from ingest.client import Client
    with Client("http://localhost:8000", api_key="ingk_...") as c:
        queued = c.upload(["report.pdf"], collection="reports")
        jobs = c.wait([q.job_id for q in queued], timeout=600)
        hits = c.search("quarterly revenue", k=5)

Answers are the pydantic models of `ingest.models`. Error answers (RFC 9457 problems)
raise the `ApiError` family of `ingest.errors`, re-exported here: they are transport
errors of this client, never raised by the server's own code.
"""

from ingest.client._common import ChatAnswer, Citation
from ingest.client.asynchronous import AsyncChatStream, AsyncClient
from ingest.client.sync import ChatStream, Client
from ingest.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ClientError,
    ConflictError,
    NotFoundError,
    PayloadRejected,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServerUnreachable,
    ServiceUnavailable,
    WaitTimedOut,
)

__all__ = [
    "ApiError",
    "AsyncChatStream",
    "AsyncClient",
    "AuthError",
    "BadRequestError",
    "ChatAnswer",
    "ChatStream",
    "Citation",
    "Client",
    "ClientError",
    "ConflictError",
    "NotFoundError",
    "PayloadRejected",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "ServerUnreachable",
    "ServiceUnavailable",
    "WaitTimedOut",
]
