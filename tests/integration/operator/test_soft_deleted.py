"""A Certificate whose name is soft-deleted in Key Vault: 409 ObjectIsDeletedButRecoverable is
reported as NameSoftDeleted (one create, no loop), and spec.onSoftDeleted: Recover recovers it."""

from __future__ import annotations

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    wait_for,
)

RECOVERS = "POST /deletedcertificates/{name}/recover"


def _soft_deleted(vault_ops: VaultOps, name: str) -> None:
    """A certificate someone else made and deleted: its name is now deleted but recoverable."""
    vault_ops.create(name, issuer="Self")
    wait_for(lambda: vault_ops.certificate(name) is not None, 10, f"{name} issued")
    vault_ops.ok("DELETE", f"/certificates/{name}")
    assert vault_ops.deleted(name) is not None


def test_a_soft_deleted_name_is_reported_once_then_recovered_on_request(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    _soft_deleted(vault_ops, "sd-name")
    creates = vault_ops.count(CREATES)
    spec = certificate_spec(keyvault, "sd-tls", certificateName="sd-name")
    kube.apply_certificate("sd", spec)

    body = kube.wait_condition("sd", "Ready", "False", "NameSoftDeleted")
    message = body["status"]["conditions"][0]["message"]
    assert "soft-deleted in Key Vault" in message
    assert "recover or purge the deleted certificate" in message
    assert "spec.onSoftDeleted: Recover" in message
    assert "pending operation" not in message
    assert body["status"]["operation"]["error"]["code"] == "NameSoftDeleted"
    stalled = kube.condition("sd", "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"]) == ("True", "NameSoftDeleted")
    assert vault_ops.count(CREATES) - creates == 1
    never(lambda: vault_ops.count(CREATES) - creates > 1, 3, "a second create")
    assert vault_ops.count(RECOVERS) == 0
    assert kube.event_reasons("sd").count("NameSoftDeleted") == 1

    # Editing the spec to let kvcert recover it: recovered once, then created and delivered.
    kube.patch_certificate("sd", {"spec": {"onSoftDeleted": "Recover"}})
    body = kube.wait_condition("sd", "Ready", "True", "Issued")
    assert vault_ops.count(RECOVERS) == 1
    # The edit is a new intent: its create is refused too, then recovery, then one accepted.
    assert vault_ops.count(CREATES) - creates == 3
    assert vault_ops.deleted("sd-name") is None
    found = vault_ops.certificate("sd-name")
    assert found is not None
    assert found["x5t"] == body["status"]["certificate"]["x5t"]
    assert "Recovered" in kube.event_reasons("sd")
    assert kube.secret("sd-tls") is not None


def test_a_name_soft_deleted_by_deletion_policy_is_recovered_for_the_next_certificate(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    first = certificate_spec(keyvault, "sd-first-tls", certificateName="sd-shared")
    kube.apply_certificate("sd-first", {**first, "deletionPolicy": "Delete"})
    kube.wait_condition("sd-first", "Ready", "True", "Issued")
    kube.delete_certificate("sd-first")
    wait_for(lambda: kube.certificate("sd-first") is None, 30, "sd-first deleted")
    assert vault_ops.deleted("sd-shared") is not None

    creates, recovers = vault_ops.count(CREATES), vault_ops.count(RECOVERS)
    second = certificate_spec(keyvault, "sd-second-tls", certificateName="sd-shared")
    kube.apply_certificate("sd-second", {**second, "onSoftDeleted": "Recover"})
    kube.wait_condition("sd-second", "Ready", "True", "Issued")
    assert vault_ops.count(RECOVERS) - recovers == 1
    assert vault_ops.count(CREATES) - creates == 2
    assert vault_ops.deleted("sd-shared") is None
    reasons = kube.event_reasons("sd-second")
    assert "Recovered" in reasons
    assert "NameSoftDeleted" not in reasons
