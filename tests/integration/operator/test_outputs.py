"""More outputs (issue 15 §7): spec.secretTemplate and spec.additionalOutputFormats."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.integration.operator.harness import CREATES, Kube, VaultOps, certificate_spec, wait_for

PASSWORD = b"keystore-pass"
ALL_FORMATS: list[dict[str, Any]] = [
    {"type": "CombinedPEM"},
    {"type": "DER"},
    {"type": "PKCS12", "passwordSecretRef": {"name": "p12-pass", "key": "password"}},
]


def _data(kube: Kube, name: str) -> dict[str, bytes]:
    secret = kube.secret(name)
    assert secret is not None
    return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}


def _der(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_template_and_every_format_then_a_template_edit_rewrites_without_a_create(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    kube.put_secret("p12-pass", {"password": PASSWORD})
    template = {"labels": {"team": "web"}, "annotations": {"example.com/owner": "web-team"}}
    spec = certificate_spec(
        keyvault, "out-tls", secretTemplate=template, additionalOutputFormats=ALL_FORMATS
    )
    creates = vault_ops.count(CREATES)
    kube.apply_certificate("out", spec)
    kube.wait_condition("out", "Ready", "True", "Issued")
    assert vault_ops.count(CREATES) - creates == 1

    secret = kube.secret("out-tls")
    assert secret is not None
    assert secret.metadata is not None
    assert (secret.metadata.labels or {})["team"] == "web"
    assert (secret.metadata.labels or {})["app.kubernetes.io/managed-by"] == "kvcert"
    assert (secret.metadata.annotations or {})["example.com/owner"] == "web-team"
    assert (secret.metadata.annotations or {})["kvcert.io/output-hash"]
    data = _data(kube, "out-tls")
    key = serialization.load_pem_private_key(data["tls.key"], None)
    chain = x509.load_pem_x509_certificates(data["tls.crt"])

    combined = data["tls-combined.pem"]
    assert combined.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _der(serialization.load_pem_private_key(combined, None)) == _der(key)
    assert x509.load_pem_x509_certificates(combined) == chain

    assert _der(serialization.load_der_private_key(data["key.der"], None)) == _der(key)

    p12_key, p12_leaf, _extra = pkcs12.load_key_and_certificates(data["keystore.p12"], PASSWORD)
    assert p12_key is not None
    assert _der(p12_key) == _der(key)
    assert p12_leaf == chain[0]

    version = kube.certificate("out")["status"]["certificate"]["version"]  # type: ignore[index]
    edit = {"labels": {"team": "edge"}, "annotations": None}
    kube.patch_certificate("out", {"spec": {"secretTemplate": edit}})

    def relabelled() -> bool:
        found = kube.secret("out-tls")
        return found is not None and (found.metadata.labels or {}).get("team") == "edge"

    wait_for(relabelled, 30, "the Secret to carry the edited template")
    body = kube.wait_condition("out", "Ready", "True", "Issued")
    assert body["status"]["certificate"]["version"] == version
    assert vault_ops.count(CREATES) - creates == 1, "a template edit creates nothing"
    edited = kube.secret("out-tls")
    assert edited is not None
    assert edited.metadata is not None
    assert "example.com/owner" not in (edited.metadata.annotations or {})


def test_key_formats_of_a_non_exportable_key_are_reported(kube: Kube, keyvault: str):
    spec = certificate_spec(keyvault, "nx-tls", additionalOutputFormats=[{"type": "DER"}])
    spec["policy"]["key"]["exportable"] = False
    kube.apply_certificate("nx", spec)
    body = kube.wait_condition("nx", "Ready", "False", "KeyNotExportable")
    assert "DER" in kube.condition("nx", "Ready")["message"]  # type: ignore[index]
    assert body["status"]["certificate"]["version"]
    data = _data(kube, "nx-tls")
    assert "tls.crt" in data
    assert "key.der" not in data
    assert "tls.key" not in data


def test_a_missing_keystore_password_is_a_condition(kube: Kube, keyvault: str):
    spec = certificate_spec(keyvault, "np-tls", additionalOutputFormats=ALL_FORMATS[2:])
    kube.apply_certificate("np", spec)
    kube.wait_condition("np", "Ready", "False", "OutputRefused")
    message = kube.condition("np", "Ready")["message"]  # type: ignore[index]
    assert "p12-pass" in message
    assert "password" in message
