"""The simulated CA acts on its own after --ca-delay (ticker), and its chain verifies."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography import x509
from tests.integration.vault.vault_helpers import create, set_issuer, url, wait_for
from tests.support.vault import LocalVault


@pytest.fixture(scope="module")
def quick_vault() -> Iterator[LocalVault]:
    with LocalVault.start(profile="service", ca_delay=0.5) as vault:
        yield vault


def test_a_provider_issues_after_its_delay_without_anyone_reading_the_operation(
    quick_vault: LocalVault,
) -> None:
    with quick_vault.client() as kv:
        set_issuer(kv, "globalsign", "GlobalSign")
        assert create(kv, "ticked", "globalsign").status_code == 202

        def listed_with_a_thumbprint() -> bool:
            items = kv.get(url("/certificates")).json()["value"]
            return any(i["id"].endswith("/ticked") and i.get("x5t") for i in items)

        wait_for(listed_with_a_thumbprint, timeout=30)
        root = x509.load_pem_x509_certificate(kv.get("/_kvcert/ca").content)
        cer = kv.get(url("/certificates/ticked/")).json()["cer"]
        leaf = x509.load_der_x509_certificate(base64.b64decode(cer))
        leaf.verify_directly_issued_by(root)


def test_stats_reset(quick_vault: LocalVault) -> None:
    with quick_vault.client() as kv:
        kv.get(url("/certificates"))
        assert kv.delete("/_kvcert/stats").status_code == 200
        assert kv.get("/_kvcert/stats").json()["total"] == 0
