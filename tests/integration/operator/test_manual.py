"""Manual issuance (issuer Unknown) and merges: the CSR is published, a chain put in the
mergeFrom Secret is merged, and refused merges leave the pending operation intact."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.operator.harness import (
    MERGES,
    PENDING_READS,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    secret_text,
    wait_for,
)
from tests.integration.operator.testca import TestCA, key_pair, pem_certs

ISSUER = "mydigicert"
MERGE_WAIT = 60.0
"""The operator does not watch Secrets: it GETs mergeFrom on each poll (10 s, then growing)."""


def _manual(kube: Kube, name: str) -> dict[str, Any]:
    spec = certificate_spec(
        "main", f"{name}-tls", "Unknown", mergeFrom={"secretName": f"{name}-signed"}
    )
    kube.apply_certificate(name, spec)
    body = kube.wait_condition(name, "Issuing", "True", "AwaitingMerge")
    op: dict[str, Any] = body["status"]["operation"]
    return op


def test_a_manual_request_publishes_its_csr_and_merges_the_chain_put_in_merge_from(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    op = _manual(kube, "manual")
    assert op["status"] == "inProgress"
    assert op["issuer"] == "Unknown"
    assert op["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert op["csrRef"] == {"kind": "ConfigMap", "name": "manual-csr"}
    config_map = kube.config_map("manual-csr")
    assert config_map is not None
    assert config_map.data["csr.pem"].strip() == op["csr"].strip()
    assert kube.condition("manual", "Ready")["reason"] == "AwaitingMerge"  # type: ignore[index]

    ca = TestCA.make()
    leaf = ca.sign_csr(config_map.data["csr.pem"])
    kube.put_secret("manual-signed", {"tls.crt": ca.chain_pem(leaf)})

    body = kube.wait_condition("manual", "Ready", "True", "Issued", timeout=MERGE_WAIT)
    assert body["status"]["operation"]["status"] == "completed"
    assert body["status"]["operation"]["merge"]["result"] == "Merged"
    secret = kube.secret("manual-tls")
    assert secret is not None
    delivered = pem_certs(secret_text(secret, "tls.crt"))
    assert delivered[0] == leaf
    assert ca.cert in delivered
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    kube.wait_event("manual", "Merged")
    reasons = kube.event_reasons("manual")
    assert {"Created", "AwaitingMerge", "Merged", "Issued"} <= set(reasons)


@pytest.mark.one_profile("service")
def test_a_chain_whose_key_does_not_match_is_rejected_and_the_operation_stays_intact(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    op = _manual(kube, "mismatch")
    ca = TestCA.make()
    wrong = ca.sign(key_pair().public_key(), "app.example.com")
    kube.put_secret("mismatch-signed", {"tls.crt": ca.chain_pem(wrong)})

    body = kube.wait_condition("mismatch", "Stalled", "True", "MergeRejected", timeout=MERGE_WAIT)
    assert body["status"]["operation"]["merge"]["result"] == "Rejected"
    assert body["status"]["operation"]["status"] == "inProgress"
    pending = vault_ops.pending("mismatch")
    assert pending is not None
    assert (pending["request_id"], pending["status"]) == (op["requestId"], "inProgress")
    kube.wait_event("mismatch", "MergeRejected")

    # The next poll (a GET of the operation) keeps reporting the refusal, merges nothing.
    reads, merges = vault_ops.count(PENDING_READS), vault_ops.count(MERGES)
    wait_for(lambda: vault_ops.count(PENDING_READS) > reads, MERGE_WAIT, "the next poll")
    never(
        lambda: (kube.condition("mismatch", "Ready") or {}).get("reason") != "MergeRejected",
        2.0,
        "the MergeRejected report was replaced",
    )
    assert vault_ops.count(MERGES) == merges
    assert kube.event_reasons("mismatch").count("MergeRejected") == 1

    # The chain is fixed in the Secret: the next poll merges it.
    right = ca.sign_csr(op["csr"])
    kube.put_secret("mismatch-signed", {"tls.crt": ca.chain_pem(right)})
    kube.wait_condition("mismatch", "Ready", "True", "Issued", timeout=MERGE_WAIT)


@pytest.mark.one_profile("documented")
def test_a_merge_while_an_issuer_request_is_in_progress_is_forbidden_and_kept_intact(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    op = _issuer_with_merge_from(kube, vault_ops, "early")
    ca = TestCA.make()
    kube.put_secret("early-signed", {"tls.crt": ca.chain_pem(ca.sign_csr(op["csr"]))})

    body = kube.wait_condition("early", "Ready", "False", "MergeForbidden", timeout=MERGE_WAIT)
    assert body["status"]["operation"]["merge"]["result"] == "Forbidden"
    assert body["status"]["operation"]["status"] == "inProgress"
    assert kube.condition("early", "Issuing")["status"] == "True"  # type: ignore[index]
    assert "forbidden" in kube.condition("early", "Ready")["message"].lower()  # type: ignore[index]
    pending = vault_ops.pending("early")
    assert pending is not None
    assert (pending["request_id"], pending["status"]) == (op["requestId"], "inProgress")
    assert pending["cancellation_requested"] is False
    kube.wait_event("early", "MergeForbidden")
    assert vault_ops.count(MERGES) >= 1


@pytest.mark.one_profile("service")
def test_a_chain_from_elsewhere_is_merged_after_the_issuer_request_failed(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    op = _issuer_with_merge_from(kube, vault_ops, "rescue")
    ca = TestCA.make()
    leaf = ca.sign_csr(op["csr"])
    kube.put_secret("rescue-signed", {"tls.crt": ca.chain_pem(leaf)})
    vault_ops.fail("rescue", "Rejected", "Organization not validated.")

    body = kube.wait_condition("rescue", "Ready", "True", "Issued", timeout=MERGE_WAIT)
    assert body["status"]["operation"]["merge"]["result"] == "Merged"
    delivered = pem_certs(secret_text(kube.secret("rescue-tls"), "tls.crt"))  # type: ignore[arg-type]
    assert delivered[0] == leaf
    kube.wait_event("rescue", "Merged")


@pytest.mark.one_profile("documented")
def test_a_chain_put_in_merge_from_after_the_request_was_cancelled_is_merged(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    op = _issuer_with_merge_from(kube, vault_ops, "salvage")
    kube.patch_certificate("salvage", {"spec": {"cancel": True}})
    body = kube.wait_condition("salvage", "Stalled", "True", "OperationCancelled", timeout=45)
    assert "salvage-signed" in kube.condition("salvage", "Ready")["message"]  # type: ignore[index]

    # The operator does not watch Secrets: it looks at mergeFrom again by itself.
    ca = TestCA.make()
    leaf = ca.sign_csr(op["csr"])
    kube.put_secret("salvage-signed", {"tls.crt": ca.chain_pem(leaf)})
    body = kube.wait_condition("salvage", "Ready", "True", "Issued", timeout=MERGE_WAIT)
    assert body["status"]["operation"]["status"] == "completed"
    delivered = pem_certs(secret_text(kube.secret("salvage-tls"), "tls.crt"))  # type: ignore[arg-type]
    assert delivered[0] == leaf


def _issuer_with_merge_from(kube: Kube, vault_ops: VaultOps, name: str) -> dict[str, Any]:
    vault_ops.set_issuer(ISSUER, "DigiCert")
    spec = certificate_spec(
        "main", f"{name}-tls", ISSUER, mergeFrom={"secretName": f"{name}-signed"}
    )
    kube.apply_certificate(name, spec)
    body = kube.wait_operation(name, lambda op: op.get("status") == "inProgress")
    op: dict[str, Any] = body["status"]["operation"]
    return op
