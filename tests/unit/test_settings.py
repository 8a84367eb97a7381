from pathlib import Path

import pytest

from ingest.settings import load_settings


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "REDIS_URL", "INGEST_MODE", "INGEST_MAX_ATTEMPTS"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.mode == "inline"
    assert s.database_url == "sqlite:///./ingest.db"
    assert s.redis_url is None
    assert s.max_attempts == 3
    assert s.incoming_dir == Path("./ingest_incoming")


def test_user_facing_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:1/0")
    monkeypatch.setenv("INGEST_MODE", "queue")
    monkeypatch.setenv("INGEST_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("INGEST_INCOMING_DIR", "/srv/incoming")
    s = load_settings()
    assert (s.database_url, s.redis_url, s.mode) == (
        "sqlite:////tmp/x.db",
        "redis://localhost:1/0",
        "queue",
    )
    assert (s.max_attempts, s.incoming_dir) == (5, Path("/srv/incoming"))


def test_invalid_values_are_rejected_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_MODE", "cluster")
    with pytest.raises(ValueError, match="mode"):
        load_settings()
