"""Every retried failure says what the user can do about it, one row per cause."""

from __future__ import annotations

import pytest

from kvcert.reconcile import CallError
from kvcert.reconcile.advice import explain
from kvcert.reconcile.outcomes import Failed

from .support import make

CASES = [
    pytest.param(
        Failed("CreateCertificate", CallError(403, "Forbidden", "x", inner_code="AccessDenied")),
        "AccessDenied",
        "grant the operator's identity the Key Vault permission certificates/create",
        id="a create denied by an access policy names certificates/create",
    ),
    pytest.param(
        Failed("WriteSecret", CallError(403, "Forbidden", "x", inner_code="ForbiddenByRbac")),
        "AccessDenied",
        "secrets/get",
        id="a secret read denied by RBAC names secrets/get",
    ),
    pytest.param(
        Failed(
            "ReadCertificate", CallError(403, "Forbidden", "x", inner_code="ForbiddenByFirewall")
        ),
        "AccessDenied",
        "firewall",
        id="a firewall refusal says to allow the operator's network",
    ),
    pytest.param(
        Failed("ReadOperation", CallError(401, "Unauthorized", "AKV10032")),
        "AccessDenied",
        "spec.auth",
        id="rejected credentials point at the vault's spec.auth",
    ),
    pytest.param(
        Failed("RecordIntent", CallError(403, "Forbidden")),
        "AccessDenied",
        "RBAC",
        id="a Kubernetes refusal points at the ServiceAccount's RBAC",
    ),
    pytest.param(
        Failed("ReadOperation", CallError(429, "Throttled", retry_after=3.0)),
        "Throttled",
        "throttling",
        id="throttling waits for Key Vault",
    ),
    pytest.param(
        Failed("CreateCertificate", CallError(409, "Conflict", inner_code="ObjectIsBeingDeleted")),
        "KeyVaultError",
        "web is being deleted in Key Vault",
        id="a name still being deleted is waited for",
    ),
    pytest.param(
        Failed("ReadCertificate", CallError(None, "KeyVaultTimeout", "timed out")),
        "KeyVaultError",
        "did not answer",
        id="no answer says so",
    ),
    pytest.param(
        Failed("ReadCertificate", CallError(None, "KeyVaultTLSError", "verify failed")),
        "KeyVaultError",
        "caBundle",
        id="a TLS failure points at the caBundle",
    ),
    pytest.param(
        Failed("ReadCertificate", CallError(None, "CredentialUnavailable", "no federation")),
        "KeyVaultError",
        "spec.auth",
        id="no token points at spec.auth",
    ),
    pytest.param(
        Failed("ReadCertificate", CallError(503, "ServiceUnavailable")),
        "KeyVaultError",
        "retrying with backoff",
        id="a server error is retried",
    ),
]


@pytest.mark.parametrize(("failed", "reason", "hint"), CASES)
def test_explain(failed: Failed, reason: str, hint: str) -> None:
    got_reason, message = explain(make(), failed)
    assert got_reason == reason
    assert hint in message
    assert message.startswith(f"{failed.action} failed (")
