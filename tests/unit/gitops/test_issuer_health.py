"""Argo CD health checks of CertificateIssuer and ClusterCertificateIssuer (issue #19 §2), run
by a real Lua 5.1 interpreter against their health_test.yaml cases, as for the other kinds
(test_argocd_health.py); every issuer reason has a declared health."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kvcert.reconcile.issuer_reasons import STALLED_REASONS, IssuerReason
from tests.support.gitops import (
    ARGO_STATUSES,
    CUSTOMIZATIONS,
    argo_health,
    health_script,
    health_tests,
)

KINDS = ("CertificateIssuer", "ClusterCertificateIssuer")
CASES = [(kind, *case) for kind in KINDS for case in health_tests(kind)]


def declared(kind: str) -> dict[str, str]:
    block = re.search(r"local REASONS = \{(.*?)\n\}", health_script(kind), re.S)
    assert block is not None, f"{kind}/health.lua has no REASONS table"
    return dict(re.findall(r"(\w+) = \"(\w+)\"", block.group(1)))


@pytest.mark.parametrize("kind", KINDS)
def test_the_layout_is_argo_cds(kind: str) -> None:
    folder = CUSTOMIZATIONS / kind
    inputs = {path for path, *_ in health_tests(kind)}
    assert inputs == {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}


@pytest.mark.parametrize(
    ("kind", "path", "obj", "status", "message"),
    CASES,
    ids=[f"{case[0]}/{Path(case[1]).stem}" for case in CASES],
)
def test_health_test_yaml(
    kind: str, path: str, obj: dict[str, Any], status: str, message: str
) -> None:
    assert argo_health(kind, obj) == (status, message), path


@pytest.mark.parametrize("kind", KINDS)
def test_every_issuer_reason_has_a_declared_health(kind: str) -> None:
    table = declared(kind)
    assert set(table) == {reason.value for reason in IssuerReason}
    assert set(table.values()) <= ARGO_STATUSES
    for reason in STALLED_REASONS:
        assert table[reason.value] == "Degraded", "a reason that needs a human is Degraded"


@pytest.mark.parametrize("reason", list(IssuerReason), ids=lambda r: r.value)
def test_ready_false_is_never_healthy(reason: IssuerReason) -> None:
    obj = {
        "metadata": {"name": "i", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": reason.value, "message": "m"}
            ],
        },
    }
    status, message = argo_health("CertificateIssuer", obj)
    assert status in {"Progressing", "Degraded"}
    assert message == "m"
