"""Domain errors of the local vault, each rendered by one handler as Key Vault's error body.

The codes and texts are the live service's where known (DESIGN §3.3). A message never carries
request bodies, key material or tokens: callers build it from names and fixed text only.
"""

from __future__ import annotations

from typing import Any


class VaultError(Exception):
    """An error answered as `{"error": {"code", "message"[, "innererror"]}}` with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner_code: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}


def bad_parameter(message: str) -> VaultError:
    return VaultError(400, "BadParameter", message)


def certificate_not_found(name: str) -> VaultError:
    return VaultError(
        404,
        "CertificateNotFound",
        f"A certificate with (name/id) {name} was not found in this key vault. If you recently "
        "deleted this certificate you may be able to recover it using the correct recovery "
        "command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def version_not_found(name: str, version: str) -> VaultError:
    return certificate_not_found(f"{name}/{version}")


def deleted_not_found(name: str) -> VaultError:
    return VaultError(404, "CertificateNotFound", f"Deleted Certificate not found: {name}")


def pending_not_found(name: str) -> VaultError:
    return VaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")


def secret_not_found(name_or_id: str) -> VaultError:
    """`GET /secrets/...` of nothing: the live service's code and text (not CertificateNotFound)."""
    return VaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name_or_id} was not found in this key vault. If you recently "
        "deleted this secret you may be able to recover it using the correct recovery command. "
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def secret_disabled() -> VaultError:
    """`GET /secrets/...` of a disabled version, as the live service answers it."""
    return VaultError(
        403,
        "Forbidden",
        "Operation get is not allowed on a disabled secret.",
        inner_code="SecretDisabled",
    )


def issuer_not_found(name: str) -> VaultError:
    return VaultError(404, "CertificateIssuerNotFound", f"Issuer not found: {name}")


def contacts_not_found() -> VaultError:
    return VaultError(404, "ContactsNotFound", "Contacts not found")


def deleted_but_recoverable(name: str) -> VaultError:
    return VaultError(
        409,
        "Conflict",
        f"Certificate {name} is currently in a deleted but recoverable state, and its name "
        "cannot be reused; in this state, the certificate can only be recovered or purged.",
        inner_code="ObjectIsDeletedButRecoverable",
    )


def being_deleted(name: str) -> VaultError:
    return VaultError(
        409, "Conflict", f"Certificate {name} is currently being deleted.", "ObjectIsBeingDeleted"
    )


def throttled(retry_after: int) -> VaultError:
    """429 with Retry-After: the only error that carries it (DESIGN §3.3)."""
    return VaultError(
        429,
        "Throttled",
        "Request was not processed because too many requests were received.",
        retry_after=retry_after,
    )


def unauthorized(message: str) -> VaultError:
    return VaultError(401, "Unauthorized", message)


NO_BEARER_MESSAGE = "AKV10000: Request is missing a Bearer or PoP token."
REJECTED_BEARER_MESSAGE = "AKV10032: Invalid issuer. The token is not accepted by this vault."
