"""What a user can do about a failed call that kvcert retries: one sentence per cause.

A retried failure is reported (as a condition, or as an event while the object is being
deleted) with the call, Key Vault's own code and message, and the remedy: which permission to
grant, which setting to check, or that nothing is needed but patience.
"""

from __future__ import annotations

from kvcert.reconcile.decision import describe
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.outcomes import Failed
from kvcert.reconcile.reasons import Reason

PERMISSIONS = {
    "CreateCertificate": "certificates/create",
    "ImportCertificate": "certificates/import",
    "ReadOperation": "certificates/get",
    "ReadCertificate": "certificates/get",
    "CancelOperation": "certificates/update",
    "DeletePendingOperation": "certificates/delete",
    "MergeChain": "certificates/create",
    "DeleteCertificate": "certificates/delete",
    "RecoverCertificate": "certificates/recover",
    "WriteSecret": "secrets/get",
}
"""The Key Vault permission each call needs (access policy names; RBAC roles grant them)."""


NO_ANSWER = {
    "CredentialUnavailable": "no token could be had: check the vault's spec.auth",
    "KeyVaultTLSError": "TLS verification failed: check the vault's caBundle and URL",
    "UnexpectedResponse": "the answer is not Key Vault's: check the vault's URL (or a proxy)",
    "InsecureVaultURL": "the vault's URL must be https",
    "KeyVaultTransportError": "Key Vault did not answer: check the URL and the network",
}
"""Failures without an HTTP answer, by the client's error class."""


def advice(inp: Input, failed: Failed) -> str:
    """What the user can do about a retried failure, by who refused and why."""
    error = failed.error
    permission = PERMISSIONS.get(failed.action)
    retry = "retrying with backoff"
    if error.status is None:
        return f"{NO_ANSWER.get(error.code, NO_ANSWER['KeyVaultTransportError'])}; {retry}"
    if permission is None and error.status in (401, 403):
        return f"the operator's ServiceAccount is not allowed this: check its RBAC; {retry}"
    if error.status == 401:
        return f"Key Vault does not accept the credentials: check the vault's spec.auth; {retry}"
    if error.status == 403 and error.inner_code.casefold() == "forbiddenbyfirewall":
        return f"the vault's firewall refuses the operator's network: allow it; {retry}"
    if error.status == 403 and failed.action == "WriteSecret" and not error.inner_code:
        return (
            "the operator's ServiceAccount may not write the Secret (check its RBAC), or its"
            f" Key Vault identity lacks secrets/get; {retry}"
        )
    if error.status == 403:
        return (
            f"grant the operator's identity the Key Vault permission {permission} (access"
            f" policy or RBAC role); {retry}"
        )
    if error.status == 409:
        return f"{inp.certificate_name} is being deleted in Key Vault; {retry}"
    if error.status == 429:
        return "Key Vault is throttling requests; retrying when it allows"
    if error.status == 413:
        return f"the request is larger than Key Vault accepts: shrink the spec or Secret; {retry}"
    return retry


def explain(inp: Input, failed: Failed) -> tuple[Reason, str]:
    """The reason and message of a retried failure (no delay in it: a retry that fails the
    same way must not cost a status write)."""
    status = failed.error.status
    reason = (
        Reason.THROTTLED
        if status == 429
        else Reason.ACCESS_DENIED
        if status in (401, 403)
        else Reason.KEY_VAULT_ERROR
    )
    return reason, f"{failed.action} failed ({describe(failed.error)}): {advice(inp, failed)}"
