"""The S3 staging variants of the deployment files, checked offline: the compose
override (deploy/docker-compose.s3.yml, MinIO) merged onto the base file, and the
kustomize overlay (deploy/k8s-s3) applied to the base manifests. Both must give every
ingest process INGEST_STORAGE=s3 and leave no shared incoming volume."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.deployment import (
    COMPOSE,
    COMPOSE_VARIABLES,
    DEPLOY,
    K8S_VERSIONS,
    NON_SETTINGS_VARIABLES,
    ROOT,
    compose_file,
    compose_schema,
    depends_on,
    interpolate_tree,
    k8s_documents,
    service_env,
    settings_env_names,
    settings_from_env,
    volume_mounts,
)

COMPOSE_S3 = DEPLOY / "docker-compose.s3.yml"
OVERLAY = DEPLOY / "k8s-s3"
S3_VARIABLES = {**COMPOSE_VARIABLES, "MINIO_ROOT_PASSWORD": "test-minio-password"}


# --- compose: the base file with the override merged, as `docker compose -f -f` does ------


class _Reset:
    """Compose's `!reset` tag: the key's value from earlier files is dropped."""


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def _merge(base: Any, override: Any) -> Any:
    if isinstance(override, _Reset):
        return None
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            result = _merge(base.get(key), value)
            if result is None and isinstance(value, _Reset):
                merged.pop(key, None)
            else:
                merged[key] = result
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


def merged_compose() -> dict[str, Any]:
    override = yaml.load(COMPOSE_S3.read_text(), Loader=_ComposeLoader)
    override = interpolate_tree(override, S3_VARIABLES)
    tree: dict[str, Any] = _merge(copy.deepcopy(compose_file(COMPOSE)), override)
    return tree


def test_the_s3_override_gives_a_valid_compose_file() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(merged_compose())))]
    assert errors == []


def test_with_the_override_api_and_worker_stage_in_minio_and_share_no_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svcs = merged_compose()["services"]
    for name in ("api", "worker", "scheduler"):
        settings = settings_from_env(monkeypatch, service_env(svcs[name]))
        assert settings.storage == "s3", name
        assert settings.s3_bucket == "ingest-staging", name
        assert settings.s3_endpoint_url == "http://minio:9000", name
        env = service_env(svcs[name])
        assert env["AWS_SECRET_ACCESS_KEY"] == S3_VARIABLES["MINIO_ROOT_PASSWORD"], name
    for name in ("api", "worker"):
        assert volume_mounts(svcs[name]) == {}, f"{name} still mounts a volume"
        depends = depends_on(svcs[name])
        assert depends["minio-bucket"]["condition"] == "service_completed_successfully"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert "ingest-staging" in " ".join(svcs["minio-bucket"]["command"])
    assert svcs["minio"]["healthcheck"]["test"]
    assert depends_on(svcs["minio-bucket"])["minio"]["condition"] == "service_healthy"
    assert volume_mounts(svcs["minio"])["/data"] in merged_compose()["volumes"]


def test_the_override_sets_only_known_variables() -> None:
    known = settings_env_names() | set(NON_SETTINGS_VARIABLES)
    for name, svc in merged_compose()["services"].items():
        assert set(service_env(svc)) - known == set(), name


# --- Kubernetes: the overlay applied to the base, as `kubectl apply -k` does -------------


def _overlay() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    return data


def _same(doc: dict[str, Any], kind: str, name: str) -> bool:
    return bool(doc["kind"] == kind and doc["metadata"]["name"] == name)


def rendered_overlay() -> list[dict[str, Any]]:
    """The base documents with the overlay's patches: strategic-merge patches of maps
    (and `$patch: delete`), JSON 6902 patches on their targets."""
    docs = [copy.deepcopy(doc) for _, doc in k8s_documents() if doc["kind"] != "Kustomization"]
    for entry in _overlay()["patches"]:
        patch = yaml.safe_load((OVERLAY / entry["path"]).read_text())
        if "target" in entry:
            kind, name = entry["target"]["kind"], entry["target"]["name"]
            matched = [i for i, d in enumerate(docs) if _same(d, kind, name)]
            assert len(matched) == 1, entry
            docs[matched[0]] = jsonpatch.apply_patch(docs[matched[0]], patch)
            continue
        kind, name = patch["kind"], patch["metadata"]["name"]
        matched = [i for i, d in enumerate(docs) if _same(d, kind, name)]
        assert len(matched) == 1, f"{entry['path']}: no {kind}/{name} in the base"
        if patch.get("$patch") == "delete":
            del docs[matched[0]]
        else:
            docs[matched[0]] = _merge(docs[matched[0]], patch)
    return docs


def test_the_overlay_lists_every_file_and_builds_on_the_base() -> None:
    overlay = _overlay()
    assert overlay["resources"] == ["../k8s"]
    patches = {entry["path"] for entry in overlay["patches"]}
    assert patches == {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_overlay_renders_valid_manifests(version: str) -> None:
    for doc in rendered_overlay():
        kubernetes_validate.validate(doc, version, strict=True)


def test_with_the_overlay_no_pod_needs_a_shared_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = rendered_overlay()
    assert [d for d in docs if d["kind"] == "PersistentVolumeClaim"] == []
    env: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            env.update({k: str(v) for k, v in doc["data"].items()})
        if doc["kind"] == "Secret":
            env.update({k: str(v) for k, v in doc["stringData"].items()})
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            volumes = spec.get("volumes", [])
            assert not [v for v in volumes if "persistentVolumeClaim" in v], doc["metadata"]
            names = {v["name"] for v in volumes}
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                mounts = {m["name"] for m in container.get("volumeMounts", [])}
                assert mounts <= names, (doc["metadata"]["name"], mounts - names)
    settings = settings_from_env(monkeypatch, env)
    assert (settings.mode, settings.storage, settings.s3_bucket) == (
        "queue",
        "s3",
        "ingest-staging",
    )
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)


# --- packaging ----------------------------------------------------------------------------


def test_boto3_is_an_optional_extra_that_dev_includes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    default = " ".join(project["dependencies"]).lower()
    assert "boto" not in default, "S3 staging must stay optional: botocore is ~90 MB"
    assert any(d.startswith("boto3") for d in project["optional-dependencies"]["s3"])
    assert "ingest[s3]" in project["optional-dependencies"]["dev"]


def test_the_overlay_directory_is_outside_the_base() -> None:
    # kustomize refuses an overlay inside its base's directory (a cycle).
    assert not OVERLAY.resolve().is_relative_to((DEPLOY / "k8s").resolve())
    assert Path(OVERLAY / "kustomization.yaml").exists()
