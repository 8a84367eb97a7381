"""Compose files: valid compose-spec, healthchecks, one shared incoming volume, grace
periods that outlast the worker's shutdown (see tests/support/deployment.py)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.deployment import (
    COMPOSE,
    COMPOSE_LOCAL,
    NGINX,
    ROOT,
    WORKER_BASELINE_MB,
    compose_file,
    compose_schema,
    depends_on,
    duration_seconds,
    ingest_services,
    mebibytes,
    nginx_listen_port,
    one_off_services,
    service_env,
    services,
    settings_from_env,
    shutdown_needs,
    volume_mounts,
)

# --- compose -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_LOCAL], ids=lambda p: p.name)
def test_compose_file_is_valid_compose_spec(path: Path) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose_file(path))
    ]
    assert errors == []


def test_the_compose_schema_check_catches_mistakes() -> None:
    broken = json.loads(json.dumps(compose_file(COMPOSE)))
    broken["services"]["worker"]["stop_grace_perod"] = "60s"
    validator_class = jsonschema.validators.validator_for(compose_schema())
    assert list(validator_class(compose_schema()).iter_errors(broken))


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_LOCAL], ids=lambda p: p.name)
def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy(path: Path) -> None:
    one_off = one_off_services(path)
    for name, svc in services(path).items():
        if name in one_off:
            assert svc.get("restart", "no") in ("no", "on-failure"), name
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} has its healthcheck disabled"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_LOCAL], ids=lambda p: p.name)
def test_dependencies_exist_and_wait_for_health_or_completion(path: Path) -> None:
    all_services = services(path)
    for name, svc in all_services.items():
        for target, spec in depends_on(svc).items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {target}: wait for health or completion, not just a start"
            )
            if condition == "service_healthy":
                assert all_services[target].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )


def test_scale_out_compose_runs_queue_mode_on_postgres_and_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svcs = services(COMPOSE)
    assert {"api", "worker", "scheduler", "migrate", "redis", "postgres"} <= set(svcs)
    for name, svc in ingest_services(COMPOSE).items():
        settings = settings_from_env(monkeypatch, service_env(svc))
        assert settings.mode == "queue", name
        assert settings.database_url.startswith("postgresql+psycopg://"), name
        assert settings.database_url.split("@")[1].startswith("postgres:5432/"), name
        assert str(settings.redis_url).startswith("redis://redis:6379"), name


def test_migrate_runs_once_before_every_other_ingest_process() -> None:
    svcs = ingest_services(COMPOSE)
    assert list(svcs["migrate"]["command"]) == ["ingest", "migrate"]
    assert depends_on(svcs["migrate"])["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "scheduler"):
        depends = depends_on(svcs[name])
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_redis_and_postgres_are_durable_and_checked() -> None:
    svcs = services(COMPOSE)
    redis_command = list(svcs["redis"]["command"])
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert "redis-cli" in svcs["redis"]["healthcheck"]["test"]
    assert "ping" in svcs["redis"]["healthcheck"]["test"]
    assert svcs["postgres"]["image"] == "pgvector/pgvector:pg16"
    assert "pg_isready" in " ".join(svcs["postgres"]["healthcheck"]["test"])
    declared = compose_file(COMPOSE).get("volumes") or {}
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        assert volume_mounts(svcs[name]).get(path) in declared, f"{name} data is not on a volume"


def test_incoming_dir_is_one_named_volume_shared_by_api_and_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svcs = ingest_services(COMPOSE)
    declared = compose_file(COMPOSE).get("volumes") or {}
    found = {}
    for name in ("api", "worker"):
        incoming = str(settings_from_env(monkeypatch, service_env(svcs[name])).incoming_dir)
        source = volume_mounts(svcs[name]).get(incoming)
        assert source, f"{name}: nothing is mounted at INGEST_INCOMING_DIR={incoming}"
        assert source in declared, f"{name}: {source} is not a named volume"
        found[name] = (incoming, source)
    assert found["api"] == found["worker"], found


def test_compose_worker_outlasts_its_shutdown_and_its_parsers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = ingest_services(COMPOSE)["worker"]
    settings = settings_from_env(monkeypatch, service_env(worker))
    assert duration_seconds(worker["stop_grace_period"]) >= shutdown_needs(settings)
    limit = mebibytes(worker["deploy"]["resources"]["limits"]["memory"])
    assert limit >= WORKER_BASELINE_MB + settings.concurrency * settings.parse_memory_mb


def test_workers_scale_out() -> None:
    worker = ingest_services(COMPOSE)["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker, "would block --scale"
    assert "ports" not in worker, "would block --scale"
    assert "--scale worker=" in (ROOT / "docs" / "deployment.md").read_text()


def test_api_replicas_are_reached_through_nginx() -> None:
    svcs = services(COMPOSE)
    assert "ports" not in svcs["api"], "the API is published through nginx only"
    nginx = svcs["nginx"]
    config_source = volume_mounts(nginx)["/etc/nginx/nginx.conf"]
    assert (COMPOSE.parent / config_source).resolve() == NGINX
    published = [str(p).rsplit(":", 1)[1] for p in nginx["ports"]]
    assert published == [nginx_listen_port()]
    assert depends_on(nginx)["api"]["condition"] == "service_healthy"


def test_local_compose_is_one_inline_service_on_a_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    svcs = services(COMPOSE_LOCAL)
    assert len(svcs) == 1
    (svc,) = svcs.values()
    env = service_env(svc)
    settings = settings_from_env(monkeypatch, env)
    assert settings.mode == "inline"
    assert settings.redis_url is None
    assert settings.is_sqlite
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    mounts = volume_mounts(svc)
    declared = compose_file(COMPOSE_LOCAL).get("volumes") or {}

    def on_volume(path: Path) -> bool:
        return any(
            path.is_relative_to(target) and source in declared for target, source in mounts.items()
        )

    assert on_volume(database), f"{database} is not on a named volume"
    assert on_volume(Path(settings.incoming_dir)), "the incoming dir is not on a volume"
    assert env.get("INGEST_API_WORKERS") == "1", "inline: one API process runs the jobs"
