"""k8s NetworkPolicies (issue 13): ingress to the tenantauth pods only on the HTTP port from
selected peers; on GKE, egress only to DNS, PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_kubernetes import render
from tests.deploy.tools import ROOT

SELECTED = {"app.kubernetes.io/name": "tenantauth"}


def _policies(overlay: str) -> dict[str, dict[str, Any]]:
    docs = render(ROOT / "k8s" / overlay)
    return {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}


def test_ingress_is_the_http_port_from_selected_peers_only() -> None:
    """Base and GKE: one ingress rule, port 8000/TCP, from this namespace's pods and labelled
    client namespaces (GKE adds Google's load balancer ranges); never an empty `from`."""
    for overlay, extra in (("base", []), ("overlays/gke", ["35.191.0.0/16", "130.211.0.0/22"])):
        spec = _policies(overlay)["tenantauth-ingress"]
        assert spec["podSelector"]["matchLabels"] == SELECTED
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
        peers = rule["from"]
        assert {"podSelector": {}} in peers
        assert {"namespaceSelector": {"matchLabels": {"tenantauth.io/client": "true"}}} in peers
        assert [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p] == extra


def test_gke_egress_is_dns_postgres_and_redis_only() -> None:
    """GKE: the egress policy selects the tenantauth pods and allows ports 53 (UDP and TCP),
    5432 and 6379 only, each to named destinations (no rule without `to`)."""
    spec = _policies("overlays/gke")["tenantauth-egress"]
    assert spec["podSelector"]["matchLabels"] == SELECTED
    assert spec["policyTypes"] == ["Egress"]
    ports = sorted((p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"])
    assert ports == [(53, "TCP"), (53, "UDP"), (5432, "TCP"), (6379, "TCP")]
    assert all(rule.get("to") for rule in spec["egress"])
    assert "tenantauth-egress" not in _policies("base")  # addresses differ per platform
