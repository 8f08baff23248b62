"""spec.cancel meets an operation that ended meanwhile: Key Vault refuses (400 documented,
403 service); the refusal is reported once and never retried."""

from __future__ import annotations

from tests.integration.operator.harness import (
    CANCELS,
    Kube,
    VaultOps,
    certificate_spec,
)
from tests.integration.operator.proxy import VaultProxy
from tests.support.vault import LocalVault

ISSUER = "mydigicert"


def test_a_cancel_refused_because_the_operation_ended_is_reported_and_not_retried(
    kube: Kube, keyvault: str, vault: LocalVault, vault_ops: VaultOps
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    with VaultProxy(vault, complete_before_cancel=True) as proxy:
        kube.keyvault("racy", proxy.url, "vault-token", vault.ca_path.read_text())
        kube.apply_certificate("late", certificate_spec("racy", "late-tls", ISSUER))
        kube.wait_operation("late", lambda op: op.get("status") == "inProgress")
        cancels = vault_ops.count(CANCELS)

        kube.patch_certificate("late", {"spec": {"cancel": True}})
        kube.wait_event("late", "CancelRefused")
        body = kube.wait_operation("late", lambda op: bool(op.get("cancelRefused")))
        expected = "BadParameter" if vault.profile == "documented" else "Forbidden"
        events = [e for e in kube.events("late") if e.reason == "CancelRefused"]
        assert len(events) == 1
        assert events[0].type == "Warning"
        assert expected in events[0].message
        assert body["status"]["operation"]["cancellationRequested"] is False

        # The operation completed instead: it is read at once and delivered; no second cancel.
        kube.wait_condition("late", "Ready", "True", "Issued", timeout=15)
        assert kube.certificate("late")["status"]["operation"]["status"] == "completed"  # type: ignore[index]
        assert vault_ops.count(CANCELS) - cancels == 1
        kube.delete_all_certificates()
