"""The unmodified azure-keyvault-certificates SDK against the local vault, under both profiles."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from tests.integration.vault.vault_helpers import HOSTNAME, OutsideCA, wait_for
from tests.support.vault import LocalVault, StaticTokenCredential

FAST: dict[str, Any] = {"_polling_interval": 0.05}  # the SDK's private knob; default 5 s


def test_self_create_waits_on_the_poller_for_a_certificate(
    sdk: CertificateClient, name: str
) -> None:
    poller = sdk.begin_create_certificate(name, CertificatePolicy.get_default(), **FAST)
    result = poller.result(timeout=30)
    assert isinstance(result, KeyVaultCertificate)
    assert result.name == name
    assert result.cer is not None
    assert (
        x509.load_der_x509_certificate(bytes(result.cer)).subject.rfc4514_string()
        == "CN=DefaultPolicy"
    )
    assert result.properties is not None
    fetched = sdk.get_certificate(name)
    assert fetched.properties is not None
    assert fetched.properties.version == result.properties.version
    versions = list(sdk.list_properties_of_certificate_versions(name))
    assert [v.version for v in versions] == [result.properties.version]
    assert result.properties.version is not None
    by_version = sdk.get_certificate_version(name, result.properties.version)
    assert by_version.cer == result.cer
    with pytest.raises(ResourceNotFoundError):
        sdk.get_certificate_version(name, "0" * 32)


def test_unknown_issuer_then_merge_with_an_outside_ca(sdk: CertificateClient, name: str) -> None:
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=manual.test")
    poller = sdk.begin_create_certificate(name, policy, **FAST)
    operation = poller.result(timeout=30)
    assert isinstance(operation, CertificateOperation)
    assert operation.status == "inProgress"
    ca = OutsideCA()
    assert operation.csr is not None
    leaf = ca.sign(base64.b64encode(operation.csr).decode())
    merged = sdk.merge_certificate(
        name,
        [
            leaf.public_bytes(serialization.Encoding.DER),
            ca.cert.public_bytes(serialization.Encoding.DER),
        ],
    )
    assert isinstance(merged, KeyVaultCertificate)
    assert bytes(merged.cer or b"") == leaf.public_bytes(serialization.Encoding.DER)
    assert sdk.get_certificate_operation(name).status == "completed"


def test_issuer_set_get_update_list_delete(sdk: CertificateClient, name: str) -> None:
    issuer = f"dc-{name[-8:]}"
    created = sdk.create_issuer(issuer, "DigiCert", account_id="acct", password="pw")
    assert created.provider == "DigiCert"
    assert sdk.get_issuer(issuer).account_id == "acct"
    assert sdk.update_issuer(issuer, account_id="other").account_id == "other"
    assert issuer in [p.name for p in sdk.list_properties_of_issuers()]
    assert sdk.delete_issuer(issuer).name == issuer
    with pytest.raises(ResourceNotFoundError):
        sdk.get_issuer(issuer)


def test_digicert_create_cancel_delete_then_404(sdk: CertificateClient, name: str) -> None:
    issuer = f"dc-{name[-8:]}"
    sdk.create_issuer(issuer, "DigiCert")
    poller = sdk.begin_create_certificate(
        name, CertificatePolicy(issuer_name=issuer, subject="CN=dc.test"), **FAST
    )
    cancelled = sdk.cancel_certificate_operation(name)
    assert cancelled.cancellation_requested is True
    final = poller.result(timeout=30)
    assert isinstance(final, CertificateOperation)
    assert final.status in ("canceled", "cancelled")
    deleted = sdk.delete_certificate_operation(name)
    assert deleted.status in ("canceled", "cancelled")
    with pytest.raises(ResourceNotFoundError):
        sdk.get_certificate_operation(name)


def test_delete_recover_purge_with_the_sdk_pollers(sdk: CertificateClient, name: str) -> None:
    sdk.begin_create_certificate(name, CertificatePolicy.get_default(), **FAST).result()
    deleted = sdk.begin_delete_certificate(name, **FAST).result()
    assert deleted.recovery_id
    assert deleted.deleted_on
    assert deleted.scheduled_purge_date
    assert sdk.get_deleted_certificate(name).name == name
    assert name in [d.name for d in sdk.list_deleted_certificates()]
    recovered = sdk.begin_recover_deleted_certificate(name, **FAST).result()
    assert recovered.name == name
    sdk.begin_delete_certificate(name, **FAST).result()
    sdk.purge_deleted_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        sdk.get_deleted_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        sdk.get_certificate(name)


def test_properties_policy_backup_restore_contacts_and_import(
    sdk: CertificateClient, name: str, pfx_b64: str
) -> None:
    imported = sdk.import_certificate(name, base64.b64decode(pfx_b64))
    assert imported.policy is not None
    assert imported.policy.subject == "CN=imported.example.com"
    updated = sdk.update_certificate_properties(name, enabled=False, tags={"managed-by": "kvcert"})
    assert updated.properties is not None
    assert updated.properties.enabled is False
    assert updated.properties.tags == {"managed-by": "kvcert"}
    policy = sdk.update_certificate_policy(name, CertificatePolicy(subject="CN=new.example.com"))
    assert policy.subject == "CN=new.example.com"
    assert sdk.get_certificate_policy(name).subject == "CN=new.example.com"
    assert name in [p.name for p in sdk.list_properties_of_certificates(max_page_size=2)]
    backup = sdk.backup_certificate(name)
    sdk.begin_delete_certificate(name, **FAST).result()
    sdk.purge_deleted_certificate(name)
    assert sdk.restore_certificate_backup(backup).name == name
    contacts = sdk.set_contacts([CertificateContact(email="ops@example.com", name="ops")])
    assert contacts[0].email == "ops@example.com"
    assert sdk.get_contacts()[0].email == "ops@example.com"


def test_default_challenge_verification_through_a_multi_label_host(
    vault: LocalVault, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == HOSTNAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = CertificateClient(
        vault.url_for(HOSTNAME),
        StaticTokenCredential(vault.token),
        connection_verify=str(vault.ca_path),
    )
    result = client.begin_create_certificate(name, CertificatePolicy.get_default(), **FAST)
    certificate = result.result(timeout=30)
    assert isinstance(certificate, KeyVaultCertificate)
    assert certificate.id is not None
    assert certificate.id.startswith(f"https://{HOSTNAME}:{vault.port}/certificates/{name}/")
    wait_for(lambda: client.get_certificate(name).cer, timeout=10)


def test_pem_import_and_the_pem_secret(sdk: CertificateClient, name: str, pfx_b64: str) -> None:
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx_b64), None)
    assert key is not None
    assert cert is not None
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    policy = CertificatePolicy(content_type=CertificateContentType.pem)
    imported = sdk.import_certificate(name, pem, policy=policy)
    assert bytes(imported.cer or b"") == cert.public_bytes(serialization.Encoding.DER)
    assert imported.policy is not None
    assert imported.policy.content_type == CertificateContentType.pem


def test_password_protected_pfx_import(sdk: CertificateClient, name: str, pfx_b64: str) -> None:
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx_b64), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert is not None
    blob = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.BestAvailableEncryption(b"s3cret")
    )
    imported = sdk.import_certificate(name, blob, password="s3cret")
    assert bytes(imported.cer or b"") == cert.public_bytes(serialization.Encoding.DER)
    with pytest.raises(HttpResponseError) as caught:
        sdk.import_certificate(f"{name}-bad", blob, password="wrong")
    assert caught.value.status_code == 400
