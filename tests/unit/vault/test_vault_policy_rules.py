"""The local vault's policy rules, as Key Vault applies them (issue 14, kind 2).

Subjects in Key Vault's X.500 syntax, calendar validity months, and every bound and enum of the
policy definition in reference/keyvault-api/2026-04-01/certificates.json.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from tests.support.policy_cases import MALFORMED_SUBJECTS

from kvcert.vault import crypto, names
from kvcert.vault import policy as policies
from kvcert.vault.errors import VaultError
from kvcert.vault.wire import PolicyIn

CN, ORG, L, ST, C = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.COUNTRY_NAME,
)


def _written(name: x509.Name) -> list[tuple[x509.ObjectIdentifier, str]]:
    """The attributes in the order the subject string names them (the reverse of the DER)."""
    return [(a.oid, str(a.value)) for a in reversed(list(name))]


@pytest.mark.parametrize(
    ("subject", "attributes"),
    [
        pytest.param(
            "CN=TestCert, O=TenantId", [(CN, "TestCert"), (ORG, "TenantId")], id="space after comma"
        ),
        pytest.param(
            'CN=a.example,O="Field Services, Inc.",L=Dallas,S=Texas,C=US',
            [
                (CN, "a.example"),
                (ORG, "Field Services, Inc."),
                (L, "Dallas"),
                (ST, "Texas"),
                (C, "US"),
            ],
            id="quoted value with a comma, S is the state",
        ),
        pytest.param("ST=Texas", [(ST, "Texas")], id="ST is the state too"),
        pytest.param(
            "E=admin@a.example", [(NameOID.EMAIL_ADDRESS, "admin@a.example")], id="E is e-mail"
        ),
        pytest.param("CN=a;O=b", [(CN, "a"), (ORG, "b")], id="semicolon separator"),
        pytest.param("cn = a , o = b ", [(CN, "a"), (ORG, "b")], id="spaces and lower case"),
        pytest.param('CN="say ""hi"""', [(CN, 'say "hi"')], id="doubled quote inside quotes"),
        pytest.param(
            "C=US,O=Field Services\\, Inc.,CN=a",
            [(C, "US"), (ORG, "Field Services, Inc."), (CN, "a")],
            id="RFC 4514 backslash escape",
        ),
        pytest.param("CN=caf\\c3\\a9", [(CN, "caf\u00e9")], id="RFC 4514 hex escapes"),
        pytest.param("OID.2.5.4.3=a", [(CN, "a")], id="dotted OID with prefix"),
        pytest.param(
            "1.2.3.4=#0c0161", [(x509.ObjectIdentifier("1.2.3.4"), "a")], id="hex DER value"
        ),
    ],
)
def test_a_subject_in_key_vaults_syntax_parses(subject: str, attributes: list[Any]) -> None:
    assert _written(names.parse(subject)) == attributes


def test_attributes_joined_by_plus_share_one_rdn() -> None:
    name = names.parse("CN=a+OU=b, O=c")
    assert [len(rdn) for rdn in name.rdns] == [1, 2]


@pytest.mark.parametrize(
    "subject",
    # the vault also refuses what only it can judge: length, repeats, country codes, OID arcs
    [*MALFORMED_SUBJECTS, "", "CN=a+CN=a", "C=USA", "CN=" + "a" * 65, "1.40=a"],
)
def test_a_malformed_subject_is_bad_parameter(subject: str) -> None:
    with pytest.raises(VaultError) as raised:
        policies.normalize({"x509_props": {"subject": subject}})
    assert (raised.value.status, raised.value.code) == (400, "BadParameter")


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        pytest.param("2026-11-29", 12, "2027-11-29", id="29 November + 12 months"),
        pytest.param("2026-12-31", 1, "2027-01-31", id="over the year end"),
        pytest.param("2027-01-31", 1, "2027-02-28", id="February lacks the 31st"),
        pytest.param("2028-01-30", 1, "2028-02-29", id="leap February"),
        pytest.param("2026-03-31", 1, "2026-04-30", id="April lacks the 31st"),
        pytest.param("2026-08-29", 6, "2027-02-28", id="February lacks the 29th"),
        pytest.param("2026-11-29", 1200, "2126-11-29", id="a hundred years"),
    ],
)
def test_validity_months_are_calendar_months(start: str, months: int, end: str) -> None:
    when = dt.datetime.fromisoformat(start).replace(hour=13, minute=7, tzinfo=dt.UTC)
    assert crypto.add_months(when, months) == when.replace(
        year=int(end[:4]), month=int(end[5:7]), day=int(end[8:])
    )


def _action(**trigger: int) -> dict[str, Any]:
    return {"trigger": trigger, "action": {"action_type": "AutoRenew"}}


def _x509(**fields: Any) -> dict[str, Any]:
    return {"subject": "CN=a", **fields}


BAD_POLICIES: list[Any] = [
    pytest.param(
        {"lifetime_actions": [_action(lifetime_percentage=80), _action(days_before_expiry=10)]},
        "At most one action is allowed",
        id="two lifetime actions",
    ),
    pytest.param({"lifetime_actions": [_action(lifetime_percentage=0)]}, None, id="0 percent"),
    pytest.param({"lifetime_actions": [_action(lifetime_percentage=100)]}, None, id="100 percent"),
    pytest.param({"lifetime_actions": [_action(days_before_expiry=0)]}, None, id="0 days"),
    pytest.param(
        {
            "x509_props": _x509(validity_months=1),
            "lifetime_actions": [_action(days_before_expiry=28)],
        },
        None,
        id="28 days before expiry of a 1-month certificate",
    ),
    pytest.param(
        {"lifetime_actions": [_action(days_before_expiry=325)]},
        None,
        id="325 days before expiry of the default 12 months",
    ),
    pytest.param(
        {"lifetime_actions": [_action(lifetime_percentage=80, days_before_expiry=10)]},
        None,
        id="both triggers",
    ),
    pytest.param(
        {"lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {}}]},
        None,
        id="no action type",
    ),
    pytest.param({"x509_props": _x509(validity_months=0)}, None, id="0 months"),
    pytest.param({"x509_props": _x509(validity_months=1201)}, None, id="1201 months"),
    pytest.param({"key_props": {"kty": "oct"}}, None, id="symmetric key type"),
    pytest.param({"key_props": {"kty": "RSA", "key_size": 1024}}, None, id="RSA 1024"),
    pytest.param({"key_props": {"kty": "RSA-HSM", "key_size": 8192}}, None, id="RSA-HSM 8192"),
    pytest.param({"key_props": {"kty": "RSA", "crv": "P-256"}}, None, id="curve on RSA"),
    pytest.param({"key_props": {"kty": "EC", "crv": "P-192"}}, None, id="unknown curve"),
    pytest.param(
        {"key_props": {"kty": "EC", "crv": "P-384", "key_size": 256}}, None, id="size vs curve"
    ),
    pytest.param({"x509_props": _x509(key_usage=["everything"])}, None, id="key usage"),
    pytest.param({"x509_props": _x509(ekus=["serverAuth"])}, None, id="EKU name"),
    pytest.param({"x509_props": _x509(ekus=["1.40.3"])}, None, id="EKU not encodable"),
    pytest.param({"x509_props": _x509(ekus=["1.02.3"])}, None, id="EKU leading zero"),
    pytest.param({"secret_props": {"contentType": "text/plain"}}, None, id="content type"),
    pytest.param({"issuer": {"name": "my issuer"}}, None, id="issuer name"),
]


@pytest.mark.parametrize(("policy", "message"), BAD_POLICIES)
def test_a_policy_outside_key_vaults_bounds_is_bad_parameter(
    policy: dict[str, Any], message: str | None
) -> None:
    with pytest.raises(VaultError) as raised:
        policies.normalize({"x509_props": _x509(), **policy})
    assert (raised.value.status, raised.value.code) == (400, "BadParameter")
    if message is not None:
        assert raised.value.message == message


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(
            {
                "x509_props": _x509(validity_months=2),
                "lifetime_actions": [_action(days_before_expiry=54)],
            },
            id="days before expiry = 27 x validity months",
        ),
        pytest.param({"lifetime_actions": [_action(lifetime_percentage=1)]}, id="1 percent"),
        pytest.param({"lifetime_actions": [_action(lifetime_percentage=99)]}, id="99 percent"),
        pytest.param({"key_props": {"kty": "EC", "crv": "P-256K"}}, id="P-256K"),
        pytest.param({"key_props": {"kty": "EC", "crv": "P-521", "key_size": 521}}, id="P-521"),
        pytest.param({"key_props": {"kty": "RSA-HSM", "key_size": 3072}}, id="RSA-HSM 3072"),
        pytest.param({"x509_props": _x509(validity_months=1200)}, id="1200 months"),
        pytest.param(
            {"x509_props": _x509(ekus=["1.3.6.1.5.5.7.3.1", "2.999.1"])}, id="EKUs as OIDs"
        ),
    ],
)
def test_a_policy_at_key_vaults_bounds_is_accepted(policy: dict[str, Any]) -> None:
    policies.normalize({"x509_props": _x509(), **policy})


def test_an_update_is_checked_against_the_merged_validity() -> None:
    base = policies.normalize(
        {
            "x509_props": _x509(validity_months=24),
            "lifetime_actions": [_action(days_before_expiry=600)],
        }
    )
    shorter = PolicyIn.model_validate({"x509_props": {"validity_months": 12}})
    with pytest.raises(VaultError) as raised:
        policies.merge(base, shorter)
    assert raised.value.code == "BadParameter"
