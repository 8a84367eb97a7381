"""An `ingest` process reads its settings once and hands them to every command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.cli import common
from ingest.cli.app import main
from ingest.settings import Settings


def test_a_command_builds_its_settings_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[Settings] = []
    original = Settings.__init__

    def counting(self: Settings, **values: Any) -> None:
        original(self, **values)
        built.append(self)

    monkeypatch.setattr(Settings, "__init__", counting)
    monkeypatch.setattr(common, "_process_settings", None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'once.db'}")
    monkeypatch.setattr(sys, "argv", ["ingest", "status", "--json"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert len(built) == 1
