"""docs/deploy-gke.md names only things that exist: repository files, make targets, document
sections, and the Kubernetes objects (namespace, workloads, containers, secrets) of the
rendered GKE overlay, so a rename elsewhere cannot leave the runbook pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.deploy.test_kubernetes import POD_KINDS, containers, render
from tests.deploy.tools import ROOT

RUNBOOK = ROOT / "docs" / "deploy-gke.md"
#: Paths inside the repository, as written in prose and commands (from a known top folder).
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:k8s|docs|tests|src|migrations|scripts)/[\w./-]*[\w/]"
    r"|README\.md|Dockerfile|Makefile)"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)")
#: `make TARGET` as code, or a command line starting with it (not the words "make target").
MAKE_TARGET = re.compile(r"(?:^|`)make ([a-z][\w-]*)", re.M)
SECTION_REF = re.compile(r"([\w./-]+\.md), \"([^\"]+)\"")
#: `kubectl ... kind/name` and `kubectl <verb> kind [generic] name`.
SLASHED = re.compile(
    r"\b(deployment|job|cronjob|hpa|ingress|managedcertificate|secret)/([a-z][\w-]*)"
)
SPACED = re.compile(
    r"\b(?:get|describe|patch|delete|create) "
    r"(deployment|job|cronjob|hpa|ingress|managedcertificate|secret)(?: generic)? ([a-z][\w-]*)"
)
#: `kubectl create job NAME --from=cronjob/CRONJOB`: a Job the runbook makes from a CronJob.
JOB_FROM_CRONJOB = re.compile(r"\bcreate job ([a-z][\w-]*) --from=cronjob/([a-z][\w-]*)")
NAMESPACE = re.compile(r"(?:-n |namespace )`?([a-z][\w-]*)")
CONTAINER = re.compile(r" -c ([a-z][\w-]*)")
WORKLOAD_IDENTITY = re.compile(r"\.svc\.id\.goog\[([\w-]+)/([\w-]+)\]")
KINDS = {
    "deployment": "Deployment",
    "job": "Job",
    "cronjob": "CronJob",
    "hpa": "HorizontalPodAutoscaler",
    "ingress": "Ingress",
    "managedcertificate": "ManagedCertificate",
}


def runbook_text() -> str:
    """Return the runbook with shell line continuations joined (one command per line)."""
    return re.sub(r"\\\n\s*", " ", RUNBOOK.read_text(encoding="utf-8"))


def rendered() -> list[dict[str, Any]]:
    """Return the documents the GKE overlay's admin-plane variant renders: everything
    k8s/overlays/gke renders (it builds on it), and the admin Deployment the runbook's
    variant names."""
    return render(ROOT / "k8s" / "overlays" / "gke-admin-plane")


def secret_names(docs: list[dict[str, Any]]) -> set[str]:
    """Return the Secrets the rendered workloads read (they are created by hand, not rendered)."""
    return {
        source["secretRef"]["name"]
        for doc in docs
        if doc["kind"] in POD_KINDS
        for container in containers(doc)
        for source in container.get("envFrom", [])
        if "secretRef" in source
    }


def named_objects(text: str) -> set[tuple[str, str]]:
    """Return every (kind word, name) pair the runbook's kubectl commands name."""
    return set(SLASHED.findall(text)) | set(SPACED.findall(text))


def test_every_repository_path_exists() -> None:
    """Every repository path the runbook names, in prose, commands or links, exists."""
    text = runbook_text()
    paths = {ROOT / p for p in REPO_PATH.findall(text)}
    paths |= {(RUNBOOK.parent / p).resolve() for p in MARKDOWN_LINK.findall(text)}
    assert len(paths) >= 10, f"the extraction found too little: {paths}"
    missing = sorted(str(p.relative_to(ROOT)) for p in paths if not p.exists())
    assert not missing, f"docs/deploy-gke.md names files that do not exist: {missing}"


def test_every_make_target_and_section_exists() -> None:
    """Every `make TARGET` is a Makefile target, and every `FILE.md, "Section"` a heading there."""
    text = runbook_text()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(MAKE_TARGET.findall(text))
    assert targets, "no make target found in the runbook"
    assert not [t for t in targets if not re.search(rf"^{re.escape(t)}:", makefile, re.M)]
    sections = SECTION_REF.findall(text)
    assert len(sections) >= 3, f"the extraction found too little: {sections}"
    for document, title in sections:
        headings = [
            line
            for line in (ROOT / document).read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        ]
        assert any(title in h for h in headings), f"{document} has no section {title!r}"


def test_every_kubernetes_object_named_is_rendered() -> None:
    """Every workload, HPA, Ingress, certificate, container, namespace and Workload Identity
    subject the runbook names is in the rendered GKE overlay (or its admin-plane variant),
    or a Job it creates from a rendered CronJob; every Secret is one it reads."""
    text, docs = runbook_text(), rendered()
    objects = {(d["kind"], d["metadata"]["name"]) for d in docs}
    made = set(JOB_FROM_CRONJOB.findall(text))
    assert made, "no `kubectl create job NAME --from=cronjob/...` in the runbook"
    for job, cronjob in made:
        assert ("CronJob", cronjob) in objects, f"cronjob/{cronjob} is not rendered"
        objects.add(("Job", job))
    named = named_objects(text)
    assert {
        ("deployment", "tenantauth"),
        ("job", "tenantauth-migrate"),
        ("cronjob", "tenantauth-key-rollover"),
    } <= named
    for word, name in named:
        if word == "secret":
            assert name in secret_names(docs), f"no workload reads Secret {name}"
        else:
            assert (KINDS[word], name) in objects, f"{word}/{name} is not rendered"
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert set(NAMESPACE.findall(text)) == namespaces
    names = {c["name"] for d in docs if d["kind"] in POD_KINDS for c in containers(d)}
    used = set(CONTAINER.findall(text))
    assert used, "no container named in the runbook"
    assert used <= names, f"no such container: {used - names}"
    accounts = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for d in docs
        if d["kind"] == "ServiceAccount"
    }
    subjects = set(WORKLOAD_IDENTITY.findall(text))
    assert subjects, "no Workload Identity binding in the runbook"
    assert subjects <= accounts, f"no such ServiceAccount: {subjects - accounts}"


def test_runbook_path_is_this_file() -> None:
    """The runbook checked is the one k8s/README.md links to (a moved runbook fails here)."""
    assert Path("docs/deploy-gke.md").as_posix() in (ROOT / "k8s" / "README.md").read_text(
        encoding="utf-8"
    ).replace("../docs/", "docs/")
    assert RUNBOOK.is_file()
