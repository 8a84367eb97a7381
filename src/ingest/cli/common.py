"""Helpers every command shares: consoles, JSON output, the service context."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import typer
from rich.console import Console

from ingest.errors import IngestError
from ingest.settings import Settings, load_settings

if TYPE_CHECKING:
    from ingest.context import Context

err = Console(stderr=True)
out = Console()


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_settings() -> Settings:
    """The Settings `main()` built once for this process. A command invoked without
    main() (a test's CliRunner) builds its own."""
    click_ctx = click.get_current_context(silent=True)
    obj = click_ctx.find_root().obj if click_ctx is not None else None
    if isinstance(obj, Settings):
        return obj
    try:
        return load_settings()
    except IngestError as exc:
        raise fail(str(exc)) from exc


@contextmanager
def service_context() -> Iterator[Context]:
    """Build the services from this run's settings; IngestErrors become a clean exit 2."""
    from ingest.context import Context  # the wiring: heavy, and not every command needs it

    try:
        ctx = Context(run_settings())
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
