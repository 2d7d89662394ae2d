"""k8s/monitoring (issue 13): the rules pass promtool's checks and unit tests, the Kubernetes
objects carry the same rules, every alert has a runbook section, the Grafana dashboard is
well formed, and every metric either of them names is one tenantauth exports.

Metric names are checked twice: offline against CATALOGUE (the list issue 13 fixed), and
against what a live production-mode server (gunicorn, PostgreSQL, Redis) serves on its
metrics port, so neither a typo in a rule nor a rename in the server goes unnoticed.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.test_kubernetes import render
from tests.deploy.tools import ROOT, run
from tests.e2e.harness import (
    Admin,
    Server,
    call,
    free_port,
    production_environ,
    start_server,
    wait_ready,
)
from tests.support import empty_database, empty_redis, redis_db_url

MONITORING = ROOT / "k8s" / "monitoring"
RULES = MONITORING / "rules.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RUNBOOK = ROOT / "docs" / "deploy-gke.md"
#: The metric families the server exports (issue 13's catalogue), by Prometheus type.
CATALOGUE = {
    "tenantauth_http_requests": "counter",
    "tenantauth_http_request_duration_seconds": "histogram",
    "tenantauth_verify": "counter",
    "tenantauth_cache_reads": "counter",
    "tenantauth_cache_fills": "counter",
    "tenantauth_dependency_call_duration_seconds": "histogram",
    "tenantauth_dependency_errors": "counter",
    "tenantauth_dependency_up": "gauge",
    "tenantauth_cache_breaker_open": "gauge",
    "tenantauth_cache_breaker_trips": "counter",
    "tenantauth_changes": "counter",
    "tenantauth_changes_unconfirmed": "counter",
    "tenantauth_tenant_directory_size": "gauge",
    "tenantauth_tenant_directory_loads": "counter",
    "tenantauth_db_pool_connections": "gauge",
    "tenantauth_db_pool_waiting": "gauge",
    "tenantauth_db_pool_max": "gauge",
    "tenantauth_audit_head_seq": "gauge",
    "tenantauth_build_info": "gauge",
    "tenantauth_log_lines_dropped": "counter",
}
#: The series names each type of family exposes (text format 0.0.4).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "untyped": ("",),
    "info": ("_info",),
}
#: PromQL words that are neither metric names nor followed by "(" where they occur.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
#: The clauses whose parentheses hold label names, not expressions.
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
#: Grafana's variables, replaced by what they stand for to make dashboard queries PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*"}
SEVERITIES = {"critical", "warning"}


def promtool() -> str:
    """Return the path of promtool; fail (never skip) with the way to install it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make promtool` (Debian: prometheus)")
    return path


def metric_names(expr: str) -> set[str]:
    """Return the metric (and recorded series) names a PromQL expression selects.

    Strings, label matchers, ranges and the label lists of by/without/on/ignoring/group_*
    are removed first; what is left is functions and aggregations (followed by "("),
    keywords, numbers, and the names wanted.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = LABEL_LISTS.sub(" ", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def exposed_names(families: dict[str, str]) -> set[str]:
    """Return every series name the families (name -> type) expose in the text format."""
    return {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}


def rule_groups() -> list[dict[str, Any]]:
    """Return the groups of k8s/monitoring/rules.yaml."""
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]  # type: ignore[no-any-return]


def rules() -> list[dict[str, Any]]:
    """Return every rule of every group."""
    return [rule for group in rule_groups() for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    """Return the Grafana dashboard."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def dashboard_queries() -> dict[str, str]:
    """Return each dashboard target's expression as PromQL, by "panel <id> <refId>"."""
    queries = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries[f"panel {panel['id']} {target['refId']}"] = expr
    return queries


def used_metrics() -> dict[str, set[str]]:
    """Return the metric names each rule and dashboard target uses (recorded series left out)."""
    exprs = {f"rule {r.get('alert') or r['record']}": r["expr"] for r in rules()}
    exprs |= dashboard_queries()
    return {where: {n for n in metric_names(e) if ":" not in n} for where, e in exprs.items()}


def anchors(markdown: str) -> set[str]:
    """Return the anchors GitHub gives the headings of a Markdown text."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_metric_names_are_extracted_from_promql() -> None:
    """The extraction keeps metric and recorded names, drops functions, aggregations, label
    names and values, keywords, durations and numbers."""
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route=~"/v1/x.*"}[5m])))'
        " / on (namespace) group_left (pod) b:ratio:rate5m > 1e3 and ignoring (x) c_total"
        ' unless absent(d{e="f"}) or max without (g) (h offset 5m) > bool inf'
    )
    assert metric_names(expr) == {"a_bucket", "b:ratio:rate5m", "c_total", "d", "h"}


def test_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts rules.yaml (syntax, PromQL, templates)."""
    out = run([promtool(), "check", "rules", RULES], ROOT)
    assert "SUCCESS" in out


def test_rules_pass_their_promtool_unit_tests() -> None:
    """`promtool test rules` passes k8s/monitoring/rules_test.yaml (alerts fire when and only
    when they should, with the labels and annotations written there)."""
    out = run([promtool(), "test", "rules", "rules_test.yaml"], MONITORING)
    assert "SUCCESS" in out


def test_every_alert_is_actionable() -> None:
    """Every alert has a `for`, a severity, a summary, a description, and a runbook_url that
    is a section of docs/deploy-gke.md; every recorded series it uses is recorded here."""
    alerts = [r for r in rules() if "alert" in r]
    assert len(alerts) >= 9, f"the alerts issue 13 asks for are missing: {alerts}"
    sections = anchors(RUNBOOK.read_text(encoding="utf-8"))
    recorded = {r["record"] for r in rules() if "record" in r}
    for alert in alerts:
        name = alert["alert"]
        assert "for" in alert, f"{name} has no `for`"
        assert alert["labels"]["severity"] in SEVERITIES, name
        notes = alert["annotations"]
        assert notes["summary"], name
        assert notes["description"], name
        document, _, anchor = notes["runbook_url"].partition("#")
        assert document == "docs/deploy-gke.md", name
        assert anchor == name.lower() and anchor in sections, f"{name}: no section {anchor}"
        assert {n for n in metric_names(alert["expr"]) if ":" in n} <= recorded, name


def test_prometheusrule_holds_the_same_groups() -> None:
    """The PrometheusRule (kube-prometheus) carries rules.yaml's groups word for word."""
    docs = render(MONITORING)
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == rule_groups()
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor"]
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]


def test_gke_overlay_scrapes_and_evaluates_with_managed_prometheus() -> None:
    """GKE: a PodMonitoring scrapes the API pods' `metrics` port on /metrics every 30 s, and
    the rules are a Managed Prometheus `Rules` object with rules.yaml's groups (no
    prometheus-operator object is left in the overlay)."""
    docs = render(ROOT / "k8s" / "overlays" / "gke")
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert not {k for k in kinds if k[0] == "monitoring.coreos.com/v1"}
    (scrape,) = [d for d in docs if d["kind"] == "PodMonitoring"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert scrape["spec"]["selector"]["matchLabels"] == selector
    assert scrape["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    (evaluated,) = [d for d in docs if d["kind"] == "Rules"]
    assert evaluated["apiVersion"] == "monitoring.googleapis.com/v1"
    assert evaluated["spec"]["groups"] == rule_groups()


def test_dashboard_is_well_formed() -> None:
    """The dashboard parses, takes its data source from the `datasource` variable, has unique
    panel ids, and every panel but a row has a title and queries on that data source."""
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in board["panels"]:
        assert panel["title"], panel["id"]
    for panel in panels:
        assert panel["targets"], panel["title"]
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_dashboard_queries_are_promql(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, is PromQL that promtool
    accepts (checked as recording rules of a throwaway rules file)."""
    records = [
        {"record": f"dashboard:{where.replace(' ', '_')}", "expr": expr}
        for where, expr in dashboard_queries().items()
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    run([promtool(), "check", "rules", path], tmp_path)


def test_every_metric_used_is_in_the_catalogue() -> None:
    """Every metric a rule or a dashboard query names is a series of the catalogue (offline:
    catches a typo without a server)."""
    known = exposed_names(CATALOGUE)
    unknown = {where: names - known for where, names in used_metrics().items() if names - known}
    assert not unknown, f"not tenantauth metrics: {unknown}"
    assert set().union(*used_metrics().values()) >= {"tenantauth_changes_unconfirmed_total"}


# --------------------------------------------------------------------------- live server


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_db: int
) -> Iterator[tuple[Server, int]]:
    """A production-mode server (2 workers) with metrics on a port of their own; yields the
    server and its metrics port."""
    redis_url = redis_db_url(redis_db)
    empty_database(pg_database)
    empty_redis(redis_url)
    tmp = tmp_path_factory.mktemp("metrics")
    metrics_port = free_port()
    env = production_environ(pg_database, redis_url, tmp / "live.access.log")
    env["TENANTAUTH_METRICS_PORT"] = str(metrics_port)
    server = start_server(tmp, "metrics", env, workers=2)
    try:
        wait_ready(server)
        yield server, metrics_port
    finally:
        server.stop()


def scrape(port: int) -> dict[str, Any]:
    """Return the metric families served on ``port``'s /metrics, by name."""
    reply = call(port, "GET", "/metrics")
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain"), reply.headers
    families = text_string_to_metric_families(reply.body.decode())
    return {family.name: family for family in families}


def exercise(port: int) -> None:
    """Drive a few requests through every family's code path: a tenant created, a token
    verified and a forged one rejected, a rotation, the rotated token rejected, a 404."""
    admin = Admin(port)
    admin.create_tenant("metrics")
    token = admin.issue("metrics")
    assert call(port, "GET", "/v1/verify", token=token).status == 200
    assert call(port, "GET", "/v1/verify", token=token[:-4] + "AAAA").status == 401
    admin.rotate("metrics")
    assert call(port, "GET", "/v1/verify", token=token).status == 401
    assert call(port, "GET", "/v1/no-such-route").status == 404


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
def test_every_metric_used_is_served(live: tuple[Server, int]) -> None:
    """Every metric a rule or a dashboard query names is a series of a family a live server
    serves on TENANTAUTH_METRICS_PORT after some traffic (families merged over its 2
    workers), and the counted verifications are there."""
    server, metrics_port = live
    exercise(server.port)
    deadline = time.monotonic() + 5  # counts reach /metrics within 0.1 s (tally.py)
    while True:
        families = scrape(metrics_port)
        outcomes = {
            sample.labels["outcome"]
            for sample in families["tenantauth_verify"].samples
            if sample.name == "tenantauth_verify_total" and sample.value > 0
        }
        if {"accepted", "rejected"} <= outcomes or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {"accepted", "rejected"} <= outcomes, outcomes
    served = exposed_names({name: family.type for name, family in families.items()})
    missing = {where: names - served for where, names in used_metrics().items() if names - served}
    assert not missing, f"not served by /metrics: {missing}\n{server.output()}"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
def test_metrics_are_not_served_on_the_api_port(live: tuple[Server, int]) -> None:
    """The API port answers /metrics with 404: metrics are only on their own port, which the
    Service and the Ingress never expose."""
    server, metrics_port = live
    assert call(server.port, "GET", "/metrics").status == 404
    assert call(metrics_port, "GET", "/metrics").status == 200
