"""Deleting a Certificate honours spec.deletionPolicy in Key Vault."""

from __future__ import annotations

from tests.integration.operator.harness import Kube, VaultOps, certificate_spec, wait_for
from tests.integration.operator.testca import TestCA, key_pair, pfx

ISSUER = "mydigicert"


def _imported(kube: Kube, vault: str, name: str, **extra: str) -> None:
    """An imported certificate: Ready at once (a Self one waits out Retry-After first)."""
    ca, key = TestCA.make(), key_pair()
    kube.put_secret(f"{name}-source", {"tls.pfx": pfx(key, ca.sign(key.public_key(), name), ca)})
    spec = {
        "vaultRef": {"name": vault},
        "secretName": f"{name}-tls",
        "importFrom": {"secretName": f"{name}-source"},
        **extra,
    }
    kube.apply_certificate(name, spec)


def _gone(kube: Kube, name: str) -> None:
    kube.delete_certificate(name)
    wait_for(lambda: kube.certificate(name) is None, 30, f"Certificate {name} deleted")


def test_delete_pending_deletes_the_pending_operation_in_key_vault(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    spec = certificate_spec(keyvault, "drop-tls", ISSUER, deletionPolicy="DeletePending")
    kube.apply_certificate("drop", spec)
    kube.wait_operation("drop", lambda op: op.get("status") == "inProgress")
    body = kube.certificate("drop")
    assert "kvcert.io/cleanup" in body["metadata"]["finalizers"]  # type: ignore[index]
    assert vault_ops.pending("drop") is not None

    _gone(kube, "drop")
    assert vault_ops.pending("drop") is None
    assert "PendingDeleted" in kube.event_reasons("drop")


def test_delete_soft_deletes_the_certificate_in_key_vault(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    _imported(kube, keyvault, "doomed", deletionPolicy="Delete")
    kube.wait_condition("doomed", "Ready", "True", "Issued")
    assert vault_ops.certificate("doomed") is not None

    _gone(kube, "doomed")
    assert vault_ops.certificate("doomed") is None
    deleted = vault_ops.deleted("doomed")
    assert deleted is not None
    assert deleted["recoveryId"].endswith("/deletedcertificates/doomed")
    assert "CertificateDeleted" in kube.event_reasons("doomed")


def test_retain_leaves_the_certificate_in_key_vault(kube: Kube, keyvault: str, vault_ops: VaultOps):
    _imported(kube, keyvault, "kept")
    body = kube.wait_condition("kept", "Ready", "True", "Issued")
    assert "kvcert.io/cleanup" not in (body["metadata"].get("finalizers") or [])

    _gone(kube, "kept")
    found = vault_ops.certificate("kept")
    assert found is not None
    assert found["x5t"] == body["status"]["certificate"]["x5t"]
    assert vault_ops.deleted("kept") is None
