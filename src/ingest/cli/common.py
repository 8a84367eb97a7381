"""Helpers every command shares: consoles, JSON output, the service context."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from ingest.context import Context
from ingest.errors import IngestError
from ingest.settings import load_settings

err = Console(stderr=True)
out = Console()


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def service_context() -> Iterator[Context]:
    """Build the services from the environment; IngestErrors become a clean exit 2."""
    try:
        ctx = Context(load_settings())
    except IngestError as exc:
        raise fail(str(exc)) from exc
    try:
        yield ctx
    except IngestError as exc:
        raise fail(str(exc)) from exc
    finally:
        ctx.close()


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        parsed[key] = value
    return parsed
