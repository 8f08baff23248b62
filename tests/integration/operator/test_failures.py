"""Operations that end without a certificate, vanish, or are not ours: reported, never looped."""

from __future__ import annotations

import pytest

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
    never,
)

ISSUER = "mydigicert"
QUIET = 5.0
"""Seconds in which a stalled Certificate must not make a single Key Vault request."""


def _in_progress(kube: Kube, vault_ops: VaultOps, name: str, **extra: object) -> str:
    vault_ops.set_issuer(ISSUER, "DigiCert")
    kube.apply_certificate(name, certificate_spec("main", f"{name}-tls", ISSUER, **extra))
    body = kube.wait_operation(name, lambda op: op.get("status") == "inProgress")
    request_id: str = body["status"]["operation"]["requestId"]
    return request_id


@pytest.mark.one_profile("service")
def test_a_failed_operation_is_reported_stalled_and_not_retried(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    _in_progress(kube, vault_ops, "failing")
    vault_ops.fail("failing", "Rejected", "Domain not validated.")

    body = kube.wait_condition("failing", "Stalled", "True", "OperationFailed", timeout=45)
    op = body["status"]["operation"]
    assert op["status"] == "failed"
    assert op["error"] == {"code": "Rejected", "message": "Domain not validated."}
    ready = kube.condition("failing", "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "OperationFailed")
    assert "Domain not validated." in ready["message"]
    kube.wait_event("failing", "OperationFailed")
    assert sorted(kube.event_reasons("failing")) == ["Created", "OperationFailed"]
    assert {e.type for e in kube.events("failing") if e.reason == "OperationFailed"} == {"Warning"}

    before = vault_ops.total()
    never(lambda: vault_ops.total() > before, QUIET, "a Key Vault request after the failure")


def test_spec_cancel_requests_cancellation_and_ends_cancelled_without_retries(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    _in_progress(kube, vault_ops, "cancelling")
    kube.patch_certificate("cancelling", {"spec": {"cancel": True}})

    kube.wait_operation("cancelling", lambda op: op.get("cancellationRequested") is True)
    kube.wait_event("cancelling", "Cancelling")
    assert kube.event_reasons("cancelling").count("Cancelling") == 1
    body = kube.wait_condition("cancelling", "Stalled", "True", "OperationCancelled", timeout=45)
    assert body["status"]["operation"]["status"] == "cancelled"
    pending = vault_ops.pending("cancelling")
    assert pending is not None
    assert pending["status"].lower() in ("canceled", "cancelled")
    kube.wait_event("cancelling", "OperationCancelled")
    assert sorted(kube.event_reasons("cancelling")) == [
        "Cancelling",
        "Created",
        "OperationCancelled",
    ]

    before = vault_ops.total()
    never(lambda: vault_ops.total() > before, QUIET, "a Key Vault request after cancellation")


@pytest.mark.one_profile("documented")
def test_a_pending_operation_deleted_out_of_band_is_reported_and_recreated_only_on_retry(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    first = _in_progress(kube, vault_ops, "vanishing")
    creates = vault_ops.count(CREATES)
    vault_ops.delete_pending("vanishing")

    # Nothing makes the next poll come early: the operation is read when its poll is due.
    body = kube.wait_condition("vanishing", "Stalled", "True", "OperationDeleted", timeout=90)
    assert body["status"]["operation"]["status"] == "deleted"
    assert body["status"]["operation"]["requestId"] == first
    kube.wait_event("vanishing", "OperationDeleted")
    # For a paid CA a create is a new order: never made by itself (issue #15 section 5).
    never(lambda: vault_ops.count(CREATES) > creates, QUIET, "a create after the deletion")

    kube.patch_certificate("vanishing", {"metadata": {"annotations": {"kvcert.io/retry": "1"}}})
    body = kube.wait_operation(
        "vanishing",
        lambda op: op.get("requestId") not in (None, first) and op.get("status") == "inProgress",
        timeout=45,
    )
    assert body["status"]["handledRequests"] == {"retry": "1"}
    pending = vault_ops.pending("vanishing")
    assert pending is not None
    assert pending["request_id"] == body["status"]["operation"]["requestId"]
    assert vault_ops.count(CREATES) - creates == 1


@pytest.mark.one_profile("service")
def test_a_completed_operation_deleted_out_of_band_recovers_from_the_certificate(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    _in_progress(kube, vault_ops, "recovering")
    creates = vault_ops.count(CREATES)
    vault_ops.complete("recovering")
    vault_ops.delete_pending("recovering")

    body = kube.wait_condition("recovering", "Ready", "True", "Issued", timeout=45)
    vault_cert = vault_ops.certificate("recovering")
    assert vault_cert is not None
    assert body["status"]["certificate"]["x5t"] == vault_cert["x5t"]
    assert kube.secret("recovering-tls") is not None
    assert vault_ops.count(CREATES) == creates, "nothing is created anew"


def test_a_create_blocked_by_someone_elses_operation_is_reported_and_never_looped(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    theirs = vault_ops.create("taken", issuer="Unknown")
    creates = vault_ops.count(CREATES)
    kube.apply_certificate("taken", certificate_spec(keyvault, "taken-tls"))

    # The first create reads the name first (issue #18 §4): someone else's certificate, with
    # its pending operation, is NotOwned before any create is sent.
    body = kube.wait_condition("taken", "Stalled", "True", "NotOwned")
    ready = kube.condition("taken", "Ready")
    assert ready is not None
    assert ready["reason"] == "NotOwned"
    assert "taken" in ready["message"]
    assert "nothing is created" in ready["message"]
    assert (body["status"].get("operation") or {}).get("requestId") is None, (
        "someone else's operation is never adopted"
    )
    kube.wait_event("taken", "NotOwned")
    assert vault_ops.count(CREATES) - creates == 0

    before = vault_ops.total()
    never(lambda: vault_ops.total() > before, QUIET, "a Key Vault request after the refusal")
    pending = vault_ops.pending("taken")
    assert pending is not None
    assert pending["request_id"] == theirs["request_id"]
