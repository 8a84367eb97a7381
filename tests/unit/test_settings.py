from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.settings import Settings, load_settings


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
    with pytest.raises(ConfigError, match="INGEST_MODE='cluster': must be one of"):
        load_settings()


def test_fusion_defaults_follow_the_backend_keyword_ranking() -> None:
    sqlite = Settings(_env_file=None, database_url="sqlite:///x.db")
    assert sqlite.fusion() == {
        "rrf_k": 5,
        "vector_weight": 0.67,
        "keyword_weight": 1.0,
        "candidates": 100,
    }
    postgres = Settings(_env_file=None, database_url="postgresql+psycopg://u@h/db")
    assert postgres.fusion() == {
        "rrf_k": 5,
        "vector_weight": 0.9,
        "keyword_weight": 1.0,
        "candidates": 100,
    }


def test_fusion_settings_a_user_chose_win_on_every_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_FUSION_KEYWORD_WEIGHT", "2")
    postgres = Settings(_env_file=None, database_url="postgresql+psycopg://u@h/db")
    assert postgres.fusion()["keyword_weight"] == 2.0
    assert postgres.fusion()["vector_weight"] == 0.9
