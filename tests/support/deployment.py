"""The deployment files (Dockerfile, compose, nginx, Kubernetes) loaded for the
tests/unit/test_deploy_*.py checks, and every command they run."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import crossplane
import kubernetes_validate.utils as kubernetes_validate
import pytest
import typer
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import AliasChoices

from ingest.cli.app import app as ingest_cli
from ingest.cli.jobs_cmd import worker as worker_command
from ingest.settings import Settings

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


def interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    return node


@cache
def compose_file(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict)
    tree: dict[str, Any] = interpolate_tree(raw, COMPOSE_VARIABLES)
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
        for target, spec in depends_on(svc).items():
            if spec.get("condition") == "service_completed_successfully":
                names.add(target)
    return names


def depends_on(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
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


def command_ids(commands: list[Command]) -> list[str]:
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


# --- shared by the compose and Kubernetes checks -----------------------------------


def duration_seconds(duration: str | int | float) -> float:
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def mebibytes(size: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG])(i|b|ib|B)?", str(size))
    assert match, size
    factor = {"k": 1 / 1024, "m": 1.0, "g": 1024.0}[match.group(2).lower()]
    return float(match.group(1)) * factor


def shutdown_needs(settings: Settings) -> float:
    return (
        settings.shutdown_grace_seconds
        + HAND_BACK_SECONDS_PER_JOB * settings.concurrency
        + MARGIN_SECONDS
    )


# --- nginx -------------------------------------------------------------------------


@cache
def nginx_config() -> list[dict[str, Any]]:
    parsed = crossplane.parse(str(NGINX), check_ctx=True, check_args=True, comments=False)
    assert parsed["status"] == "ok", parsed["errors"]
    config: list[dict[str, Any]] = parsed["config"][0]["parsed"]
    return config


def nginx_block(directives: list[dict[str, Any]], name: str, *args: str) -> list[dict[str, Any]]:
    for d in directives:
        if d["directive"] == name and list(d["args"][: len(args)]) == list(args):
            block: list[dict[str, Any]] = d["block"]
            return block
    raise AssertionError(f"no {name} {' '.join(args)} block")


def nginx_values(directives: list[dict[str, Any]], name: str) -> list[list[str]]:
    return [d["args"] for d in directives if d["directive"] == name]


def nginx_http() -> list[dict[str, Any]]:
    return nginx_block(nginx_config(), "http")


def nginx_server() -> list[dict[str, Any]]:
    return nginx_block(nginx_http(), "server")


def nginx_listen_port() -> str:
    (listen,) = nginx_values(nginx_server(), "listen")
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


def nginx_effective(location: list[dict[str, Any]], name: str) -> list[list[str]]:
    """nginx inheritance: a level's own directives replace ALL inherited ones."""
    for level in (location, nginx_server(), nginx_http()):
        values = nginx_values(level, name)
        if values:
            return values
    return []


def nginx_seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|)", value)
    assert match, value
    return int(match.group(1)) * units[match.group(2)]


def nginx_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return (
        int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    )


@cache
def compose_schema() -> dict[str, Any]:
    """The compose-spec schema vendored by check-jsonschema (no network)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


K8S_VERSIONS = [kubernetes_validate.all_versions()[0], kubernetes_validate.latest_version()]
