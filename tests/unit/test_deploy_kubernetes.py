"""Kubernetes manifests: valid per the API schemas, non-root, probes, budgets, one
RWX incoming claim (see tests/support/deployment.py)."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate.utils as kubernetes_validate
import pytest
import yaml

from ingest.api.app import create_app
from ingest.settings import Settings
from tests.support.deployment import (
    K8S,
    K8S_VERSIONS,
    WORKER_BASELINE_MB,
    all_containers,
    k8s_documents,
    k8s_resources,
    k8s_settings_env,
    mebibytes,
    pod_templates,
    settings_from_env,
    shutdown_needs,
)

# --- Kubernetes --------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    images = {image["name"] for image in kustomization.get("images", [])}
    used = {c["image"] for t in pod_templates().values() for c in all_containers(t)}
    assert used == images, "every container uses the image kustomize sets"


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
    assert worker["spec"]["terminationGracePeriodSeconds"] >= shutdown_needs(settings)
    (container,) = worker["spec"]["containers"]
    limit = mebibytes(container["resources"]["limits"]["memory"])
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
