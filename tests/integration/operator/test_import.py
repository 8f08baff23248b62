"""spec.importFrom: a PFX (tls.pfx) or a PEM certificate and key from a Secret."""

from __future__ import annotations

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    secret_text,
)
from tests.integration.operator.testca import TestCA, key_pair, key_pem, pem_certs, pfx


def _import_spec(vault: str, name: str) -> dict[str, object]:
    return {
        "vaultRef": {"name": vault},
        "secretName": f"{name}-tls",
        "importFrom": {"secretName": f"{name}-source"},
    }


def test_a_pfx_in_import_from_is_imported_and_delivered(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    ca = TestCA.make()
    key = key_pair()
    cert = ca.sign(key.public_key(), "pfx.example.com")
    kube.put_secret("pfx-source", {"tls.pfx": pfx(key, cert, ca)})
    creates = vault_ops.count(CREATES)
    kube.apply_certificate("pfx", _import_spec(keyvault, "pfx"))

    body = kube.wait_condition("pfx", "Ready", "True", "Issued")
    assert body["status"]["operation"]["status"] == "completed"
    vault_cert = vault_ops.certificate("pfx")
    assert vault_cert is not None
    assert vault_cert["x5t"] == body["status"]["certificate"]["x5t"]
    secret = kube.secret("pfx-tls")
    assert secret is not None
    assert pem_certs(secret_text(secret, "tls.crt"))[0] == cert
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    assert vault_ops.count(CREATES) == creates
    reasons = kube.event_reasons("pfx")
    assert "Imported" in reasons
    kube.wait_event("pfx", "Issued")


def test_a_pem_certificate_and_key_in_import_from_are_imported_and_delivered(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    ca = TestCA.make()
    key = key_pair()
    cert = ca.sign(key.public_key(), "pem.example.com")
    kube.put_secret(
        "pem-source", {"tls.crt": ca.chain_pem(cert), "tls.key": key_pem(key)}, "kubernetes.io/tls"
    )
    kube.apply_certificate("pem", _import_spec(keyvault, "pem"))

    body = kube.wait_condition("pem", "Ready", "True", "Issued")
    vault_cert = vault_ops.certificate("pem")
    assert vault_cert is not None
    assert vault_cert["x5t"] == body["status"]["certificate"]["x5t"]
    secret = kube.secret("pem-tls")
    assert secret is not None
    assert pem_certs(secret_text(secret, "tls.crt"))[0] == cert
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    kube.wait_event("pem", "Imported")
