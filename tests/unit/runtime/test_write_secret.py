"""WriteSecret with secretTemplate and additionalOutputFormats: labels merged under kvcert's own,
the keystore password read from its Secret, a missing one refused without a Key Vault call."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from kubernetes import client

from kvcert.api.outputs import OutputFormat
from kvcert.reconcile import actions
from kvcert.reconcile.observed import CallError
from kvcert.reconcile.outcomes import OUTPUT_REFUSED
from kvcert.runtime import perform
from kvcert.runtime.kube import Owner

PASSWORD = b"pw"


def _pem_secret() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (key_pem + cert.public_bytes(serialization.Encoding.PEM)).decode()


class _Kube:
    def __init__(self, secrets: dict[str, client.V1Secret]) -> None:
        self.secrets = secrets
        self.put: list[client.V1Secret] = []

    async def get_secret(self, namespace: str, name: str) -> client.V1Secret | None:
        return self.secrets.get(name)

    async def put_secret(
        self, namespace: str, secret: client.V1Secret, *, exists: bool
    ) -> dict[str, object]:
        self.put.append(secret)
        return client.ApiClient().sanitize_for_serialization(secret)  # type: ignore[no-any-return]


@dataclass
class _Fetched:
    content_type: str
    value: str


class _Vault:
    def __init__(self) -> None:
        self.calls = 0

    async def get_certificate_secret(self, name: str, version: str) -> _Fetched:
        self.calls += 1
        return _Fetched("application/x-pem-file", _pem_secret())


def _password_secret(value: bytes) -> client.V1Secret:
    return client.V1Secret(data={"password": base64.b64encode(value).decode()})


P12 = OutputFormat.model_validate(
    {"type": "PKCS12", "passwordSecretRef": {"name": "p12", "key": "password"}}
)
ACTION = actions.WriteSecret(
    "web-tls",
    "web",
    "v1",
    "x5t-1",
    labels=(("app.kubernetes.io/managed-by", "someone"), ("team", "web")),
    annotations=(("example.com/a", "b"),),
    formats=(P12,),
    output_hash="h1",
)


def _performer(kube: _Kube, vault: _Vault) -> perform.Performer:
    return perform.Performer(
        kube=kube,  # type: ignore[arg-type]
        vault=vault,  # type: ignore[arg-type]
        namespace="ns",
        owner=Owner("web", "uid"),
        resource_version=None,
    )


async def test_the_secret_carries_the_template_under_kvcert_keys_and_the_keystore() -> None:
    kube, vault = _Kube({"p12": _password_secret(PASSWORD)}), _Vault()
    assert await _performer(kube, vault).perform(ACTION) is None
    (secret,) = kube.put
    assert secret.metadata.labels == {
        "app.kubernetes.io/managed-by": "kvcert",
        "team": "web",
        "kvcert.io/certificate": "web",
    }
    annotations = secret.metadata.annotations
    assert annotations["example.com/a"] == "b"
    assert annotations["kvcert.io/output-hash"] == "h1"
    blob = base64.b64decode(secret.data["keystore.p12"])
    key, leaf, _ = pkcs12.load_key_and_certificates(blob, PASSWORD)
    assert key is not None
    assert leaf is not None


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param({}, id="no password Secret"),
        pytest.param({"p12": _password_secret(b"")}, id="an empty password"),
        pytest.param({"p12": client.V1Secret(data={"other": "eA=="})}, id="no such key"),
    ],
)
async def test_a_missing_password_is_refused_before_any_key_vault_call(
    secrets: dict[str, Any],
) -> None:
    kube, vault = _Kube(secrets), _Vault()
    result = await _performer(kube, vault).perform(ACTION)
    assert isinstance(result, CallError)
    assert (result.status, result.code) == (422, OUTPUT_REFUSED)
    assert "p12" in result.message
    assert vault.calls == 0
    assert kube.put == []
