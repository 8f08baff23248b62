"""The ImportCertificate body: the content type Key Vault reads `value` by is always sent."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from kvcert.keyvault import KeyVaultClient
from kvcert.keyvault.policy import PEM, PKCS12, CertificatePolicySpec

from .conftest import FakeVault, example

Make = Callable[..., KeyVaultClient]


def _answer(vault: FakeVault) -> None:
    body = example("ImportCertificate")["responses"]["200"]["body"]
    vault.on("POST /certificates/web/import", httpx.Response(200, json=body))


def _sent(vault: FakeVault) -> dict[str, object]:
    found: dict[str, object] = json.loads(vault.authorized()[-1].content)
    return found


async def test_a_content_type_alone_is_sent_as_the_policy(
    vault: FakeVault, make_client: Make
) -> None:
    _answer(vault)
    async with make_client() as client:
        await client.import_certificate("web", "-----BEGIN PRIVATE KEY-----", content_type=PEM)
    assert _sent(vault)["policy"] == {"secret_props": {"contentType": PEM}}


async def test_a_content_type_overrides_the_policy_spec(
    vault: FakeVault, make_client: Make
) -> None:
    _answer(vault)
    spec = CertificatePolicySpec(subject="CN=web", content_type=PKCS12)
    async with make_client() as client:
        await client.import_certificate("web", "pem", policy=spec, content_type=PEM)
    policy = _sent(vault)["policy"]
    assert isinstance(policy, dict)
    assert policy["secret_props"] == {"contentType": PEM}
    assert policy["x509_props"]["subject"] == "CN=web"


async def test_without_a_content_type_nothing_is_added(vault: FakeVault, make_client: Make) -> None:
    _answer(vault)
    async with make_client() as client:
        await client.import_certificate("web", b"\x01")
    assert "policy" not in _sent(vault)
