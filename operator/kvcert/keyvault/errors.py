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

The service's messages can echo request material, so every text is scrubbed before it is stored
on an exception (exception text ends up in status conditions, events and logs): PEM blocks (also
cut short, or URL- or JSON-escaped), bearer and PoP credentials, JWTs, long base64 or hex runs,
password and token fields, the exact secrets the caller sent (`known`), control and bidi
characters; then it is truncated. A KeyVaultHTTPError's message is cut at MAX_MESSAGE_CHARS and
its code, inner code and request id at MAX_CODE_CHARS; any KeyVaultError's whole text at
MAX_TEXT_CHARS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_MESSAGE_CHARS = 300
MAX_CODE_CHARS = 64
MAX_TEXT_CHARS = 600
MAX_SCANNED_CHARS = 16_384
"""Only the head of a longer text is scrubbed (the rest would be truncated anyway): it bounds
the regular expressions' work on a large echoed body."""
MIN_KNOWN_CHARS = 4
"""A known secret shorter than this is not searched for (it would redact ordinary words)."""

_PEM_LABEL = r"(?: |%20|\+)[A-Z0-9 %+]*?-----"
_PEM = re.compile(rf"-----BEGIN{_PEM_LABEL}.*?(?:-----END{_PEM_LABEL}|\Z)", re.DOTALL)
_PEM_END = re.compile(rf"-----END{_PEM_LABEL}")
_PEM_MARKER = re.compile(rf"-----(?:BEGIN|END){_PEM_LABEL}")
_PEM_LINE = re.compile(r"[A-Za-z0-9+/=]{1,80}")
_LINE_BREAK = re.compile(r"\\r\\n|\\n|\r?\n")
_BEARER = re.compile(
    r"(?i)\b(bearer|pop)\s+(?![A-Za-z_-]+=\")[A-Za-z0-9\-._~+/]{5,}[A-Za-z0-9\-_~+/]=*"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*")
_SECRET_FIELD = re.compile(
    r"(?i)((?:\\?[\"'])?(?:pwd|passwd|password|passphrase|client[_-]?secret|secret"
    r"|(?:access|refresh|id)[_-]?token|token|api[_-]?key|authorization|sig)(?:\\?[\"'])?"
    r"\s*[:=]\s*)"
    r"(\\?\"(?:[^\"\\]|\\(?!\"))*\\?\"|'[^']*'|[^\s,;&}\]]+)"
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


def _looks_like_base64(run: str) -> bool:
    """Tell a key or certificate blob from a URL path such as `certificates/web/<32 hex>`:
    paths are short `/`-separated words, base64 is long or carries `+`/`=` or long segments."""
    if "/" not in run or "+" in run or run.endswith("=") or len(run) >= 100:
        return True
    return max(len(segment) for segment in run.split("/")) >= 40


def _headless_pem(text: str) -> str:
    """A PEM block cut before its BEGIN line (the echo kept only its end): its END marker and
    the base64 lines before it go. Line by line, so linear in the text's length."""
    if "-----END" not in text:
        return text
    kept: list[str] = []
    for line in _LINE_BREAK.split(text):
        end = _PEM_END.search(line)
        if end is None:
            kept.append(line)
            continue
        while kept and _PEM_LINE.fullmatch(kept[-1].strip()):
            kept.pop()
        before = line[: end.start()]
        before = "" if _PEM_LINE.fullmatch(before.strip()) else before
        kept.append(f"{before}[PEM redacted]{line[end.end() :]}")
    return "\n".join(kept)


def redact(text: str, known: Iterable[str] = (), *, fields: bool = True) -> str:
    """Replace what looks like a secret, keeping the text otherwise (no truncation, newlines
    kept): the `known` secrets, PEM blocks (whole, cut short, or only their END), bearer and PoP
    credentials, JWTs and, with `fields`, the values of password, secret and token fields (too
    eager for the operator's own sentences, "needs a password: Secret x", so logs and events
    go without). `scrub` does more, for service text."""
    for secret in known:
        if len(secret) >= MIN_KNOWN_CHARS:
            text = text.replace(secret, "[redacted]")
    text = _PEM.sub("[PEM redacted]", text)
    text = _headless_pem(text)
    text = _PEM_MARKER.sub("[PEM redacted]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _JWT.sub("[token redacted]", text)
    if fields:
        text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return text


def scrub(text: str, limit: int = MAX_MESSAGE_CHARS, known: Iterable[str] = ()) -> str:
    """Make service text safe to show (`redact`, then long base64 and hex runs and control
    characters), then truncate to `limit` characters: redacting first means a cut can never
    expose half a redaction target. Only the first MAX_SCANNED_CHARS are looked at."""
    text = redact(text[:MAX_SCANNED_CHARS], known)
    text = _BASE64_RUN.sub(
        lambda m: "[base64 redacted]" if _looks_like_base64(m.group(0)) else m.group(0), text
    )
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class KeyVaultError(Exception):
    """Root of every error the Key Vault client raises. Its text arguments are scrubbed (to
    MAX_TEXT_CHARS) whoever raises it: whatever a subclass or a caller puts in, no secret."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(a, MAX_TEXT_CHARS) if isinstance(a, str) else a for a in args))


class InsecureVaultURL(KeyVaultError, ValueError):
    """A vault URL that is not https: tokens must never travel in clear text."""


class CredentialUnavailable(KeyVaultError):
    """The credential could not produce a token; the vault was not asked. Not retried here:
    azure-identity already retried, and a missing federation or secret needs a human."""


class UnexpectedResponse(KeyVaultError):
    """The vault answered with a success code or body the API does not define (a proxy, a
    wrong URL, or a service change): never retried, never trusted."""


class KeyVaultHTTPError(KeyVaultError):
    """The vault answered with an error. `message` is scrubbed and truncated (MAX_MESSAGE_CHARS),
    `code`, `inner_code` and `request_id` too (MAX_CODE_CHARS): all come from the answer.
    `known` are the secrets the request carried (its bearer token, an import's password), which
    are redacted wherever the answer quotes them; they are not kept."""

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        inner_code: str | None = None,
        known: Iterable[str] = (),
    ) -> None:
        known = tuple(known)
        self.status = status
        self.code = scrub(code, MAX_CODE_CHARS, known)
        self.message = scrub(message, MAX_MESSAGE_CHARS, known)
        self.request_id = None if request_id is None else scrub(request_id, MAX_CODE_CHARS, known)
        self.retry_after = retry_after
        self.inner_code = None if inner_code is None else scrub(inner_code, MAX_CODE_CHARS, known)
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
