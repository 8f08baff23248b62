"""secretTemplate and additionalOutputFormats: when the output Secret is rewritten, and what is
reported when a format cannot be built (issue 15 §7)."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.api.certificate import CertificateSpec
from kvcert.reconcile import CallError, SecretFacts, WriteSecret, reconcile
from kvcert.reconcile.outcomes import OUTPUT_REFUSED, OutputRefused, SecretWritten, outcome_of
from kvcert.reconcile.secret import output_hash

from .support import assert_transition, body, cert, make, op, ready_status

TEMPLATE = {"labels": {"team": "web"}, "annotations": {"example.com/owner": "web"}}
DER = [{"type": "DER"}]
P12 = [{"type": "PKCS12", "passwordSecretRef": {"name": "p12", "key": "password"}}]
IN_PROGRESS = {"operation": {"requestId": "r1", "status": "inProgress"}}
COMPLETED = op("completed", target="https://kv/certificates/web")


def _spec(**fields: Any) -> CertificateSpec:
    spec = make(body(**fields)).spec
    assert isinstance(spec, CertificateSpec)
    return spec


def _held(**fields: Any) -> SecretFacts:
    """The Secret as written for `fields`: version v1, x5t-1, that spec's output hash."""
    return SecretFacts(True, True, "x5t-1", "v1", output_hash(_spec(**fields)))


def _no_export(formats: list[dict[str, Any]]) -> dict[str, Any]:
    policy = {
        "issuer": {"name": "Self"},
        "subject": "CN=web.example.com",
        "key": {"type": "EC", "curve": "P-256", "exportable": False},
    }
    return {"policy": policy, "additionalOutputFormats": formats}


CASES = [
    pytest.param(
        make(body(ready_status()), secret=_held()),
        [],
        None,
        id="a certificate without the fields keeps its Secret (no hash, no rewrite)",
    ),
    pytest.param(
        make(body(ready_status(), secretTemplate=TEMPLATE), secret=_held()),
        ["ReadCertificate"],
        None,
        id="a new secretTemplate on a Ready certificate reads the version to rewrite the Secret",
    ),
    pytest.param(
        make(
            body(ready_status(), secretTemplate=TEMPLATE),
            certificate=cert(),
            secret=_held(),
        ),
        ["WriteSecret"],
        None,
        id="a Secret written for another template is rewritten once, nothing created",
    ),
    pytest.param(
        make(
            body(ready_status(), secretTemplate=TEMPLATE, additionalOutputFormats=DER),
            secret=_held(secretTemplate=TEMPLATE, additionalOutputFormats=DER),
        ),
        [],
        None,
        id="a Secret written for the same template and formats is in sync",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS, **_no_export(DER)), operation=COMPLETED, certificate=cert()
        ).with_outcome(SecretWritten("x5t-1", "v1", output_hash(_spec(**_no_export(DER))))),
        ["Emit"],
        ("False", "KeyNotExportable"),
        id="a key format of a non-exportable key is reported once the certificate is delivered",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS, additionalOutputFormats=P12),
            operation=COMPLETED,
            certificate=cert(),
            secret=SecretFacts.absent(),
        ).with_outcome(OutputRefused(CallError(422, OUTPUT_REFUSED, "Secret p12 is missing"))),
        ["Emit"],
        ("False", "OutputRefused"),
        id="a missing keystore password is reported, not retried in the same round",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "ready"), CASES)
def test_transition(inp: Any, expected: list[str], ready: tuple[str, str] | None) -> None:
    assert_transition(inp, expected, ready)


def test_write_secret_carries_the_template_formats_and_hash() -> None:
    fields = {"secretTemplate": TEMPLATE, "additionalOutputFormats": P12}
    inp = make(body(IN_PROGRESS, **fields), operation=COMPLETED, certificate=cert(), secret=None)
    inp = inp.with_outcome(SecretWritten("old", "v0"))  # a Secret of an older version
    (write,) = reconcile(inp).actions
    assert isinstance(write, WriteSecret)
    assert write.labels == (("team", "web"),)
    assert write.annotations == (("example.com/owner", "web"),)
    assert [f.type.value for f in write.formats] == ["PKCS12"]
    assert write.output_hash == output_hash(_spec(**fields))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param({}, {}, True, id="no fields: no hash either way"),
        pytest.param({"secretTemplate": TEMPLATE}, {"secretTemplate": TEMPLATE}, True, id="same"),
        pytest.param({"secretTemplate": TEMPLATE}, {}, False, id="template removed"),
        pytest.param(
            {"additionalOutputFormats": DER},
            {"additionalOutputFormats": P12},
            False,
            id="formats changed",
        ),
        pytest.param(
            {"secretTemplate": TEMPLATE},
            {"secretTemplate": TEMPLATE, "validityMonths": None},
            True,
            id="unrelated fields do not count",
        ),
    ],
)
def test_output_hash(a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    assert (output_hash(_spec(**a)) == output_hash(_spec(**b))) is same
    assert output_hash(_spec()) is None


def test_only_the_output_refusal_code_is_an_output_refusal() -> None:
    write = WriteSecret("web-tls", "web", "v1", "x5t-1")
    assert isinstance(outcome_of(write, CallError(422, OUTPUT_REFUSED, "m")), OutputRefused)
    assert not isinstance(outcome_of(write, CallError(422, "Other", "m")), OutputRefused)
