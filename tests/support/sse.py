"""Reading a text/event-stream response the way a browser's EventSource does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) for each Server-Sent Event as it arrives; comments (pings) skipped."""
    event, data = "message", list[str]()
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


def json_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """sse_events with each data parsed as JSON, as every event of the API is."""
    for event, data in sse_events(response):
        yield event, json.loads(data)
