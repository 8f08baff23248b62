"""Every way a Key Vault call can fail, as a tree the operator can branch on.

    KeyVaultError
    ├── InsecureVaultURL              the vault URL is not https (refused before any request)
    ├── CredentialUnavailable         no token could be had (identity not set up, bad secret)
    ├── UnexpectedResponse            a success code or body the API does not define
    ├── KeyVaultHTTPError             the vault answered with an error (status, code, message,
    │   │                             request_id, retry_after)
    │   ├── BadParameter              400
    │   ├── Unauthorized              401 (after the challenge and one token refresh)
    │   ├── Forbidden                 403
    │   │   └── MergeForbiddenInProgress  403 merge while an issuer's operation is in progress
    │   ├── OperationNotInProgress    cancel of a terminal operation: 400 BadParameter in the
    │   │                             documented profile, 403 Forbidden in the live service
    │   ├── NotFound                  404
    │   │   ├── CertificateNotFound
    │   │   └── PendingCertificateNotFound
    │   ├── Conflict                  409 (code Conflict, or Forbidden in the documented profile)
    │   │   └── DeletedButRecoverable 409 with innererror ObjectIsDeletedButRecoverable
    │   ├── Throttled                 429
    │   └── ServerError               5xx
    └── KeyVaultTransportError        no HTTP answer at all
        ├── ClientClosed              the client was replaced while the call waited
        ├── KeyVaultTimeout
        ├── KeyVaultConnectionError
        └── KeyVaultTLSError          certificate verification or handshake failure

The service's messages can echo request material, so every message is scrubbed (PEM blocks,
bearer tokens, JWTs, long base64 runs, password fields) and truncated before it is stored on an
exception: exception text ends up in status conditions, events and logs.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 300

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.DOTALL)
_BEARER = re.compile(r"(?i)\b(bearer|pop)\s+[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*")
_SECRET_FIELD = re.compile(
    r"(?i)(\"?(?:pwd|password|client_secret|access_token|refresh_token|secret|token)\"?"
    r"\s*[:=]\s*)(\"[^\"]*\"|[^\s,;&]+)"
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _looks_like_base64(run: str) -> bool:
    """Tell a key or certificate blob from a URL path such as `certificates/web/<32 hex>`:
    paths are short `/`-separated words, base64 is long or carries `+`/`=` or long segments."""
    if "/" not in run or "+" in run or run.endswith("=") or len(run) >= 100:
        return True
    return max(len(segment) for segment in run.split("/")) >= 40


def scrub(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Make service text safe to show: redact secrets first, then truncate, so a cut can
    never expose half a redaction target."""
    text = _PEM.sub("[PEM redacted]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _JWT.sub("[token redacted]", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}[redacted]", text)
    text = _BASE64_RUN.sub(
        lambda m: "[base64 redacted]" if _looks_like_base64(m.group(0)) else m.group(0), text
    )
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class KeyVaultError(Exception):
    """Root of every error the Key Vault client raises."""


class InsecureVaultURL(KeyVaultError, ValueError):
    """A vault URL that is not https: tokens must never travel in clear text."""


class CredentialUnavailable(KeyVaultError):
    """The credential could not produce a token; the vault was not asked. Not retried here:
    azure-identity already retried, and a missing federation or secret needs a human."""


class UnexpectedResponse(KeyVaultError):
    """The vault answered with a success code or body the API does not define (a proxy, a
    wrong URL, or a service change): never retried, never trusted."""


class KeyVaultHTTPError(KeyVaultError):
    """The vault answered with an error. `message` is already scrubbed and truncated."""

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        inner_code: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = scrub(message)
        self.request_id = request_id
        self.retry_after = retry_after
        self.inner_code = inner_code
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.status} {self.code or 'error'}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (x-ms-request-id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Keep pickling (used by some loggers and multiprocessing) working with keyword fields.
        return (_rebuild, (type(self), self.status, self.code, self.message, self.__dict__))


def _rebuild(
    cls: type[KeyVaultHTTPError], status: int, code: str, message: str, state: dict[str, object]
) -> KeyVaultHTTPError:
    error = cls(status, code, message)
    error.__dict__.update(state)
    return error


class BadParameter(KeyVaultHTTPError):
    """400: the request is wrong; retrying the same request cannot help."""


class Unauthorized(KeyVaultHTTPError):
    """401 after the challenge and a fresh token: the credential is not accepted."""


class Forbidden(KeyVaultHTTPError):
    """403: the identity may not do this, or the object's state forbids it."""


class MergeForbiddenInProgress(Forbidden):
    """403 on merge while an issuer-created operation is still in progress: wait, do not fail."""


class OperationNotInProgress(KeyVaultHTTPError):
    """Cancel of an operation that already ended. The two profiles disagree on the status
    (400 documented, 403 service), so the client folds both into this one class."""


class NotFound(KeyVaultHTTPError):
    """404 for anything else (an issuer, a secret, a request id that is not the pending one)."""


class CertificateNotFound(NotFound):
    """404 CertificateNotFound: no certificate of that name (or version)."""


class PendingCertificateNotFound(NotFound):
    """404 PendingCertificateNotFound: no pending operation (deleted or never created)."""


class Conflict(KeyVaultHTTPError):
    """409: a pending operation is in progress (adopt it if it is ours) or the name is taken."""


class DeletedButRecoverable(Conflict):
    """409 because the name is soft-deleted: adoption is impossible until recover or purge."""


class Throttled(KeyVaultHTTPError):
    """429: over the vault's request limits; `retry_after` says when to come back."""


class ServerError(KeyVaultHTTPError):
    """5xx: the vault failed; usually transient."""


class KeyVaultTransportError(KeyVaultError):
    """No HTTP answer. `request_sent` is False only when the connection never opened (DNS,
    refused, connect timeout): then even a create is safe to repeat."""

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class KeyVaultTimeout(KeyVaultTransportError):
    """Connect, read, write or pool timeout."""


class KeyVaultConnectionError(KeyVaultTransportError):
    """DNS, refused or reset connections."""


class KeyVaultTLSError(KeyVaultTransportError):
    """TLS handshake or certificate verification failed: a wrong caBundle, never transient."""


class ClientClosed(KeyVaultTransportError):
    """The client was closed (replaced: its KeyVault object changed, or a 401 dropped it)
    while a call waited: nothing was sent. Not retried in place (the same client stays
    closed); the round fails softly and the next one gets the current client."""

    def __init__(self, message: str = "the Key Vault client was closed and replaced") -> None:
        super().__init__(message, request_sent=False)


_BY_STATUS: dict[int, type[KeyVaultHTTPError]] = {
    400: BadParameter,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: Throttled,
}
_NOT_FOUND_BY_CODE: dict[str, type[NotFound]] = {
    "certificatenotfound": CertificateNotFound,
    "pendingcertificatenotfound": PendingCertificateNotFound,
}
_MERGE_IN_PROGRESS = re.compile(r"(?i)merge is forbidden .* while it is in (progess|progress)")
_CANCEL_NOT_IN_PROGRESS = re.compile(r"(?i)pending status must be in progress")


def error_class(
    status: int, code: str | None, *, inner_code: str | None = None, message: str = ""
) -> type[KeyVaultHTTPError]:
    """Pick the class for an error answer. The status decides first, because the two profiles
    send different codes for the same state (a 409 is a Conflict whatever its code says); the
    code and, for two known texts, the message only refine within a status."""
    folded = (code or "").lower()
    if status == 409:
        if (inner_code or "").lower() == "objectisdeletedbutrecoverable":
            return DeletedButRecoverable
        return Conflict
    if status == 404:
        return _NOT_FOUND_BY_CODE.get(folded, NotFound)
    if status == 403:
        if _MERGE_IN_PROGRESS.search(message):
            return MergeForbiddenInProgress
        if _CANCEL_NOT_IN_PROGRESS.search(message):
            return OperationNotInProgress
        return Forbidden
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, KeyVaultHTTPError)
