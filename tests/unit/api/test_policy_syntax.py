"""The Certificate policy accepts what Key Vault accepts and refuses what it refuses (issue 14).

The model's checks are those of the generated CRD (the API server runs the CEL and schema rules;
tests/integration/operator/test_validation.py proves that), and the subject syntax is the one the
local vault parses: a subject the CRD accepts is one the vault can turn into a certificate.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kvcert.api import Policy
from kvcert.api.certificate import _SUBJECT_RE, SUBJECT_PATTERN
from kvcert.vault import crypto, names
from tests.support.policy_cases import MALFORMED_SUBJECTS

SUBJECTS_KEY_VAULT_ACCEPTS = [
    "CN=TestCert, O=TenantId",
    'CN=a.example,O="Field Services, Inc.",L=Dallas,S=Texas,C=US',
    "CN=a; ST=Texas; E=admin@a.example",
    "CN=a+OU=b, O=Example\\, Inc.",
    "cn = a , OID.2.5.4.10 = b",
    'CN="say ""hi"""',
    "C=US,ST=Texas,O=Field Services\\, Inc.,CN=a",
    "1.2.3.4=#0c0161,CN=x",
    "CN=*.example.com, OU=Web, DC=example, DC=com",
    "SERIALNUMBER=42, T=Admin, G=Ada, SN=Lovelace, I=AL, STREET=1 Main St, POSTALCODE=75001",
]


def _policy(**fields: Any) -> dict[str, Any]:
    return {"issuer": {"name": "Self"}, "subject": "CN=web", **fields}


@pytest.mark.parametrize("subject", SUBJECTS_KEY_VAULT_ACCEPTS)
def test_a_subject_key_vault_accepts_is_accepted_and_parses_in_the_vault(subject: str) -> None:
    Policy.model_validate(_policy(subject=subject))
    assert list(names.parse(subject))


@pytest.mark.parametrize("subject", MALFORMED_SUBJECTS)
def test_a_malformed_subject_is_refused_by_the_model_and_the_vault(subject: str) -> None:
    with pytest.raises(ValidationError, match=r"X\.500 name"):
        Policy.model_validate(_policy(subject=subject))
    with pytest.raises(crypto.CryptoInputError, match="Invalid subject name"):
        crypto.parse_subject(subject)


def test_the_crd_pattern_names_the_vaults_keywords() -> None:
    keywords = SUBJECT_PATTERN.split("(?i:", 1)[1].split(")", 1)[0].split("|")
    assert sorted(keywords) == sorted(names.SUBJECT_KEYWORDS)
    assert _SUBJECT_RE.pattern == SUBJECT_PATTERN


def _renew(**trigger: int) -> list[dict[str, Any]]:
    return [{"trigger": trigger, "action": "AutoRenew"}]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        pytest.param(
            {"lifetimeActions": _renew(lifetimePercentage=80) * 2},
            "lifetimeActions",
            id="two lifetime actions",
        ),
        pytest.param(
            {"lifetimeActions": _renew(lifetimePercentage=100)}, "lifetimePercentage", id="100%"
        ),
        pytest.param(
            {"validityMonths": 1, "lifetimeActions": _renew(daysBeforeExpiry=28)},
            "27 x validityMonths",
            id="days before expiry over 27 x validityMonths",
        ),
        pytest.param(
            {"lifetimeActions": _renew(daysBeforeExpiry=325)},
            "27 x validityMonths",
            id="days before expiry over 27 x the default 12 months",
        ),
        pytest.param({"validityMonths": 0}, "validityMonths", id="zero months"),
        pytest.param({"validityMonths": 1201}, "validityMonths", id="1201 months"),
        pytest.param({"ekus": ["1.40.1"]}, "ekus", id="an OID that cannot be encoded"),
        pytest.param({"ekus": ["1.02.1"]}, "ekus", id="an OID with a leading zero"),
        pytest.param({"issuer": {"name": "my issuer"}}, "issuer.name", id="issuer name"),
        pytest.param({"dnsNames": ["a b.example"]}, "dnsNames", id="DNS name with a space"),
    ],
)
def test_a_policy_outside_key_vaults_bounds_is_refused(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where.replace(".", r"\.")):
        Policy.model_validate(_policy(**fields))


def test_days_before_expiry_may_reach_27_x_validity_months() -> None:
    Policy.model_validate(_policy(validityMonths=2, lifetimeActions=_renew(daysBeforeExpiry=54)))
    Policy.model_validate(_policy(lifetimeActions=_renew(daysBeforeExpiry=324)))
