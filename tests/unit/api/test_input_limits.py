"""The models refuse what the API server refuses (issue #18 §4), and accept what lies inside.

Every row of the integration table tests/integration/operator/test_bad_input_refused.py (which
the API server refuses with 422) is refused by `from_body` too, so a body that bypassed
admission (an old CRD) gets the same answer; and the new limits let through what they should.
"""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.api import Certificate, ClusterKeyVault, InvalidResource, KeyVault
from kvcert.api.outputs import ANNOTATIONS_MAX_BYTES
from tests.integration.operator.test_bad_input_refused import REFUSED, SPEC, VAULT, Refused

MODELS: dict[str, type[Certificate] | type[KeyVault]] = {
    "Certificate": Certificate,
    "KeyVault": KeyVault,
    "ClusterKeyVault": ClusterKeyVault,
}


COERCED = {"cancel a string", "validityMonths a string", "key exportable a string"}
"""Rows pydantic's lax mode reads as the right type ("yes" as true, "12" as 12): the API server's
structural schema never lets such a body through, and reading it so is harmless."""


def _body(kind: str, spec: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "web", "namespace": "team-a"}, "spec": spec}


@pytest.mark.parametrize(
    "row", [pytest.param(row, id=row.id) for row in REFUSED if row.id not in COERCED]
)
def test_the_models_refuse_what_the_api_server_refuses(row: Refused) -> None:
    with pytest.raises(InvalidResource):
        MODELS[row.kind].from_body(_body(row.kind, row.spec))


def _certificate(**fields: Any) -> Certificate:
    return Certificate.from_body(_body("Certificate", {**SPEC, **fields}))


def _policy(**fields: Any) -> Certificate:
    return _certificate(policy={**SPEC["policy"], **fields})


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"dnsNames": ["*.example.com", "web", "a-b.c-d.example"]}, id="dns names"),
        pytest.param({"dnsNames": [f"n{i}.example.com" for i in range(250)]}, id="250 names"),
        pytest.param({"emails": ["first.last+tag@mail.example.com"]}, id="an e-mail address"),
        pytest.param({"upns": ["jörg@contoso.example"]}, id="a unicode user principal name"),
        pytest.param({"issuer": {"name": "dc", "certificateType": "OV-SSL"}}, id="cert type"),
    ],
)
def test_names_inside_the_limits_are_accepted(fields: dict[str, Any]) -> None:
    assert _policy(**fields).spec.policy is not None


def test_labels_annotations_tags_and_intervals_inside_the_limits_are_accepted() -> None:
    template = {
        "labels": {"app.kubernetes.io/name": "web", "team": "a_b.c-d", "empty": ""},
        "annotations": {"example.com/owner": "ü" * 1000, "note": "x" * 100_000},
    }
    spec = _certificate(
        secretTemplate=template,
        tags={"t" * 512: "v" * 256},
        refreshInterval="1m",
        importFrom=None,
    ).spec
    assert spec.secret_template is not None
    assert spec.refresh_interval == "1m"


def test_annotations_are_counted_in_bytes() -> None:
    """Four bytes a character: a value Kubernetes would refuse as too large is refused here."""
    value = "😀" * (ANNOTATIONS_MAX_BYTES // 4 + 1)
    with pytest.raises(InvalidResource, match="at most"):
        _certificate(secretTemplate={"annotations": {"note": value}})


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        pytest.param({"refreshInterval": "59s"}, "at least 1m", id="refresh under a minute"),
        pytest.param({"refreshInterval": "0.5m"}, "at least 1m", id="refresh of half a minute"),
        pytest.param({"tags": {"t" * 513: "v"}}, "tag names", id="a tag name of 513"),
        pytest.param(
            {"secretTemplate": {"labels": {"a/b/c": "x"}}}, "label keys", id="two slashes"
        ),
        pytest.param(
            {"secretTemplate": {"annotations": {"a" * 254 + "/b": "x"}}},
            "keys must be",
            id="an annotation prefix of 254",
        ),
    ],
)
def test_the_new_rules_refuse_in_words(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidResource, match=words):
        _certificate(**fields)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({**VAULT, "url": "https://kv.vault.azure.net/"}, id="a trailing slash"),
        pytest.param({**VAULT, "url": "https://127.0.0.1:8443"}, id="a port"),
        pytest.param({**VAULT, "caBundle": ""}, id="an empty caBundle"),
        pytest.param({**VAULT, "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n"}, id="PEM"),
    ],
)
def test_vaults_inside_the_limits_are_accepted(spec: dict[str, Any]) -> None:
    assert KeyVault.from_body(_body("KeyVault", spec)).spec.url == spec["url"]
