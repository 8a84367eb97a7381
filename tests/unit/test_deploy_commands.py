"""Every variable the deployment files set is a setting, every command they run is a
real entry point, and the health checks work against real processes
(see tests/support/deployment.py)."""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.deployment import (
    BIN,
    COMMANDS,
    COMPOSE,
    COMPOSE_LOCAL,
    DEPLOY,
    DOCKERFILE,
    DOCKERIGNORE,
    NON_SETTINGS_VARIABLES,
    PLAIN_TOOLS,
    ROOT,
    Command,
    all_containers,
    command_ids,
    dockerfile_env,
    entry_points,
    ingest_click_command,
    k8s_settings_env,
    pod_templates,
    python_script,
    service_env,
    services,
    settings_env_names,
    settings_from_env,
    subprocess_env,
)
from tests.support.processes import Spawner, free_port, wait_http_ok

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


@pytest.mark.parametrize("command", COMMANDS, ids=command_ids(COMMANDS))
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
