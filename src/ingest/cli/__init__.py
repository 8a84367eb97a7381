"""The `ingest` command.

Light on purpose: the `ingest` console script imports `main` from here, and so does
every child process that multiprocessing spawns from it (the parser pool re-runs the
script as its main module). The commands load when `main` runs, not at import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    from ingest.cli.app import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from ingest.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
