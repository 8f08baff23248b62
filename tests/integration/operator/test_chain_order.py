"""The output Secret's chain is leaf, intermediate, root whatever order it was given in.

Each chain here is handed over root first (root, intermediate, leaf): imported from a PEM Secret
(PEM content type), imported from a PFX whose CA bags are root then intermediate (PKCS#12 content
type), and merged for a manual request under both content types. Key Vault keeps a chain in the
order it was given (leaf first); the Secret always holds `tls.crt` = leaf, intermediate, root and
`ca.crt` = the root.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from tests.integration.operator.harness import Kube, VaultOps, certificate_spec, secret_text
from tests.integration.operator.testca import (
    TestCA,
    key_pair,
    key_pem,
    pem_certs,
    pem_of,
    pfx_of,
)

PEM = "application/x-pem-file"
PKCS12 = "application/x-pkcs12"
MERGE_WAIT = 60.0
"""The operator does not watch Secrets: it GETs mergeFrom on each poll (10 s, then growing)."""


def _delivered(kube: Kube, name: str) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    secret = kube.secret(f"{name}-tls")
    assert secret is not None
    assert "PRIVATE KEY" in secret_text(secret, "tls.key")
    return pem_certs(secret_text(secret, "tls.crt")), pem_certs(secret_text(secret, "ca.crt"))


def _cas() -> tuple[TestCA, TestCA]:
    root = TestCA.make("kvcert chain-order root")
    return root, root.intermediate("kvcert chain-order intermediate")


def test_a_pem_chain_imported_root_first_is_delivered_leaf_intermediate_root(
    kube: Kube, keyvault: str
):
    root, mid = _cas()
    key = key_pair()
    leaf = mid.sign(key.public_key(), "pem-order.example.com")
    kube.put_secret(
        "pem-order-source",
        {"tls.crt": pem_of(root.cert, mid.cert, leaf), "tls.key": key_pem(key)},
        "kubernetes.io/tls",
    )
    spec = certificate_spec(
        keyvault,
        "pem-order-tls",
        "Unknown",
        "pem-order.example.com",
        importFrom={"secretName": "pem-order-source"},
    )
    kube.apply_certificate("pem-order", spec)

    kube.wait_condition("pem-order", "Ready", "True", "Issued")
    chain, ca = _delivered(kube, "pem-order")
    assert chain == [leaf, mid.cert, root.cert]
    assert ca == [root.cert]


def test_a_pfx_with_its_root_first_is_delivered_leaf_intermediate_root(kube: Kube, keyvault: str):
    root, mid = _cas()
    key = key_pair()
    leaf = mid.sign(key.public_key(), "pfx-order.example.com")
    kube.put_secret("pfx-order-source", {"tls.pfx": pfx_of(key, leaf, [root.cert, mid.cert])})
    spec = {
        "vaultRef": {"name": keyvault},
        "secretName": "pfx-order-tls",
        "importFrom": {"secretName": "pfx-order-source"},
    }
    kube.apply_certificate("pfx-order", spec)

    kube.wait_condition("pfx-order", "Ready", "True", "Issued")
    chain, ca = _delivered(kube, "pfx-order")
    assert chain == [leaf, mid.cert, root.cert]
    assert ca == [root.cert]


@pytest.mark.parametrize(
    "content_type", [pytest.param(PEM, id="pem"), pytest.param(PKCS12, id="pkcs12")]
)
def test_a_chain_merged_root_first_is_delivered_leaf_intermediate_root(
    kube: Kube, keyvault: str, vault_ops: VaultOps, content_type: str
):
    name = "merge-pem" if content_type == PEM else "merge-pfx"
    spec: dict[str, Any] = certificate_spec(
        keyvault, f"{name}-tls", "Unknown", mergeFrom={"secretName": f"{name}-signed"}
    )
    spec["policy"]["contentType"] = content_type
    kube.apply_certificate(name, spec)
    body = kube.wait_condition(name, "Issuing", "True", "AwaitingMerge")

    root, mid = _cas()
    leaf = mid.sign_csr(body["status"]["operation"]["csr"])
    kube.put_secret(f"{name}-signed", {"tls.crt": pem_of(root.cert, mid.cert, leaf)})

    kube.wait_condition(name, "Ready", "True", "Issued", timeout=MERGE_WAIT)
    chain, ca = _delivered(kube, name)
    assert chain == [leaf, mid.cert, root.cert]
    assert ca == [root.cert]
    assert vault_ops.certificate(name) is not None
