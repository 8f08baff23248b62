"""spec.contacts of KeyVault and ClusterKeyVault (issue #19 §2): what the models accept and
refuse, and that the generated CRD carries the same limits for the API server."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kvcert.api import ClusterKeyVault, InvalidResource, KeyVault
from kvcert.api.crdgen import render_all
from kvcert.api.keyvault import CONTACTS_MAX_ITEMS

AUTH = {"token": {"secretRef": {"name": "vault-token", "key": "token"}}}
MANY = [{"email": f"p{i}@example.com"} for i in range(CONTACTS_MAX_ITEMS)]


def _body(kind: str, contacts: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "https://kv.vault.azure.net", "auth": AUTH}
    if contacts is not ...:
        spec["contacts"] = contacts
    return {"kind": kind, "metadata": {"name": "main", "namespace": "team-a"}, "spec": spec}


VALID = [
    pytest.param(..., None, id="unset leaves the vault's contacts alone (None)"),
    pytest.param([], [], id="an empty list means delete the vault's contacts"),
    pytest.param(
        [{"email": "pki@example.com"}],
        [("pki@example.com", None, None)],
        id="an e-mail address alone is a contact",
    ),
    pytest.param(
        [{"email": "a.b+tag@mail.example.com", "name": "PKI team", "phone": "+1 (555) 010-0199"}],
        [("a.b+tag@mail.example.com", "PKI team", "+1 (555) 010-0199")],
        id="name and phone are kept as given",
    ),
    pytest.param(
        [{"email": "Ops@Example.COM", "phone": "0049 30/1234-5 ext. 7"}],
        [("Ops@Example.COM", None, "0049 30/1234-5 ext. 7")],
        id="mixed case and an extension are accepted",
    ),
    pytest.param(MANY, [(c["email"], None, None) for c in MANY], id="twenty contacts fit"),
]


@pytest.mark.parametrize("model", [KeyVault, ClusterKeyVault], ids=lambda m: m.KIND)
@pytest.mark.parametrize(("contacts", "expected"), VALID)
def test_valid_contacts_parse(
    model: type[KeyVault], contacts: Any, expected: list[tuple[str, Any, Any]] | None
) -> None:
    spec = model.from_body(_body(model.KIND, contacts)).spec
    if expected is None:
        assert spec.contacts is None
    else:
        assert spec.contacts is not None
        assert [(c.email, c.name, c.phone) for c in spec.contacts] == expected


INVALID = [
    pytest.param([{"name": "PKI team"}], "email", id="a contact without an email is refused"),
    pytest.param([{"email": "pki"}], "email", id="an address without a domain is refused"),
    pytest.param([{"email": "pki@"}], "email", id="an address without a host is refused"),
    pytest.param([{"email": "p ki@example.com"}], "email", id="a space in an address is refused"),
    pytest.param([{"email": "a@b..com"}], "email", id="an empty domain label is refused"),
    pytest.param([{"email": ""}], "email", id="an empty address is refused"),
    pytest.param(
        [{"email": "x" * 250 + "@example.com"}], "email", id="an address over 254 is refused"
    ),
    pytest.param(
        [{"email": "a@example.com", "phone": "call me; maybe"}],
        "phone",
        id="a phone with other characters is refused",
    ),
    pytest.param([{"email": "a@example.com", "name": ""}], "name", id="an empty name is refused"),
    pytest.param(
        [{"email": "a@example.com", "name": "n" * 257}], "name", id="a name over 256 is refused"
    ),
    pytest.param(
        [*MANY, {"email": "one-more@example.com"}], "contacts", id="twenty-one are refused"
    ),
    pytest.param(
        [{"email": "a@example.com"}, {"email": "a@example.com", "name": "again"}],
        "once",
        id="the same email twice is refused",
    ),
    pytest.param({"email": "a@example.com"}, "contacts", id="a mapping instead of a list"),
]


@pytest.mark.parametrize("model", [KeyVault, ClusterKeyVault], ids=lambda m: m.KIND)
@pytest.mark.parametrize(("contacts", "named"), INVALID)
def test_invalid_contacts_are_refused_naming_the_field(
    model: type[KeyVault], contacts: Any, named: str
) -> None:
    with pytest.raises(InvalidResource) as refused:
        model.from_body(_body(model.KIND, contacts))
    assert named in refused.value.message


@pytest.mark.parametrize("name", ["kvcert.io_keyvaults.yaml", "kvcert.io_clusterkeyvaults.yaml"])
def test_the_crd_carries_the_same_limits(name: str) -> None:
    crd = yaml.safe_load(render_all()[name])
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    contacts = spec["properties"]["contacts"]
    assert contacts["maxItems"] == CONTACTS_MAX_ITEMS
    assert contacts["x-kubernetes-list-type"] == "map"
    assert contacts["x-kubernetes-list-map-keys"] == ["email"]
    assert "last one probed wins" in contacts["description"]
    item = contacts["items"]
    assert item["required"] == ["email"]
    assert set(item["properties"]) == {"email", "name", "phone"}
    (rule,) = item["properties"]["email"]["x-kubernetes-validations"]
    assert rule["rule"].startswith('self.matches(r"^')
    assert rule["message"] == "email must be an e-mail address, e.g. pki-team@example.com"
    assert item["properties"]["email"]["maxLength"] == 254
