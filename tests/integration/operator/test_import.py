"""spec.importFrom: a PFX (tls.pfx) or a PEM certificate and key from a Secret."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    secret_text,
)
from tests.integration.operator.testca import PEM, TestCA, key_pair, key_pem, pem_certs, pfx


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


# --- issue 14: what cert-manager and openssl write, imported as Key Vault accepts it ----------

RSA_PKCS1 = serialization.PrivateFormat.TraditionalOpenSSL
PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"


def _traditional_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#1 for RSA, SEC1 for EC (after `EC PARAMETERS`, as `openssl ecparam -genkey` writes)."""
    body = key.private_bytes(PEM, RSA_PKCS1, serialization.NoEncryption())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        body = (
            b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + body
        )
    return body


def _policy(cn: str, content_type: str | None) -> dict[str, object]:
    policy: dict[str, object] = {
        "issuer": {"name": "Unknown"},
        "subject": f"CN={cn}",
        "dnsNames": [cn],
        "key": {"type": "EC", "curve": "P-256", "exportable": True},
    }
    if content_type is not None:
        policy["contentType"] = content_type
    return policy


IMPORT_SHAPES = [
    # (id, name, spec.policy contentType ("none": no spec.policy), the content type stored)
    ("PKCS#1 RSA key without spec.policy", "rsa-nopolicy", "none", PEM_TYPE),
    ("SEC1 EC key without spec.policy", "ec-nopolicy", "none", PEM_TYPE),
    ("SEC1 EC key with a PEM policy", "ec-pem", PEM_TYPE, PEM_TYPE),
    ("SEC1 EC key with the policy's default content type (PKCS#12)", "ec-pfx", None, PFX_TYPE),
]


@pytest.mark.parametrize(
    ("case", "kind", "content_type", "stored"), IMPORT_SHAPES, ids=[c[0] for c in IMPORT_SHAPES]
)
def test_a_tls_secret_with_a_traditional_key_is_imported_as_key_vault_accepts_it(
    kube: Kube,
    keyvault: str,
    vault_ops: VaultOps,
    case: str,
    kind: str,
    content_type: str | None,
    stored: str,
) -> None:
    name = f"trad-{kind}"
    ca = TestCA.make()
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind.startswith("rsa")
        else key_pair()
    )
    cert = ca.sign(key.public_key(), f"{name}.example.com")
    key_text = _traditional_pem(key)
    kube.put_secret(
        f"{name}-source", {"tls.crt": ca.chain_pem(cert), "tls.key": key_text}, "kubernetes.io/tls"
    )
    spec = _import_spec(keyvault, name)
    if content_type != "none":
        spec["policy"] = _policy(f"{name}.example.com", content_type)
    kube.apply_certificate(name, spec)

    body = kube.wait_condition(name, "Ready", "True", "Issued")
    vault_cert = vault_ops.certificate(name)
    assert vault_cert is not None
    assert vault_cert["x5t"] == body["status"]["certificate"]["x5t"]
    assert vault_cert["policy"]["secret_props"]["contentType"] == stored
    secret = kube.secret(f"{name}-tls")
    assert secret is not None
    assert pem_certs(secret_text(secret, "tls.crt"))[0] == cert
    delivered = serialization.load_pem_private_key(secret_text(secret, "tls.key").encode(), None)
    assert delivered.public_key() == key.public_key()
    # The key stays out of status and events.
    key_body = b"".join(key_text.splitlines()[-3:-1]).decode()
    assert key_body not in json.dumps(body["status"])
    assert all(key_body not in (e.message or "") for e in kube.events(name))


def test_a_pfx_with_a_pem_policy_is_imported_as_pem(
    kube: Kube, keyvault: str, vault_ops: VaultOps
) -> None:
    ca = TestCA.make()
    key = key_pair()
    cert = ca.sign(key.public_key(), "pfx-pem.example.com")
    kube.put_secret("pfx-pem-source", {"tls.pfx": pfx(key, cert, ca)})
    spec = _import_spec(keyvault, "pfx-pem")
    spec["policy"] = _policy("pfx-pem.example.com", PEM_TYPE)
    kube.apply_certificate("pfx-pem", spec)

    kube.wait_condition("pfx-pem", "Ready", "True", "Issued")
    vault_cert = vault_ops.certificate("pfx-pem")
    assert vault_cert is not None
    assert vault_cert["policy"]["secret_props"]["contentType"] == PEM_TYPE
    secret = kube.secret("pfx-pem-tls")
    assert secret is not None
    assert pem_certs(secret_text(secret, "tls.crt"))[0] == cert


def test_an_unreadable_key_is_rejected_without_showing_it(
    kube: Kube, keyvault: str, vault_ops: VaultOps
) -> None:
    ca = TestCA.make()
    cert = ca.sign(key_pair().public_key(), "badkey.example.com")
    garbage = b"-----BEGIN RSA PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END RSA PRIVATE KEY-----\n"
    kube.put_secret(
        "badkey-source", {"tls.crt": ca.chain_pem(cert), "tls.key": garbage}, "kubernetes.io/tls"
    )
    kube.apply_certificate("badkey", _import_spec(keyvault, "badkey"))

    body = kube.wait_condition("badkey", "Ready", "False", "Rejected")
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    assert "tls.key" in ready["message"]
    assert "U0VDUkVU" not in json.dumps(body["status"])
    assert all("U0VDUkVU" not in (e.message or "") for e in kube.events("badkey"))
    assert vault_ops.certificate("badkey") is None
