"""Every example under examples/ is a resource the models accept, so the README's pointers to
them never drift from the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kvcert.api.certificate import Certificate
from kvcert.api.issuer import CertificateIssuer, ClusterCertificateIssuer
from kvcert.api.keyvault import KeyVault

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODELS = {
    "Certificate": Certificate,
    "KeyVault": KeyVault,
    "CertificateIssuer": CertificateIssuer,
    "ClusterCertificateIssuer": ClusterCertificateIssuer,
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_parses(path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents
    for document in documents:
        document.setdefault("metadata", {}).setdefault("namespace", "default")
        model = MODELS[document["kind"]]
        assert model.from_body(document).metadata.name == document["metadata"]["name"]
