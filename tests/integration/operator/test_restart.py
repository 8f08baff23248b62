"""Crash safety: what is in flight is adopted, never created twice."""

from __future__ import annotations

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
)
from tests.support.operator_process import OperatorProcess

ISSUER = "mydigicert"


def test_an_operator_killed_mid_operation_adopts_it_after_restart_and_creates_nothing_twice(
    kube: Kube, keyvault: str, vault_ops: VaultOps, operator: OperatorProcess
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    creates = vault_ops.count(CREATES)
    kube.apply_certificate("crash", certificate_spec(keyvault, "crash-tls", ISSUER))
    body = kube.wait_operation("crash", lambda op: op.get("status") == "inProgress")
    request_id = body["status"]["operation"]["requestId"]

    operator.kill()
    operator.start()
    vault_ops.complete("crash")

    body = kube.wait_condition("crash", "Ready", "True", "Issued", timeout=60)
    assert body["status"]["operation"]["requestId"] == request_id
    assert vault_ops.count(CREATES) - creates == 1
    assert kube.event_reasons("crash").count("Created") == 1
    assert kube.secret("crash-tls") is not None


def test_a_409_for_our_own_operation_is_adopted_when_status_was_lost(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    kube.apply_certificate("amnesia", certificate_spec(keyvault, "amnesia-tls", ISSUER))
    body = kube.wait_operation("amnesia", lambda op: op.get("status") == "inProgress")
    request_id = body["status"]["operation"]["requestId"]
    creates = vault_ops.count(CREATES)

    kube.replace_certificate_status("amnesia", {})  # e.g. restored from a backup
    kube.wait_event("amnesia", "Adopted")
    body = kube.wait_operation("amnesia", lambda op: op.get("status") == "inProgress")
    assert body["status"]["operation"]["requestId"] == request_id
    assert kube.condition("amnesia", "Stalled")["status"] == "False"  # type: ignore[index]
    assert vault_ops.count(CREATES) - creates <= 1, "at most the one create answered 409"
    pending = vault_ops.pending("amnesia")
    assert pending is not None
    assert pending["request_id"] == request_id
