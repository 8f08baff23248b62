"""What Flux (kstatus: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, built from hack/kstatus
by hack/kstatus.sh) concludes for the Argo CD testdata objects. Skipped when Go or the module
proxy is unavailable; tests/integration/operator/test_gitops_health.py runs it on live objects.

kstatus' rules, in order: observedGeneration != generation -> InProgress; Reconciling True ->
InProgress; Stalled True -> Failed; Ready False -> InProgress; otherwise Current (also with no
status at all: kstatus cannot tell "not yet seen" from "needs no status")."""

from __future__ import annotations

import pytest

from tests.support.gitops import health_tests, kstatus, kstatus_binary

EXPECTED = {
    ("Certificate", "progressing_no_status"): "Current",  # kstatus' blind spot, see above
    ("Certificate", "progressing_generation"): "InProgress",
    ("Certificate", "healthy_self"): "Current",
    ("Certificate", "healthy_renewing"): "InProgress",  # Reconciling True
    ("Certificate", "progressing_issuing"): "InProgress",
    ("Certificate", "suspended_awaiting_merge"): "InProgress",
    ("Certificate", "degraded_operation_failed"): "Failed",
    ("Certificate", "progressing_vault_not_ready"): "InProgress",
    ("Certificate", "degraded_expired"): "InProgress",  # not Stalled: kvcert still looks
    ("Certificate", "degraded_secret_conflict"): "Failed",
    ("KeyVault", "progressing_no_status"): "Current",
    ("KeyVault", "progressing_generation"): "InProgress",
    ("KeyVault", "healthy"): "Current",
    ("KeyVault", "degraded_access_denied"): "InProgress",  # vaults write Ready only
    ("KeyVault", "degraded_unreachable"): "InProgress",
}


@pytest.mark.parametrize(("kind", "case"), sorted(EXPECTED), ids=str)
def test_kstatus_reads_the_conditions(kind: str, case: str) -> None:
    if kstatus_binary() is None:
        pytest.skip("hack/kstatus.sh could not build kstatus (no Go or no module proxy)")
    found = {path: obj for path, obj, *_ in health_tests(kind)}
    status, message = kstatus(found[f"testdata/{case}.yaml"])
    assert status == EXPECTED[kind, case]
    assert message
