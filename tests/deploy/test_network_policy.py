"""k8s NetworkPolicies (issue 13): ingress to the tenantauth pods only on the HTTP port from
selected peers, and on the metrics port from monitoring namespaces; on GKE, egress only to
DNS, Cloud SQL (through the Auth Proxy), Redis, the metadata server and Google APIs."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_kubernetes import POD_KINDS, pod_template, render
from tests.deploy.tools import ROOT

SELECTED = {"app.kubernetes.io/name": "tenantauth"}


def _policies(overlay: str) -> dict[str, dict[str, Any]]:
    docs = render(ROOT / "k8s" / overlay)
    return {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}


def _ingress_rules(overlay: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the ingress policy's two rules, HTTP first then metrics (exactly two)."""
    spec = _policies(overlay)["tenantauth-ingress"]
    assert spec["podSelector"]["matchLabels"] == SELECTED
    http, metrics = spec["ingress"]
    return http, metrics


def test_ingress_is_the_http_port_from_selected_peers_only() -> None:
    """Base and GKE: the first ingress rule is port 8000/TCP only, from this namespace's pods
    and labelled client namespaces (GKE adds Google's load balancer ranges)."""
    for overlay, extra in (("base", []), ("overlays/gke", ["35.191.0.0/16", "130.211.0.0/22"])):
        rule, _ = _ingress_rules(overlay)
        assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
        peers = rule["from"]
        assert {"podSelector": {}} in peers
        assert {"namespaceSelector": {"matchLabels": {"tenantauth.io/client": "true"}}} in peers
        assert [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p] == extra


def test_metrics_port_is_open_to_monitoring_namespaces_only() -> None:
    """Base and GKE: the second ingress rule is port 9464/TCP only, from namespaces labelled
    `tenantauth.io/monitoring` (GKE adds Managed Prometheus' gmp-system), never from client
    namespaces, this namespace's pods, or addresses; never an empty `from`."""
    monitoring = {"namespaceSelector": {"matchLabels": {"tenantauth.io/monitoring": "true"}}}
    gmp = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}
    for overlay, peers in (("base", [monitoring]), ("overlays/gke", [monitoring, gmp])):
        _, rule = _ingress_rules(overlay)
        assert rule["ports"] == [{"port": 9464, "protocol": "TCP"}]
        assert rule["from"] == peers


def test_metrics_port_is_the_container_port_but_not_a_service_port() -> None:
    """The API container declares `metrics` 9464 and reads TENANTAUTH_METRICS_PORT=9464 from
    its ConfigMap; the Service exposes `http` only, so the Ingress never reaches /metrics."""
    for overlay in ("base", "overlays/gke"):
        docs = render(ROOT / "k8s" / overlay)
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        (api,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in api["ports"]
        (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
        assert config["data"]["TENANTAUTH_METRICS_PORT"] == "9464"
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in api["envFrom"]
        (service,) = [d for d in docs if d["kind"] == "Service"]
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
        assert all(p["targetPort"] in ("http", 8000) for p in service["spec"]["ports"])


def test_gke_egress_is_dns_cloud_sql_redis_and_google_auth_only() -> None:
    """GKE: the egress policy selects the tenantauth pods and allows DNS (53 UDP/TCP), the
    proxy's Cloud SQL port 3307 (never 5432), Redis 6379, the metadata server on 80 and
    private.googleapis.com on 443, each to named destinations (no rule without `to`)."""
    spec = _policies("overlays/gke")["tenantauth-egress"]
    assert spec["podSelector"]["matchLabels"] == SELECTED
    assert spec["policyTypes"] == ["Egress"]
    ports = sorted((p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"])
    assert ports == [
        (53, "TCP"),
        (53, "UDP"),
        (80, "TCP"),
        (443, "TCP"),
        (3307, "TCP"),
        (6379, "TCP"),
    ]
    assert all(rule.get("to") for rule in spec["egress"])
    by_port = {
        p["port"]: [peer["ipBlock"]["cidr"] for peer in rule["to"] if "ipBlock" in peer]
        for rule in spec["egress"]
        for p in rule["ports"]
    }
    assert by_port[80] == ["169.254.169.254/32"]
    assert by_port[443] == ["199.36.153.8/30"]
    assert "tenantauth-egress" not in _policies("base")  # addresses differ per platform


def test_every_workload_pod_is_selected_by_every_policy() -> None:
    """Base and GKE: every policy selects the pods of every workload (API, migration Job,
    key-rollover CronJob), so on GKE the egress rules are what lets the one-shot pods reach
    PostgreSQL and Redis, and the ingress rules keep the same bounds on them."""
    for overlay, expected in (
        ("base", {"tenantauth-ingress"}),
        ("overlays/gke", {"tenantauth-ingress", "tenantauth-egress"}),
    ):
        docs = render(ROOT / "k8s" / overlay)
        policies = _policies(overlay)
        assert set(policies) == expected
        workloads = {
            d["metadata"]["name"]: pod_template(d)["metadata"]["labels"]
            for d in docs
            if d["kind"] in POD_KINDS
        }
        assert set(workloads) == {"tenantauth", "tenantauth-migrate", "tenantauth-key-rollover"}
        for name, labels in workloads.items():
            for policy, spec in policies.items():
                selector = spec["podSelector"]["matchLabels"]
                assert selector.items() <= labels.items(), f"{policy} does not select {name}"
