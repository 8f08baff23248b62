"""spec.source and spec.adopt (issue #19 §3): what source Existing refuses, in the pydantic
validators and in the generated CRD's CEL rules, with the same words (the API server's own
verdict on these rules is tests/integration/operator/test_existing.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kvcert.api import InvalidResource
from kvcert.api.certificate import (
    EXISTING_REFUSALS,
    Certificate,
    CertificateSource,
    existing_message,
)

CRD = Path(__file__).resolve().parents[3] / "crds" / "kvcert.io_certificates.yaml"
POLICY = {"issuer": {"name": "Self"}, "subject": "CN=web.example.com"}


def body(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"vaultRef": {"name": "main"}, "secretName": "web-tls"}
    base.update(spec)
    return {
        "metadata": {"name": "web", "namespace": "team-a", "uid": "u1", "generation": 1},
        "spec": {key: value for key, value in base.items() if value is not None},
    }


def existing(**spec: Any) -> dict[str, Any]:
    return body(source="Existing", **spec)


@pytest.mark.parametrize(
    ("raw", "source", "adopt"),
    [
        pytest.param(
            body(policy=POLICY), CertificateSource.MANAGED, False, id="Managed by default"
        ),
        pytest.param(existing(), CertificateSource.EXISTING, False, id="Existing needs no policy"),
        pytest.param(
            existing(refreshInterval="15m", certificateName="legacy-web"),
            CertificateSource.EXISTING,
            False,
            id="Existing names the Key Vault certificate and its refresh",
        ),
        pytest.param(
            existing(deletionPolicy="Retain", onSoftDeleted="Fail", cancel=False, adopt=False),
            CertificateSource.EXISTING,
            False,
            id="Existing accepts the defaults written out",
        ),
        pytest.param(
            body(policy=POLICY, adopt=True), CertificateSource.MANAGED, True, id="Managed adopts"
        ),
    ],
)
def test_accepted(raw: dict[str, Any], source: CertificateSource, adopt: bool) -> None:
    spec = Certificate.from_body(raw).spec
    assert (spec.source, spec.adopt) == (source, adopt)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(existing(policy=POLICY), "policy", id="Existing refuses a policy"),
        pytest.param(
            existing(mergeFrom={"secretName": "signed"}),
            "mergeFrom",
            id="Existing refuses mergeFrom",
        ),
        pytest.param(
            existing(importFrom={"secretName": "pfx"}),
            "importFrom",
            id="Existing refuses importFrom",
        ),
        pytest.param(existing(cancel=True), "cancel: true", id="Existing refuses cancel: true"),
        pytest.param(
            existing(renewBefore="720h"), "renewBefore", id="Existing refuses renewBefore"
        ),
        pytest.param(
            existing(renewBeforePercentage=20),
            "renewBeforePercentage",
            id="Existing refuses renewBeforePercentage",
        ),
        pytest.param(existing(tags={"team": "a"}), "tags", id="Existing refuses tags"),
        pytest.param(existing(tags={}), "tags", id="Existing refuses even empty tags"),
        pytest.param(
            existing(deletionPolicy="Delete"),
            "deletionPolicy other than Retain",
            id="Existing refuses deletionPolicy Delete",
        ),
        pytest.param(
            existing(deletionPolicy="DeletePending"),
            "deletionPolicy other than Retain",
            id="Existing refuses deletionPolicy DeletePending",
        ),
        pytest.param(
            existing(onSoftDeleted="Recover"),
            "onSoftDeleted: Recover",
            id="Existing refuses onSoftDeleted Recover",
        ),
        pytest.param(existing(adopt=True), "adopt: true", id="Existing refuses adopt"),
    ],
)
def test_existing_refusals_name_the_field_and_the_fix(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidResource) as caught:
        Certificate.from_body(raw)
    assert existing_message(field) in caught.value.message
    assert "set source: Managed" in caught.value.message


def test_managed_without_policy_is_still_refused() -> None:
    with pytest.raises(InvalidResource, match="policy is required unless importFrom is set"):
        Certificate.from_body(body())


def test_every_refusal_is_a_cel_rule_of_the_crd_with_the_same_message() -> None:
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    rules = {rule["message"]: rule["rule"] for rule in spec["x-kubernetes-validations"]}
    for _, when, field in EXISTING_REFUSALS:
        rule = rules.get(existing_message(field))
        assert rule is not None, f"no CEL rule for {field}"
        assert "self.source == 'Existing'" in rule
        assert when in rule
    assert spec["properties"]["source"]["enum"] == ["Managed", "Existing"]
    assert spec["properties"]["source"]["default"] == "Managed"
    assert spec["properties"]["adopt"]["default"] is False
    policy_rule = next(rule for message, rule in rules.items() if message.startswith("policy is"))
    assert "'Existing'" in policy_rule
