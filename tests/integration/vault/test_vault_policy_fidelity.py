"""The policy is validated with Key Vault's rules, in Key Vault's syntax (issue 14, kind 2).

Over real HTTPS against `kvcert vault serve`, under both profiles (they do not differ here):
subjects as Key Vault writes them, calendar validity months, at most one lifetime action, and the
bounds of the Trigger definition; a refused policy leaves nothing behind.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
from typing import Any

import httpx
import pytest
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from cryptography import x509
from cryptography.x509.oid import NameOID
from tests.integration.vault.vault_helpers import assert_error, create, url, wait_status


def _issued(kv: httpx.Client, name: str) -> tuple[x509.Certificate, dict[str, Any]]:
    """The certificate a Self create made, and its policy as the vault returns it."""
    assert wait_status(kv, name)["status"] == "completed"
    response = kv.get(url(f"/certificates/{name}"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return x509.load_der_x509_certificate(base64.b64decode(body["cer"])), body["policy"]


def _create(kv: httpx.Client, name: str, **x509_props: Any) -> httpx.Response:
    props = {"subject": "CN=test.example.com", **x509_props}
    return create(kv, name, x509_props=props)


def _values(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _assert_nothing_created(kv: httpx.Client, name: str) -> None:
    assert kv.get(url(f"/certificates/{name}")).status_code == 404
    assert kv.get(url(f"/certificates/{name}/pending")).status_code == 404


def test_a_subject_with_a_space_after_the_comma_gives_cn_and_o(kv: httpx.Client, name: str):
    response = _create(kv, name, subject="CN=TestCert, O=TenantId")
    assert response.status_code == 202, response.text
    cert, policy = _issued(kv, name)
    assert _values(cert, NameOID.COMMON_NAME) == ["TestCert"]
    assert _values(cert, NameOID.ORGANIZATION_NAME) == ["TenantId"]
    assert policy["x509_props"]["subject"] == "CN=TestCert, O=TenantId"


def test_a_quoted_organisation_and_s_for_the_state(kv: httpx.Client, name: str):
    subject = 'CN=a.example,O="Field Services, Inc.",L=Dallas,S=Texas,C=US'
    assert _create(kv, name, subject=subject).status_code == 202
    cert, _ = _issued(kv, name)
    assert _values(cert, NameOID.ORGANIZATION_NAME) == ["Field Services, Inc."]
    assert _values(cert, NameOID.STATE_OR_PROVINCE_NAME) == ["Texas"]
    assert _values(cert, NameOID.LOCALITY_NAME) == ["Dallas"]
    assert _values(cert, NameOID.COUNTRY_NAME) == ["US"]
    assert _values(cert, NameOID.COMMON_NAME) == ["a.example"]
    # Written CN first, encoded as X.500 orders it: C, S, L, O, CN.
    oids = [a.oid for a in cert.subject]
    assert (oids[0], oids[-1]) == (NameOID.COUNTRY_NAME, NameOID.COMMON_NAME)


def test_st_is_the_state_and_e_the_email_address(kv: httpx.Client, name: str):
    assert _create(kv, name, subject="CN=a; ST=Texas; E=admin@a.example").status_code == 202
    cert, _ = _issued(kv, name)
    assert _values(cert, NameOID.STATE_OR_PROVINCE_NAME) == ["Texas"]
    assert _values(cert, NameOID.EMAIL_ADDRESS) == ["admin@a.example"]


@pytest.mark.parametrize(
    "subject",
    ["not a distinguished name", "CN=a,", "FOO=bar", 'CN="unterminated', "C=USA", "CN="],
)
def test_a_malformed_subject_is_bad_parameter_and_creates_nothing(
    kv: httpx.Client, name: str, subject: str
):
    assert_error(_create(kv, name, subject=subject), 400, "BadParameter")
    _assert_nothing_created(kv, name)


def _months_later(when: dt.datetime, months: int) -> dt.date:
    total = when.month - 1 + months
    year, month = when.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(when.day, calendar.monthrange(year, month)[1]))


@pytest.mark.parametrize("months", [12, 3, 1])
def test_validity_months_are_calendar_months(kv: httpx.Client, name: str, months: int):
    assert _create(kv, name, validity_months=months).status_code == 202
    cert, _ = _issued(kv, name)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert end.date() == _months_later(start, months)
    assert end.time() == start.time()


def _action(**trigger: int) -> dict[str, Any]:
    return {"trigger": trigger, "action": {"action_type": "AutoRenew"}}


def test_more_than_one_lifetime_action_is_refused(kv: httpx.Client, name: str):
    actions = [_action(lifetime_percentage=80), _action(days_before_expiry=30)]
    response = create(kv, name, lifetime_actions=actions)
    assert_error(response, 400, "BadParameter", "At most one action is allowed")
    _assert_nothing_created(kv, name)


@pytest.mark.parametrize(
    ("validity", "trigger"),
    [
        pytest.param(1, {"days_before_expiry": 28}, id="28 days of a 1-month certificate"),
        pytest.param(12, {"days_before_expiry": 325}, id="325 days of a 12-month certificate"),
        pytest.param(None, {"days_before_expiry": 325}, id="325 days of the default 12 months"),
        pytest.param(12, {"days_before_expiry": 0}, id="0 days"),
        pytest.param(12, {"lifetime_percentage": 0}, id="0 percent"),
        pytest.param(12, {"lifetime_percentage": 100}, id="100 percent"),
    ],
)
def test_a_trigger_outside_its_bounds_is_refused(
    kv: httpx.Client, name: str, validity: int | None, trigger: dict[str, int]
):
    props: dict[str, Any] = {"subject": "CN=a"}
    if validity is not None:
        props["validity_months"] = validity
    response = create(kv, name, x509_props=props, lifetime_actions=[_action(**trigger)])
    assert_error(response, 400, "BadParameter")
    _assert_nothing_created(kv, name)


def test_days_before_expiry_may_reach_27_x_validity_months(kv: httpx.Client, name: str):
    props = {"subject": "CN=a", "validity_months": 2}
    response = create(kv, name, x509_props=props, lifetime_actions=[_action(days_before_expiry=54)])
    assert response.status_code == 202, response.text
    _, policy = _issued(kv, name)
    assert policy["lifetime_actions"] == [_action(days_before_expiry=54)]


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param({"key_props": {"kty": "oct"}}, id="symmetric key type"),
        pytest.param({"key_props": {"kty": "RSA", "key_size": 1024}}, id="RSA 1024"),
        pytest.param({"key_props": {"kty": "EC", "crv": "P-192"}}, id="unknown curve"),
        pytest.param({"x509_props": {"subject": "CN=a", "validity_months": 1201}}, id="1201 mo"),
        pytest.param({"x509_props": {"subject": "CN=a", "ekus": ["1.40.1"]}}, id="bad EKU OID"),
        pytest.param(
            {"x509_props": {"subject": "CN=a", "key_usage": ["everything"]}}, id="key usage"
        ),
        pytest.param({"secret_props": {"contentType": "text/plain"}}, id="content type"),
    ],
)
def test_every_other_bound_of_the_policy_is_enforced(
    kv: httpx.Client, name: str, policy: dict[str, Any]
):
    assert_error(create(kv, name, **policy), 400, "BadParameter")
    _assert_nothing_created(kv, name)


def test_an_update_policy_with_two_actions_is_refused_and_changes_nothing(
    kv: httpx.Client, name: str
):
    assert create(kv, name).status_code == 202
    _, before = _issued(kv, name)
    actions = [_action(lifetime_percentage=50), _action(lifetime_percentage=90)]
    response = kv.patch(url(f"/certificates/{name}/policy"), json={"lifetime_actions": actions})
    assert_error(response, 400, "BadParameter", "At most one action is allowed")
    assert kv.get(url(f"/certificates/{name}/policy")).json() == before


def test_microsofts_sdk_creates_a_certificate_from_key_vaults_subject_syntax(
    sdk: CertificateClient, name: str
):
    policy = CertificatePolicy(issuer_name="Self", subject="CN=TestCert, O=TenantId")
    issued = sdk.begin_create_certificate(name, policy).result()
    assert issued.cer is not None
    cert = x509.load_der_x509_certificate(bytes(issued.cer))
    assert _values(cert, NameOID.COMMON_NAME) == ["TestCert"]
    assert _values(cert, NameOID.ORGANIZATION_NAME) == ["TenantId"]
