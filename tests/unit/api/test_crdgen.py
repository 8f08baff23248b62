"""The generated CRDs: structural, and carrying the API server's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kvcert.api import crdgen

RENDERED = crdgen.render_all()


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found.extend(_walk(value, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
    return found


def _schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load(RENDERED[name])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_schemas_are_structural(name: str) -> None:
    for path, node in _walk(_schema(name)):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "allOf", "oneOf", "title", "$defs", "const"} & set(node), path
        if "default" in node:
            assert node["default"] is not None, path


def test_certificate_crd_names_columns_and_subresources() -> None:
    crd = yaml.safe_load(RENDERED["kvcert.io_certificates.yaml"])
    spec = crd["spec"]
    assert spec["group"] == "kvcert.io"
    assert spec["names"]["shortNames"] == ["kvcert", "kvcerts"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column["jsonPath"] for column in version["additionalPrinterColumns"]}
    assert columns == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Status": ".status.operation.status",
        "Issuer": ".spec.policy.issuer.name",
        "Source": ".spec.source",
        "Secret": ".spec.secretName",
        "Expires": ".status.certificate.notAfter",
        "Renewal": ".status.renewalTime",
        "Age": ".metadata.creationTimestamp",
    }


def test_certificate_schema_carries_the_rules() -> None:
    schema = _schema("kvcert.io_certificates.yaml")
    spec = schema["properties"]["spec"]
    rules = [rule["rule"] for rule in spec["x-kubernetes-validations"]]
    assert any("oldSelf.certificateName" in rule for rule in rules)
    assert any("mergeFrom" in rule and "importFrom" in rule for rule in rules)
    assert spec["properties"]["certificateName"]["pattern"] == "^[0-9a-zA-Z-]{1,127}$"
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]
    policy = spec["properties"]["policy"]["properties"]
    assert policy["contentType"]["default"] == "application/x-pkcs12"
    assert policy["key"]["properties"]["size"]["enum"] == [2048, 3072, 4096]
    assert spec["properties"]["deletionPolicy"]["enum"] == ["Retain", "DeletePending", "Delete"]


@pytest.mark.parametrize("name", ["kvcert.io_keyvaults.yaml", "kvcert.io_clusterkeyvaults.yaml"])
def test_vault_auth_is_exactly_one_in_cel(name: str) -> None:
    auth = _schema(name)["properties"]["spec"]["properties"]["auth"]
    (rule,) = auth["x-kubernetes-validations"]
    assert rule["rule"].endswith("== 1")


def test_crdgen_writes_the_files(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RENDERED)
