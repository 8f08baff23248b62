"""kvcert.ctl.status: the facts of `kvcert status` (what --output json|yaml prints) and the
screen of text made from them; kvcert.ctl.parser's arguments and exit codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kvcert.api import lifecycle
from kvcert.ctl import parser, status

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (None, ""),
        ("not a time", ""),
        ("2026-06-01T11:59:18Z", "42s"),
        ("2026-06-01T11:59:00Z", "1m"),
        ("2026-06-01T10:30:00Z", "90m"),
        ("2026-06-01T09:00:00Z", "3h"),
        ("2026-05-31T00:00:00Z", "36h"),
        ("2026-05-29T12:00:00Z", "3d"),
        ("2026-06-01T12:05:00Z", "in 5m"),
        (dt.datetime(2026, 6, 1, 11, 0), "60m"),  # naive: UTC
    ],
)
def test_age_reads_like_kubectl(moment: str | dt.datetime | None, shown: str) -> None:
    assert status.age(moment, NOW) == shown


CERT: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "team-a"},
    "spec": {
        "vaultRef": {"name": "main"},
        "secretName": "web-tls",
        "mergeFrom": {"secretName": "web-signed"},
        "policy": {
            "issuer": {"name": "Unknown"},
            "subject": "CN=web.example.com",
            "dnsNames": ["web.example.com"],
        },
    },
    "status": {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "AwaitingMerge",
                "message": "put the signed chain in Secret web-signed",
                "lastTransitionTime": "2026-06-01T11:55:00Z",
            }
        ],
        "operation": {
            "requestId": "abc123",
            "status": "inProgress",
            "issuer": "Unknown",
            "csr": "-----BEGIN CERTIFICATE REQUEST-----...",
            "csrRef": {"kind": "ConfigMap", "name": "web-csr"},
            "merge": {"fingerprint": "f" * 64, "result": "Rejected", "message": "key mismatch"},
            "intent": {"marker": "m"},
        },
        "failedAttempts": 2,
        "lastFailureTime": "2026-06-01T11:58:00Z",
    },
}


def test_status_facts_of_a_pending_manual_certificate() -> None:
    events = [
        {"type": "Normal", "reason": f"R{i}", "message": "m", "count": 1, "time": NOW}
        for i in range(status.EVENTS_SHOWN + 3)
    ]
    facts = status.status_facts(CERT, None, events)
    assert facts["spec"]["vault"] == "KeyVault/main"
    assert facts["spec"]["mergeFrom"] == "web-signed"
    assert facts["operation"]["requestId"] == "abc123"
    assert facts["operation"]["csrRef"] == {"kind": "ConfigMap", "name": "web-csr"}
    assert facts["operation"]["merge"] == {"result": "Rejected", "message": "key mismatch"}
    assert "csr" not in facts["operation"]
    assert "intent" not in facts["operation"]
    assert facts["certificate"] is None
    assert facts["secret"] == {"name": "web-tls", "exists": False}
    assert (facts["failedAttempts"], facts["lastFailureTime"]) == (2, "2026-06-01T11:58:00Z")
    assert facts["events"][0]["reason"] == "R3"  # the last EVENTS_SHOWN
    assert len(facts["events"]) == status.EVENTS_SHOWN
    assert facts["events"][0]["time"] == "2026-06-01T12:00:00Z"

    text = status.render(facts, NOW)
    assert text.startswith("Certificate team-a/web\n")
    for line in (
        "  Issuer:      Unknown",
        "  SANs:        DNS:web.example.com",
        "  Merge from:  web-signed",
        "  Ready       False   AwaitingMerge          5m",
        "              put the signed chain in Secret web-signed",
        "Failed attempts: 2 (last 2m ago)",
        "Pending operation: inProgress (issuer Unknown)",
        "  Request id:  abc123",
        "  CSR:         ConfigMap web-csr (kvcert csr)",
        "  Last merge:  Rejected: key mismatch",
        "Delivered version: none yet",
        "Secret web-tls: does not exist",
    ):
        assert line in text.splitlines(), line


def test_status_of_a_delivered_certificate_shows_version_and_secret() -> None:
    body = {
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"vaultRef": {"name": "main"}, "secretName": "web-tls"},
        "status": {
            "conditions": [],
            "certificate": {
                "version": "v2",
                "serialNumber": "0ABC",
                "x5t": "xyz",
                "notBefore": "2026-05-01T00:00:00Z",
                "notAfter": "2026-05-31T00:00:00Z",
                "id": "https://vault/certificates/web/v2",
            },
        },
    }
    secret = {
        "type": "kubernetes.io/tls",
        "keys": ["ca.crt", "tls.crt", "tls.key"],
        "leaf": {"subject": "CN=web", "serialNumber": "0ABC", "sans": ["DNS:web"]},
        "chainLength": 2,
        "keyMatchesLeaf": False,
    }
    facts = status.status_facts(body, secret, [])
    assert facts["certificate"]["version"] == "v2"
    assert "id" not in facts["certificate"]
    assert "failedAttempts" not in facts
    lines = status.render(facts, NOW).splitlines()
    assert "  (none yet: is the operator running?)" in lines
    assert "Pending operation: none" in lines
    assert "  Valid:       2026-05-01T00:00:00Z to 2026-05-31T00:00:00Z (EXPIRED 36h ago)" in lines
    assert "Secret web-tls: kubernetes.io/tls, keys ca.crt, tls.crt, tls.key" in lines
    assert "  Leaf:        CN=web serial 0ABC" in lines
    assert "  SANs:        DNS:web" in lines
    assert "  Key matches leaf: NO: tls.key is not the leaf's key" in lines
    assert "  (none)" in lines  # no events


def test_the_help_names_the_lifecycle_annotations() -> None:
    assert parser.RENEW_ANNOTATION == lifecycle.RENEW_ANNOTATION
    assert parser.RETRY_ANNOTATION == lifecycle.RETRY_ANNOTATION


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["merge", "web"],  # --chain is required
        ["status", "web", "-o", "xml"],
        ["inspect", "configmap", "x"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser.plugin_main(argv)
    assert exited.value.code == 2
    assert "usage: kubectl kvcert" in capsys.readouterr().err
