"""The API server itself rejects invalid Certificates: the CRDs' schema and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import Kube

VALID: dict[str, Any] = {
    "vaultRef": {"name": "main"},
    "secretName": "web-tls",
    "policy": {"issuer": {"name": "Self"}, "subject": "CN=web"},
}


def _rejected(kube: Kube, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as raised:
        kube.apply_certificate(name, spec)
    assert raised.value.status == 422, raised.value.body
    return str(raised.value.body)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {**VALID, "mergeFrom": {"secretName": "a"}, "importFrom": {"secretName": "b"}},
            "mutually exclusive",
            id="mergeFrom and importFrom together",
        ),
        pytest.param(
            {"vaultRef": {"name": "main"}, "secretName": "web-tls"},
            "policy is required",
            id="neither a policy nor importFrom",
        ),
        pytest.param(
            {**VALID, "deletionPolicy": "Sometimes"}, "deletionPolicy", id="unknown deletionPolicy"
        ),
        pytest.param(
            {**VALID, "certificateName": "not_valid!"}, "certificateName", id="bad Key Vault name"
        ),
        pytest.param({**VALID, "secretName": None}, "secretName", id="no secretName"),
    ],
)
def test_the_api_server_rejects_an_invalid_certificate(kube: Kube, spec, message):
    assert message in _rejected(kube, "bad", {k: v for k, v in spec.items() if v is not None})


def test_certificate_name_cannot_change_once_set(kube: Kube):
    kube.apply_certificate("web", {**VALID, "certificateName": "web-one"})
    with pytest.raises(ApiException) as raised:
        kube.patch_certificate("web", {"spec": {"certificateName": "web-two"}})
    assert raised.value.status == 422
    assert "certificateName is immutable" in str(raised.value.body)
    kube.delete_certificate("web")


def test_a_keyvault_needs_exactly_one_credential(kube: Kube):
    body = {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "KeyVault",
        "metadata": {"name": "two"},
        "spec": {
            "url": "https://kv.example.vault.azure.net",
            "auth": {
                "managedIdentity": {},
                "token": {"secretRef": {"name": "t", "key": "token"}},
            },
        },
    }
    with pytest.raises(ApiException) as raised:
        kube.custom.create_namespaced_custom_object(
            "kvcert.io", "v1alpha1", kube.namespace, "keyvaults", body
        )
    assert raised.value.status == 422
