"""k8s/overlays/gke-admin-plane: the GKE overlay with the admin API on pods of its own
(TENANTAUTH_ROLE=admin) that no Ingress and no client namespace reaches, the API pods serving
the public endpoints only (TENANTAUTH_ROLE=public)."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_kubernetes import POD_KINDS, pod_template, render
from tests.deploy.tools import ROOT

OVERLAY = ROOT / "k8s" / "overlays" / "gke-admin-plane"


def _docs() -> list[dict[str, Any]]:
    return render(OVERLAY)


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and In/NotIn matchExpressions) picks ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression["values"]
        operator = expression["operator"]
        assert operator in ("In", "NotIn"), operator
        if (value in values) != (operator == "In"):
            return False
    return True


def _pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"]: pod_template(d)["metadata"]["labels"]
        for d in docs
        if d["kind"] in POD_KINDS
    }


def test_the_admin_pods_run_as_the_api_pods_but_for_their_role_and_size() -> None:
    """Same image, service account, proxy sidecar, secrets, probes, security contexts,
    volumes and spread; only the component label, TENANTAUTH_ROLE (admin against public),
    the replica count and the resources differ."""
    docs = _docs()
    api = pod_template(_one(docs, "Deployment", "tenantauth"))["spec"]
    admin = pod_template(_one(docs, "Deployment", "tenantauth-admin"))["spec"]
    for key in (
        "automountServiceAccountToken",
        "terminationGracePeriodSeconds",
        "securityContext",
        "volumes",
        "serviceAccountName",
        "initContainers",
    ):
        assert admin[key] == api[key], f"pod {key} differs from the API's"
    spread = [
        {**c, "labelSelector": {"matchLabels": {**c["labelSelector"]["matchLabels"]}}}
        for c in api["topologySpreadConstraints"]
    ]
    for constraint in spread:
        constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] = "admin"
    assert admin["topologySpreadConstraints"] == spread
    (api_container,) = api["containers"]
    (admin_container,) = admin["containers"]
    for key in set(api_container) | set(admin_container):
        if key not in ("env", "resources"):
            assert admin_container.get(key) == api_container.get(key), f"container {key}"
    assert api_container["env"] == [{"name": "TENANTAUTH_ROLE", "value": "public"}]
    assert admin_container["env"] == [{"name": "TENANTAUTH_ROLE", "value": "admin"}]
    assert admin_container["image"].startswith("REGION-docker.pkg.dev/PROJECT/tenantauth/")
    assert [c["name"] for c in admin["initContainers"]] == ["cloud-sql-proxy"]


def test_only_the_api_service_is_behind_the_ingress() -> None:
    """The Ingress sends everything to the `tenantauth` Service, which selects the API pods
    only; `tenantauth-admin` selects the admin pods only; the PDBs likewise."""
    docs = _docs()
    labels = _pod_labels(docs)
    ingress = _one(docs, "Ingress", "tenantauth")
    assert ingress["spec"]["defaultBackend"]["service"]["name"] == "tenantauth"
    assert "rules" not in ingress["spec"]
    for kind in ("Service", "PodDisruptionBudget"):
        for name, component in (
            ("tenantauth", "tenantauth"),
            ("tenantauth-admin", "tenantauth-admin"),
        ):
            spec = _one(docs, kind, name)["spec"]
            selector = spec["selector"] if kind == "Service" else spec["selector"]["matchLabels"]
            picked = {w for w, pod in labels.items() if _selects({"matchLabels": selector}, pod)}
            assert picked == {component}, (kind, name, picked)


def test_the_admin_port_is_open_to_admin_namespaces_only() -> None:
    """The admin pods' HTTP port admits only namespaces labelled tenantauth.io/admin (no
    client namespace, no pod of this namespace, no load balancer range); the client-facing
    policy no longer selects them; both policies' metrics rules are the same."""
    docs = _docs()
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"tenantauth-ingress", "tenantauth-admin-ingress", "tenantauth-egress"}
    labels = _pod_labels(docs)
    selected = {
        name: {w for w, pod in labels.items() if _selects(spec["podSelector"], pod)}
        for name, spec in policies.items()
    }
    workloads = {"tenantauth", "tenantauth-migrate", "tenantauth-key-rollover"}
    assert selected["tenantauth-ingress"] == workloads
    assert selected["tenantauth-admin-ingress"] == {"tenantauth-admin"}
    assert selected["tenantauth-egress"] == workloads | {"tenantauth-admin"}
    http, metrics = policies["tenantauth-admin-ingress"]["ingress"]
    assert http["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert http["from"] == [{"namespaceSelector": {"matchLabels": {"tenantauth.io/admin": "true"}}}]
    assert metrics == policies["tenantauth-ingress"]["ingress"][1]


def test_managed_prometheus_scrapes_the_api_and_admin_pods() -> None:
    """The PodMonitoring picks the API and the admin pods, never the one-shot jobs'."""
    docs = _docs()
    selector = _one(docs, "PodMonitoring", "tenantauth")["spec"]["selector"]
    picked = {w for w, pod in _pod_labels(docs).items() if _selects(selector, pod)}
    assert picked == {"tenantauth", "tenantauth-admin"}
