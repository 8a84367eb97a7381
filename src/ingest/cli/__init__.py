"""The `ingest` command."""

from ingest.cli.app import app, main

__all__ = ["app", "main"]
