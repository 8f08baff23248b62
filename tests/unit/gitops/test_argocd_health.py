"""Argo CD health checks (deploy/argocd/resource_customizations/kvcert.io/<Kind>/health.lua) run
by a real Lua 5.1 interpreter against their health_test.yaml cases, the way Argo CD's own
resource_customizations tests run; every kvcert Reason has a declared health; the argocd-cm
snippet in deploy/argocd/ and in the README is the lua files, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kvcert.reconcile.reasons import Reason
from tests.support.gitops import (
    ARGO_STATUSES,
    ARGOCD_CM,
    CUSTOMIZATIONS,
    KINDS,
    REPO,
    argo_health,
    health_script,
    health_tests,
    render_argocd_cm,
)

CASES = [(kind, *case) for kind in KINDS for case in health_tests(kind)]
PROBE = REPO / "operator" / "kvcert" / "runtime" / "probe.py"


def declared(kind: str) -> dict[str, str]:
    """The REASONS table of `kind`'s health.lua: reason -> Argo CD health status."""
    block = re.search(r"local REASONS = \{(.*?)\n\}", health_script(kind), re.S)
    assert block is not None, f"{kind}/health.lua has no REASONS table"
    return dict(re.findall(r"(\w+) = \"(\w+)\"", block.group(1)))


def certificate(conditions: list[dict[str, Any]], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "team-a", "generation": generation},
        "spec": {"vaultRef": {"name": "main"}, "secretName": "web-tls"},
        "status": {"observedGeneration": generation, "conditions": conditions},
    }


def cond(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def test_the_layout_is_argo_cds() -> None:
    for kind in KINDS:
        folder = CUSTOMIZATIONS / kind
        assert (folder / "health.lua").is_file()
        assert (folder / "health_test.yaml").is_file()
        inputs = {path for _, path, *_ in ((kind, *c) for c in health_tests(kind))}
        on_disk = {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}
        assert inputs == on_disk, f"{kind}: every testdata file has a case and vice versa"


@pytest.mark.parametrize(
    ("kind", "path", "obj", "status", "message"),
    CASES,
    ids=[f"{case[0]}/{Path(case[1]).stem}" for case in CASES],
)
def test_health_test_yaml(
    kind: str, path: str, obj: dict[str, Any], status: str, message: str
) -> None:
    assert argo_health(kind, obj) == (status, message), path


def test_every_reason_has_a_declared_health() -> None:
    table = declared("Certificate")
    assert set(table) == {reason.value for reason in Reason}, (
        "health.lua REASONS must list exactly kvcert's reasons (reconcile/reasons.py)"
    )
    assert set(table.values()) <= ARGO_STATUSES


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_ready_false_follows_the_table(reason: Reason) -> None:
    expected = declared("Certificate")[reason.value]
    expected = "Progressing" if expected == "Healthy" else expected
    obj = certificate([cond("Ready", "False", reason.value, f"why {reason.value}")])
    assert argo_health("Certificate", obj) == (expected, f"why {reason.value}")


@pytest.mark.parametrize("ready", ["True", "False", "Unknown", None])
@pytest.mark.parametrize("issuing", ["True", "False", None])
@pytest.mark.parametrize("stalled", ["True", "False", None])
def test_always_a_status_and_a_message(
    ready: str | None, issuing: str | None, stalled: str | None
) -> None:
    for reason in Reason:
        conditions = [
            cond(kind, status, reason.value)
            for kind, status in (("Ready", ready), ("Issuing", issuing), ("Stalled", stalled))
            if status is not None
        ]
        status, message = argo_health("Certificate", certificate(conditions))
        assert status in ARGO_STATUSES
        assert message, (ready, issuing, stalled, reason)
        if ready == "True":
            assert status == "Healthy"  # a version serves, whatever the next one is doing
        elif reason is Reason.AWAITING_MERGE and "True" in (issuing, stalled):
            assert status == "Suspended"
        elif stalled == "True":
            assert status == "Degraded"
        elif issuing == "True":
            assert status == "Progressing"


def test_a_stale_status_is_progressing_whatever_it_says() -> None:
    obj = certificate([cond("Ready", "True", "Issued", "ok")], generation=1)
    obj["metadata"]["generation"] = 2
    assert argo_health("Certificate", obj)[0] == "Progressing"


@pytest.mark.parametrize("kind", ["KeyVault", "ClusterKeyVault"])
def test_vault_reasons_are_the_probes(kind: str) -> None:
    written = set(re.findall(r"Verdict\((?:True|False), \"(\w+)\"", PROBE.read_text()))
    assert written, "probe.py's reasons moved: update this test"
    assert set(declared(kind)) == written
    for reason, health in declared(kind).items():
        obj = certificate([cond("Ready", "False", reason, "m")])
        obj["kind"] = kind
        assert argo_health(kind, obj) == ("Degraded" if health == "Healthy" else health, "m")


def test_the_argocd_cm_snippet_is_the_lua_files() -> None:
    assert ARGOCD_CM.read_text() == render_argocd_cm(), "run hack/argocd-cm.sh"


def test_the_readme_shows_the_snippet() -> None:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- argocd-cm-health -->\n```yaml\n(.*?)```", readme, re.S)
    assert found is not None, "README.md lost the argocd-cm health snippet"
    assert found.group(1) == render_argocd_cm()
