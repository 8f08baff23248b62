"""Renewals are scheduled, not polled: Key Vault's AutoRenew is picked up at its trigger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kvcert.reconcile import CallError, InvalidSpec, SecretFacts, SourceFacts, reconcile
from kvcert.reconcile.lifecycle import RENEWAL_MARGIN, rules_of, vault_renews_at
from kvcert.reconcile.operation import policy_hash
from kvcert.reconcile.outcomes import CertificateRead, Conflict, OperationRead, SecretWritten

from .support import NOW, body, cert, intent, kinds, make, op, ready_status

AUTO_RENEW = {
    "issuer": {"name": "Self"},
    "subject": "CN=web.example.com",
    "dnsNames": ["web.example.com"],
    "key": {"type": "EC", "curve": "P-256"},
    "lifetimeActions": [{"trigger": {"lifetimePercentage": 80}, "action": "AutoRenew"}],
}
YEAR = timedelta(days=365)


def renewing(now_offset: timedelta, **facts: Any) -> Any:
    status = ready_status()
    status["operation"]["intent"] = intent()  # recorded for the default policy
    status["certificate"].update(
        notBefore=NOW.isoformat().replace("+00:00", "Z"),
        notAfter=(NOW + YEAR).isoformat().replace("+00:00", "Z"),
    )
    raw = body(status, policy=AUTO_RENEW)
    # the policy gained lifetimeActions after issuance would be a new create; keep it equal:
    probe = make(raw)
    status["operation"]["intent"]["policyHash"] = policy_hash(probe, probe.spec)  # type: ignore[arg-type]
    return make(body(status, policy=AUTO_RENEW), now=NOW + now_offset, **facts)


def test_the_check_is_at_the_trigger_plus_a_margin() -> None:
    probe = make(body(policy=AUTO_RENEW))
    rules = rules_of(probe.spec, None)  # type: ignore[arg-type]
    assert vault_renews_at(rules, NOW, NOW + YEAR) == NOW + YEAR * 0.8
    assert vault_renews_at((), NOW, NOW + YEAR) is None


@pytest.mark.parametrize(
    ("offset", "facts", "expected"),
    [
        pytest.param(
            timedelta(days=1),
            {"secret": SecretFacts(True, True, "x5t-1", "v1")},
            [],
            id="an in-sync certificate sleeps until its renewal point",
        ),
        pytest.param(
            timedelta(days=300),
            {},
            ["ReadCertificate"],
            id="reads Key Vault once the renewal point has passed",
        ),
        pytest.param(
            timedelta(days=300),
            {
                "certificate": cert(version="v2", x5t="x5t-2"),
                "secret": SecretFacts(True, True, "x5t-1", "v1"),
            },
            ["WriteSecret"],
            id="delivers the version Key Vault renewed",
        ),
    ],
)
def test_renewal(offset: timedelta, facts: dict[str, Any], expected: list[str]) -> None:
    decision = reconcile(renewing(offset, **facts))
    assert kinds(decision) == expected


def test_sleeps_until_the_renewal_point() -> None:
    decision = reconcile(renewing(timedelta(days=1), secret=SecretFacts(True, True, "x5t-1", "v1")))
    expected = (YEAR * 0.8 + RENEWAL_MARGIN - timedelta(days=1)).total_seconds()
    assert decision.requeue_after == pytest.approx(expected)
    assert decision.status_patch == {} or "certificate" not in decision.status_patch


def test_a_renewed_version_is_recorded_with_an_event() -> None:
    inp = renewing(
        timedelta(days=300),
        certificate=cert(version="v2", x5t="x5t-2"),
        secret=SecretFacts(True, True, "x5t-1", "v1"),
    )
    decision = reconcile(inp.with_outcome(SecretWritten("x5t-2", "v2")))
    assert decision.status_patch["certificate"]["version"] == "v2"
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "Renewed")]


def test_not_renewed_yet_looks_again_within_hours_not_seconds() -> None:
    inp = renewing(
        timedelta(days=300), certificate=cert(), secret=SecretFacts(True, True, "x5t-1", "v1")
    )
    decision = reconcile(inp)
    assert kinds(decision) == []
    assert decision.requeue_after is not None
    assert 2400 <= decision.requeue_after <= 4800


def test_an_import_blocked_by_our_operation_waits_instead_of_looping() -> None:
    raw = body(
        {"operation": {"intent": intent(action="import", policyHash=None, sourceFingerprint="fp")}},
        policy=None,
        importFrom={"secretName": "web-pfx"},
    )
    inp = (
        make(raw, import_secret=SourceFacts(True, fingerprint="fp"))
        .with_outcome(Conflict("import", CallError(409, "Conflict")))
        .with_outcome(CertificateRead(cert(x5t=None)))
        .with_outcome(OperationRead(op()))
    )
    decision = reconcile(inp)
    assert "ImportCertificate" not in kinds(decision)
    assert decision.final
    assert decision.requeue_after is not None


def test_an_invalid_spec_becomes_a_value_not_an_exception() -> None:
    inp = make(body(secretName="Not_A_Name"))
    assert isinstance(inp.spec, InvalidSpec)
    assert "spec.secretName" in inp.spec.message
