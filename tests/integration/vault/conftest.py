"""Fixtures for the local vault's integration tests: real `kvcert vault serve` processes.

One vault per profile for the whole session (tests use unique certificate names, so they do not
interfere); `vault` is parametrised over both profiles, so every test using it runs twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
from azure.keyvault.certificates import CertificateClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from tests.integration.vault.vault_helpers import HOSTNAME
from tests.support.vault import LocalVault, StaticTokenCredential

PROFILES = ("documented", "service")


@pytest.fixture(scope="session", params=PROFILES)
def vault(request: pytest.FixtureRequest) -> Iterator[LocalVault]:
    """A running vault under each profile, trusted through ca.crt, also named kv.vault.test."""
    with LocalVault.start(profile=request.param, hostnames=(HOSTNAME,)) as running:
        yield running


@pytest.fixture
def kv(vault: LocalVault) -> Iterator[httpx.Client]:
    with vault.client() as client:
        yield client


@pytest.fixture
def name() -> str:
    """A fresh certificate name (Key Vault names: letters, digits, dashes)."""
    return f"c-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def sdk(vault: LocalVault) -> CertificateClient:
    """The unmodified azure-keyvault-certificates client, addressing 127.0.0.1."""
    return CertificateClient(
        vault.url,
        StaticTokenCredential(vault.token),
        connection_verify=str(vault.ca_path),
        verify_challenge_resource=False,
    )


@pytest.fixture(scope="session")
def pfx_b64() -> str:
    """A PKCS#12 (no password) with an EC key and a self-signed certificate, base64."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    blob = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.NoEncryption()
    )
    return base64.b64encode(blob).decode()
