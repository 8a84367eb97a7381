"""`ingest serve` and `ingest keys ...`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ingest.cli.common import audit_cli, audited, err, fail, out, print_json, service_context
from ingest.models import ApiKeyOut
from ingest.store.access import ROLES

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="API processes (uvicorn workers); default INGEST_API_WORKERS."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API. Inline mode also runs the jobs and the scheduler here."""
    import uvicorn

    with service_context() as ctx:
        # Fail fast on bad settings or an out-of-date schema, before binding. The
        # doorbell is built lazily, so build it here: queue mode without REDIS_URL
        # would otherwise serve, then fail every submission.
        ctx.doorbell  # noqa: B018
        processes = workers or ctx.settings.api_workers
        if processes > 1 and ctx.settings.mode == "inline":
            err.print(
                f"warning: {processes} API processes in inline mode each run their own "
                "job worker and scheduler; one is usually right (INGEST_API_WORKERS=1)",
                highlight=False,
            )
    uvicorn.run(
        "ingest.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    with service_context() as ctx:
        secret, record = ctx.store.access.create_key(role, name)
        audit_cli(ctx, "keys create", f"{record.id} ({record.role})")
    if as_json:
        print_json({"key": secret, "role": record.role, "id": record.id, "name": record.name})
    else:
        out.print(secret, highlight=False)


@keys_app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Keys by id, role and prefix (never the secret)."""
    with service_context() as ctx:
        keys = ctx.store.access.list_keys()
    rows = [ApiKeyOut.from_key(k).model_dump(mode="json") for k in keys]
    if as_json:
        print_json({"keys": rows})
        return
    table = Table("id", "name", "role", "prefix", "created", "revoked")
    for r in rows:
        table.add_row(
            *(str(r[c] or "") for c in ("id", "name", "role", "prefix", "created_at", "revoked_at"))
        )
    out.print(table)


@keys_app.command("revoke")
def revoke_key(key_id: str) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    with service_context() as ctx, audited(ctx, "keys revoke", key_id):
        if not ctx.store.access.revoke(key_id):
            raise fail(f"no active key {key_id}")
    out.print(f"revoked {key_id}")
