"""A create with a configured issuer (provider DigiCert): followed while in progress, delivered
when the simulated CA signs (driven by the vault's management API)."""

from __future__ import annotations

import re

from cryptography import x509

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
    secret_text,
)
from tests.integration.operator.testca import pem_certs

ISSUER = "mydigicert"


def test_a_create_with_a_configured_issuer_shows_the_operation_in_progress(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    kube.apply_certificate("dc-pending", certificate_spec(keyvault, "dc-pending-tls", ISSUER))

    # The intent is recorded (Issuing) before the create; then the operation itself.
    body = kube.wait_operation("dc-pending", lambda op: op.get("status") == "inProgress")
    op = body["status"]["operation"]
    assert re.fullmatch(r"[0-9a-f]{32}", op["requestId"])
    assert op["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert op["issuer"] == ISSUER
    assert op["cancellationRequested"] is False
    ready = kube.condition("dc-pending", "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Issuing")
    assert kube.condition("dc-pending", "Stalled")["status"] == "False"  # type: ignore[index]
    pending = vault_ops.pending("dc-pending")
    assert pending is not None
    assert pending["request_id"] == op["requestId"]
    kube.wait_event("dc-pending", "Created")
    assert kube.secret("dc-pending-tls") is None


def test_a_completed_issuer_operation_is_delivered_to_a_tls_secret_and_ready(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    vault_ops.set_issuer(ISSUER, "DigiCert")
    creates = vault_ops.count(CREATES)
    kube.apply_certificate("dc-done", certificate_spec(keyvault, "dc-done-tls", ISSUER))
    kube.wait_operation("dc-done", lambda op: op.get("status") == "inProgress")

    vault_ops.complete("dc-done")
    body = kube.wait_condition("dc-done", "Ready", "True", "Issued", timeout=45)

    status = body["status"]
    assert status["operation"]["status"] == "completed"
    assert status["operation"]["target"].split("?")[0].endswith("/certificates/dc-done")
    vault_cert = vault_ops.certificate("dc-done")
    assert vault_cert is not None
    assert status["certificate"]["x5t"] == vault_cert["x5t"]
    assert status["certificate"]["version"] == vault_cert["id"].rsplit("/", 1)[-1]
    assert kube.condition("dc-done", "Issuing")["status"] == "False"  # type: ignore[index]
    assert kube.condition("dc-done", "Stalled")["status"] == "False"  # type: ignore[index]

    secret = kube.secret("dc-done-tls")
    assert secret is not None
    assert secret.type == "kubernetes.io/tls"
    chain = pem_certs(secret_text(secret, "tls.crt"))
    root = x509.load_pem_x509_certificate(vault_ops.ca_pem().encode())
    assert len(chain) >= 2, "tls.crt holds the leaf, then the chain"
    leaf = chain[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["app.example.com"]
    assert chain[-1].issuer == root.subject
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    assert root.subject in {c.subject for c in pem_certs(secret_text(secret, "ca.crt"))}
    assert vault_ops.count(CREATES) - creates == 1
    kube.wait_event("dc-done", "Issued")
    assert kube.event_reasons("dc-done") == ["Created", "Issued"], "one event per transition"
