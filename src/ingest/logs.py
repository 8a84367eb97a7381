"""One log format for the API, workers and scheduler: plain or JSON lines."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import Any

from ingest.settings import Settings

# The request or job a log line belongs to, set by the API middleware and the worker.
log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = log_context.get() or {}
        record.ctx = " ".join(f"{k}={v}" for k, v in ctx.items())
        record.ctx_fields = ctx
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            **getattr(record, "ctx_fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings, *, default_level: str = "warning") -> None:
    """Log lines to stderr; INGEST_LOG_LEVEL, else `default_level` (servers and
    workers pass info: what they do is their output)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(process)d] %(ctx)s %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((settings.log_level or default_level).upper())
