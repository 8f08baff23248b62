"""Every field of a Certificate's spec, and what changing it on a Ready certificate does
(issue #15 §3; the README's table "What a spec change does" says the same).

The table must name every field of the model: a new field without a row fails here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from kvcert.api.certificate import CertificateSpec, Issuer, Key, Policy
from kvcert.reconcile import SecretFacts, reconcile
from kvcert.reconcile.lifecycle import update_digest
from kvcert.reconcile.operation import issuance_hash

from .support import NOW, body, intent, kinds, make

NEW_VERSION = ["RecordIntent", "CreateCertificate"]
IN_PLACE = ["UpdateInPlace"]
SECRET_ONLY = ["ReadCertificate"]  # then WriteSecret: the Secret is rewritten, no new version
NOTHING = []  # nothing in Key Vault; at most a status write

POLICY = {
    "issuer": {"name": "Self"},
    "subject": "CN=web.example.com",
    "dnsNames": ["web.example.com"],
    "key": {"type": "EC", "curve": "P-256"},
}


def policy(**changes: Any) -> dict[str, Any]:
    merged = {**POLICY, **changes}
    return {key: value for key, value in merged.items() if value is not None}


# field path -> (what a change does, the spec overrides that change it, first actions)
FIELDS: dict[str, tuple[str, dict[str, Any] | None, list[str] | None]] = {
    "vaultRef": ("where later requests go; the current version stays", None, None),
    "certificateName": ("immutable (refused by the API server)", None, None),
    "secretName": (
        "a Secret of the new name is written; the old one is left",
        {"secretName": "other-tls"},
        ["ReadSecret"],
    ),
    "policy.issuer.name": (
        "new version",
        {"policy": policy(issuer={"name": "mydigicert"})},
        NEW_VERSION,
    ),
    "policy.issuer.certificateType": (
        "new version",
        {"policy": policy(issuer={"name": "Self", "certificateType": "OV-SSL"})},
        NEW_VERSION,
    ),
    "policy.issuer.certificateTransparency": (
        "new version",
        {"policy": policy(issuer={"name": "Self", "certificateTransparency": True})},
        NEW_VERSION,
    ),
    "policy.subject": ("new version", {"policy": policy(subject="CN=other")}, NEW_VERSION),
    "policy.dnsNames": ("new version", {"policy": policy(dnsNames=["a.example"])}, NEW_VERSION),
    "policy.emails": ("new version", {"policy": policy(emails=["a@example.com"])}, NEW_VERSION),
    "policy.upns": ("new version", {"policy": policy(upns=["a@example.com"])}, NEW_VERSION),
    "policy.validityMonths": ("new version", {"policy": policy(validityMonths=6)}, NEW_VERSION),
    "policy.key.type": (
        "new version",
        {"policy": policy(key={"type": "RSA", "size": 2048})},
        NEW_VERSION,
    ),
    "policy.key.curve": (
        "new version",
        {"policy": policy(key={"type": "EC", "curve": "P-384"})},
        NEW_VERSION,
    ),
    "policy.key.size": (
        "new version",
        {"policy": policy(key={"type": "RSA", "size": 4096})},
        NEW_VERSION,
    ),
    "policy.key.exportable": (
        "new version",
        {"policy": policy(key={"type": "EC", "curve": "P-256", "exportable": False})},
        NEW_VERSION,
    ),
    "policy.key.reuseKey": (
        "new version",
        {"policy": policy(key={"type": "EC", "curve": "P-256", "reuseKey": True})},
        NEW_VERSION,
    ),
    "policy.contentType": (
        "new version",
        {"policy": policy(contentType="application/x-pem-file")},
        NEW_VERSION,
    ),
    "policy.keyUsage": (
        "new version",
        {"policy": policy(keyUsage=["digitalSignature"])},
        NEW_VERSION,
    ),
    "policy.ekus": ("new version", {"policy": policy(ekus=["1.3.6.1.5.5.7.3.2"])}, NEW_VERSION),
    "policy.lifetimeActions": (
        "in place: PATCH .../policy",
        {
            "policy": policy(
                lifetimeActions=[{"trigger": {"lifetimePercentage": 50}, "action": "AutoRenew"}]
            )
        },
        IN_PLACE,
    ),
    "tags": ("in place: PATCH /certificates/{name}/", {"tags": {"team": "a"}}, IN_PLACE),
    "secretTemplate": (
        "the Secret is rewritten",
        {"secretTemplate": {"labels": {"team": "a"}}},
        SECRET_ONLY,
    ),
    "additionalOutputFormats": (
        "the Secret is rewritten",
        {"additionalOutputFormats": [{"type": "CombinedPEM"}]},
        SECRET_ONLY,
    ),
    "mergeFrom": ("merged while a manual request is in progress", None, None),
    "importFrom": ("imported once per distinct content (a new version)", None, None),
    "cancel": ("cancels an operation in progress", {"cancel": True}, NOTHING),
    "deletionPolicy": ("a finalizer added or removed", {"deletionPolicy": "Delete"}, NOTHING),
    "onSoftDeleted": ("used at the next 409", {"onSoftDeleted": "Recover"}, NOTHING),
    "renewBefore": ("renewalTime moves", {"renewBefore": "240h"}, NOTHING),
    "renewBeforePercentage": ("renewalTime moves", {"renewBeforePercentage": 10}, NOTHING),
    "refreshInterval": ("renewalTime moves", {"refreshInterval": "24h"}, NOTHING),
    "source": (
        "Existing: no longer managed (a Released event), only read and delivered",
        {"source": "Existing", "policy": None},
        ["Emit", "ReadCertificate"],
    ),
    "adopt": ("used before a first write to a name that is not ours", {"adopt": True}, NOTHING),
}


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """camelCase paths of every field, descending into the policy, its issuer and its key."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = {"policy": Policy, "issuer": Issuer, "key": Key}.get(info.alias or name)
        if nested is not None:
            paths |= _paths(nested, f"{path}.")
        else:
            paths.add(path)
    return paths


def test_the_table_names_every_field_of_the_spec() -> None:
    assert _paths(CertificateSpec) == set(FIELDS)


def _ready(**spec: Any) -> dict[str, Any]:
    probe = make(body())
    hashes = {
        "issuanceHash": issuance_hash(probe, probe.spec),  # type: ignore[arg-type]
        "recordedAt": "2026-11-22T11:59:00Z",
    }
    status = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}],
        "operation": {"requestId": "r1", "status": "completed", "intent": intent(**hashes)},
        "certificate": {
            "version": "v1",
            "x5t": "x5t-1",
            "notBefore": NOW.isoformat(),
            "notAfter": (NOW + timedelta(days=365)).isoformat(),
        },
        "renewalTime": (NOW + timedelta(days=292)).isoformat(),
        "appliedUpdate": update_digest(probe.spec),  # type: ignore[arg-type]
    }
    return body(status, generation=2, **spec)


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        pytest.param(path, change, expected, id=f"{path}: {what}")
        for path, (what, change, expected) in FIELDS.items()
        if change is not None and expected is not None
    ],
)
def test_what_a_change_does(path: str, change: dict[str, Any], expected: list[str]) -> None:
    # The Secret of the old name is in sync (a new secretName has not been read yet).
    facts = {} if path == "secretName" else {"secret": SecretFacts(True, True, "x5t-1", "v1")}
    decision = reconcile(make(_ready(**change), now=NOW + timedelta(days=1), **facts))
    assert kinds(decision) == expected
    assert "CreateCertificate" not in kinds(decision) or expected == NEW_VERSION
