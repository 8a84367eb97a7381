"""Helpers every command shares: consoles, JSON output, the service context."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from ingest.errors import IngestError
from ingest.settings import Settings, load_settings
from ingest.store.engine import describe_database, sqlite_file_of

if TYPE_CHECKING:
    from ingest.context import Context

err = Console(stderr=True)
out = Console()


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def exit_now(code: int) -> NoReturn:
    """Exit without waiting for this process's job threads. After Ctrl-C handed their
    attempts back, whatever they might still write is fenced out; waiting for them
    to reach a checkpoint is what made Ctrl-C take half a minute."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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


def database_label(settings: Settings) -> str:
    """The database a command uses, as a user would recognise it: the SQLite file's
    absolute path, or the URL without its password."""
    return describe_database(settings.database_url)


def empty_database_note(settings: Settings) -> str:
    return (
        f"the database {database_label(settings)} holds no documents: "
        "`ingest add PATH` adds some, or set DATABASE_URL to the database you meant"
    )


def sqlite_file_to_create(settings: Settings) -> Path | None:
    """The SQLite file this run will create, if the settings name one that does not
    exist yet."""
    path = sqlite_file_of(settings.database_url)
    return None if path is None or path.exists() else path


def say_if_created(settings: Settings, path: Path | None) -> None:
    """One stderr line when this command created the SQLite file: run from another
    directory, the default ./ingest.db is a new, empty one, and should not pass silently."""
    if path is not None and path.exists():
        err.print(
            f"created a new, empty database {path} (set DATABASE_URL to use another)",
            highlight=False,
            soft_wrap=True,
        )


@contextmanager
def service_context() -> Iterator[Context]:
    """Build the services from this run's settings; IngestErrors become a clean exit 2."""
    from ingest.context import Context  # the wiring: heavy, and not every command needs it

    settings = run_settings()
    try:
        new_file = sqlite_file_to_create(settings)
        ctx = Context(settings)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    say_if_created(settings, new_file)
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


def cli_actor() -> str:
    """Who ran an admin command, for the audit log: `cli:<os user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container's uid with no name
        return f"cli:uid {os.getuid()}"


def audit_cli(
    ctx: Context, action: str, target: str, *, outcome: str = "success", code: int = 0
) -> None:
    """Write an admin action of the CLI to the audit log, as the API does its calls:
    actor `cli:<os user>`, source `cli`, and the exit code as its status."""
    ctx.store.access.audit(
        actor=cli_actor(),
        source_ip="cli",
        action=action,
        target=target,
        outcome=outcome,
        status_code=code,
        request_id=None,
    )


@contextmanager
def audited(ctx: Context, action: str, target: str) -> Iterator[None]:
    """Audit the action in the block: an error, or a success."""
    try:
        yield
    except IngestError:
        audit_cli(ctx, action, target, outcome="error", code=2)
        raise
    except typer.Exit as exc:
        outcome = "error" if exc.exit_code else "success"
        audit_cli(ctx, action, target, outcome=outcome, code=exc.exit_code)
        raise
    audit_cli(ctx, action, target)
