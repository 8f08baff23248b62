"""examples/gitops/ parses and points at real things: the chart, the synced folder, and the
Certificates the Flux health checks wait for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kvcert.api.certificate import Certificate
from kvcert.api.keyvault import KeyVault
from tests.support.gitops import REPO

GITOPS = REPO / "examples" / "gitops"
KNOWN = {
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("argoproj.io/v1alpha1", "Application"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kvcert.io/v1alpha1", "Certificate"),
    ("kvcert.io/v1alpha1", "KeyVault"),
}
MODELS = {"Certificate": Certificate, "KeyVault": KeyVault}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def every() -> dict[str, list[dict[str, Any]]]:
    return {str(p.relative_to(GITOPS)): documents(p) for p in sorted(GITOPS.rglob("*.yaml"))}


@pytest.mark.parametrize("path", sorted(every()), ids=str)
def test_every_document_is_a_known_kind(path: str) -> None:
    docs = every()[path]
    assert docs
    for doc in docs:
        assert (doc["apiVersion"], doc["kind"]) in KNOWN, path
        if doc["kind"] in MODELS and doc["apiVersion"].startswith("kvcert.io/"):
            doc.setdefault("metadata", {}).setdefault("namespace", "team-a")
            MODELS[doc["kind"]].from_body(doc)


def by_kind(kind: str, api: str) -> list[dict[str, Any]]:
    return [
        doc
        for docs in every().values()
        for doc in docs
        if doc["kind"] == kind and doc["apiVersion"].startswith(api)
    ]


def synced(path: str) -> list[dict[str, Any]]:
    """The kvcert objects a Flux Kustomization or Argo CD Application at `path` applies."""
    folder = REPO / path
    listed = documents(folder / "kustomization.yaml")[0]["resources"]
    return [doc for name in listed for doc in documents(folder / name)]


def test_the_helmrelease_installs_this_chart() -> None:
    (release,) = by_kind("HelmRelease", "helm.toolkit.fluxcd.io")
    assert (REPO / release["spec"]["chart"]["spec"]["chart"] / "Chart.yaml").is_file()
    schema_keys = yaml.safe_load((REPO / "helm/kvcert-operator/values.yaml").read_text())
    assert set(release["spec"]["values"]) <= set(schema_keys)


def test_flux_health_checks_name_synced_objects() -> None:
    (kustomization,) = by_kind("Kustomization", "kustomize.toolkit.fluxcd.io")
    spec = kustomization["spec"]
    objects = {(d["kind"], d["metadata"]["name"]) for d in synced(spec["path"])}
    checks = spec["healthChecks"]
    assert any(check["kind"] == "Certificate" for check in checks)
    for check in checks:
        assert check["apiVersion"] == "kvcert.io/v1alpha1"
        assert (check["kind"], check["name"]) in objects
        assert check["namespace"] == spec["targetNamespace"]


def test_the_argocd_application_syncs_the_same_folder() -> None:
    (application,) = by_kind("Application", "argoproj.io")
    kinds = {doc["kind"] for doc in synced(application["spec"]["source"]["path"])}
    assert "Certificate" in kinds
    assert "ServerSideApply=true" in application["spec"]["syncPolicy"]["syncOptions"]
