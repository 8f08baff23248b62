"""The simplest path: a Self-issued certificate goes from apply to Ready with its Secret."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.operator.harness import Kube, secret_text


def test_self_issued_certificate_becomes_ready_with_a_tls_secret(kube: Kube, keyvault: str):
    kube.apply_certificate(
        "web",
        {
            "vaultRef": {"name": keyvault},
            "secretName": "web-tls",
            "policy": {
                "issuer": {"name": "Self"},
                "subject": "CN=web.example.com",
                "dnsNames": ["web.example.com"],
                "validityMonths": 12,
                "key": {"type": "EC", "curve": "P-256", "exportable": True},
                "contentType": "application/x-pem-file",
            },
        },
    )
    body = kube.wait_condition("web", "Ready", "True", "Issued")
    status = body["status"]
    assert status["operation"]["status"] == "completed"
    assert status["operation"]["requestId"]
    assert status["certificate"]["version"]
    assert status["certificate"]["x5t"]
    assert status["observedGeneration"] == body["metadata"]["generation"]

    secret = kube.secret("web-tls")
    assert secret is not None
    assert secret.type == "kubernetes.io/tls"
    leaf = x509.load_pem_x509_certificate(secret_text(secret, "tls.crt").encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["web.example.com"]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    assert "BEGIN CERTIFICATE" in secret_text(secret, "ca.crt")
    assert format(leaf.serial_number, "X").lstrip("0") in status["certificate"]["serialNumber"]
