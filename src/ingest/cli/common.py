"""Helpers every command shares: consoles, JSON output, the service context."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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


# The Settings this process's entry point built (main(), worker_main()). A module
# value rather than the CLI context's `obj`: typer runs its own copy of click, so
# click.get_current_context() never sees typer's context.
_process_settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Called once by an entry point: every command of this process uses these."""
    global _process_settings
    _process_settings = settings


def run_settings() -> Settings:
    """The Settings the entry point built once for this process. A command invoked
    without one (a test's CliRunner) builds its own from the environment."""
    if _process_settings is not None:
        return _process_settings
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
