"""The `ingest` command.

Light on purpose: the `ingest` console script imports `main` from here, and so does
every child process that multiprocessing spawns from it (the parser pool re-runs the
script as its main module). The commands load when `main` runs, not at import; the
Typer application itself is `ingest.cli.app.app`.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from ingest.cli.app import main as run

    run()
