"""Every status and code the service (both profiles) returns maps to a class the operator can
branch on, and no secret in an error body survives into exception text."""

from __future__ import annotations

import pickle
import time

import pytest

from kvcert.keyvault import errors as e
from kvcert.keyvault import wire
from kvcert.keyvault.convert import operation_from_wire

MERGE_IN_PROGRESS = (
    "Merge is forbidden on pending object created with issuer : mydigicert while it is in progess."
)
IN_PROGRESS_409 = (
    "A new key vault certificate can not be created or imported while a pending key vault "
    "certificate's status is inProgress."
)

TABLE = [
    pytest.param(
        400,
        "BadParameter",
        "Unable to parse X5c certificate chain",
        None,
        e.BadParameter,
        id="400 BadParameter is a BadParameter",
    ),
    pytest.param(
        400,
        "BadParameter",
        "The specified version (9.9) is not recognized.",
        None,
        e.BadParameter,
        id="unknown api-version is a BadParameter",
    ),
    pytest.param(
        401,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
        None,
        e.Unauthorized,
        id="401 is Unauthorized",
    ),
    pytest.param(
        403,
        "Forbidden",
        "Caller is not authorized",
        "ForbiddenByRbac",
        e.Forbidden,
        id="an access denial is a plain Forbidden",
    ),
    pytest.param(
        403,
        "Forbidden",
        MERGE_IN_PROGRESS,
        None,
        e.MergeForbiddenInProgress,
        id="merge while an issuer operation is in progess is MergeForbiddenInProgress",
    ),
    pytest.param(
        403,
        "Forbidden",
        "Pending status must be in progress to allow update.",
        None,
        e.OperationNotInProgress,
        id="service profile cancel of an ended operation",
    ),
    pytest.param(
        404,
        "CertificateNotFound",
        "A certificate with (name/id) web was not found",
        None,
        e.CertificateNotFound,
        id="404 CertificateNotFound",
    ),
    pytest.param(
        404,
        "PendingCertificateNotFound",
        "Pending certificate not found: web",
        None,
        e.PendingCertificateNotFound,
        id="404 PendingCertificateNotFound",
    ),
    pytest.param(
        404,
        "pendingcertificatenotfound",
        "",
        None,
        e.PendingCertificateNotFound,
        id="codes compare case-insensitively",
    ),
    pytest.param(404, "NotFound", "no such issuer", None, e.NotFound, id="another 404 is NotFound"),
    pytest.param(
        409,
        "Conflict",
        IN_PROGRESS_409,
        None,
        e.Conflict,
        id="service profile 409 Conflict is a Conflict",
    ),
    pytest.param(
        409,
        "Forbidden",
        IN_PROGRESS_409,
        None,
        e.Conflict,
        id="documented profile 409 with code Forbidden is still a Conflict",
    ),
    pytest.param(
        409,
        "Conflict",
        "Certificate web is currently in a deleted but recoverable state",
        "ObjectIsDeletedButRecoverable",
        e.DeletedButRecoverable,
        id="soft-deleted name is DeletedButRecoverable",
    ),
    pytest.param(429, "Throttled", "Rate limit exceeded", None, e.Throttled, id="429 Throttled"),
    pytest.param(500, "InternalServerError", "boom", None, e.ServerError, id="500"),
    pytest.param(502, "", "", None, e.ServerError, id="502 without a body"),
    pytest.param(503, "ServiceUnavailable", "", None, e.ServerError, id="503"),
    pytest.param(504, "", "", None, e.ServerError, id="504"),
    pytest.param(405, "MethodNotAllowed", "", None, e.KeyVaultHTTPError, id="other 4xx"),
]


@pytest.mark.parametrize(("status", "code", "message", "inner", "expected"), TABLE)
def test_error_class(
    status: int, code: str, message: str, inner: str | None, expected: type[Exception]
) -> None:
    assert e.error_class(status, code, inner_code=inner, message=message) is expected


def test_every_class_is_an_http_error_under_the_root() -> None:
    for param in TABLE:
        cls = param.values[-1]
        assert isinstance(cls, type)
        assert issubclass(cls, e.KeyVaultHTTPError)
        assert issubclass(cls, e.KeyVaultError)


def test_error_carries_status_code_request_id_and_retry_after() -> None:
    error = e.Throttled(429, "Throttled", "slow down", request_id="abc", retry_after=3.0)
    assert (error.status, error.code, error.request_id, error.retry_after) == (
        429,
        "Throttled",
        "abc",
        3.0,
    )
    assert str(error) == "429 Throttled: slow down (x-ms-request-id abc)"


def test_pickles() -> None:
    error = e.Conflict(409, "Conflict", "busy", request_id="r", retry_after=None)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is e.Conflict
    assert (copy.status, copy.code, copy.message, copy.request_id) == (409, "Conflict", "busy", "r")


PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrdmNlcnQifQ.c2lnbmF0dXJlLXBhcnQ"
BLOB = "MIIKQQIBAzCCCf0GCSqGSIb3DQEHAaCCCe4EggnqMIIJ5jCCBhcGCSqGSIb3DQEHAaCCBggEggYEMIIGADCC"


KEY_LINE = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgq8vdLAbI0XDVu1cZ"
TAIL = "hRANCAAQe0Zr9Q=="
HEX_KEY = "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

SCRUB_TABLE = [
    pytest.param(PEM, f"bad input {PEM} here", id="a PEM block"),
    pytest.param(
        "BEGIN PRIVATE KEY-----\nMIG",
        "cut: -----BEGIN PRIVATE KEY-----\nMIG",
        id="a PEM block cut short",
    ),
    pytest.param(
        TAIL,
        f"...{KEY_LINE}\n{TAIL}\n-----END PRIVATE KEY----- was sent",
        id="a PEM block cut before its BEGIN: its short last line goes too",
    ),
    pytest.param(
        TAIL,
        f'{{"value": "...{KEY_LINE}\\n{TAIL}\\n-----END EC PRIVATE KEY-----"}}',
        id="the same, JSON-escaped",
    ),
    pytest.param(
        "PRIVATE KEY",
        "-----BEGIN%20RSA%20PRIVATE%20KEY-----%0AMIIEow%2BAB-----END%20RSA%20PRIVATE%20KEY-----",
        id="a URL-encoded PEM block",
    ),
    pytest.param(
        "MIIEow",
        '{"value": "-----BEGIN PRIVATE KEY-----\\nMIIEow\\n-----END PRIVATE KEY-----"}',
        id="a JSON-escaped PEM block",
    ),
    pytest.param("abc.def-ghi", "header was Bearer abc.def-ghi", id="a bearer token"),
    pytest.param("0a1b2c3d4e", "Authorization: PoP 0a1b2c3d4e", id="a PoP token"),
    pytest.param(
        "f00dfeed1234", "{'authorization': 'Bearer f00dfeed1234'}", id="a bearer in a dict repr"
    ),
    pytest.param(JWT, f"token {JWT} rejected", id="a bare JWT"),
    pytest.param(BLOB, f"cannot parse {BLOB}", id="a long base64 run"),
    pytest.param(HEX_KEY, f"key {HEX_KEY} refused", id="a raw key in hex"),
    pytest.param("hunter2", '{"pwd": "hunter2"}', id="a password field"),
    pytest.param("hunter2", '{\\"pwd\\":\\"hunter2\\"}', id="an escaped JSON password field"),
    pytest.param("two words", "{'password': 'two words'}", id="a quoted password with a space"),
    pytest.param("hunter2", "import?pwd=hunter2&x=1", id="a form-encoded password"),
    pytest.param("s3cr3tvalue", "client_secret=s3cr3tvalue", id="a client_secret field"),
    pytest.param("s3cr3tvalue", '{"clientSecret": "s3cr3tvalue"}', id="a clientSecret field"),
    pytest.param("opaque-1234", "access_token: opaque-1234", id="an access_token field"),
    pytest.param("abcdEFGH%2Bxyz", "url?sv=2022&sig=abcdEFGH%2Bxyz", id="a SAS signature"),
]


@pytest.mark.parametrize(("secret", "message"), SCRUB_TABLE)
def test_scrub_removes_secrets_from_exception_text(secret: str, message: str) -> None:
    error = e.BadParameter(400, "BadParameter", message)
    assert secret not in str(error)
    assert secret not in error.message
    assert secret not in repr(error)
    assert "redacted" in error.message


@pytest.mark.parametrize(
    "where", ["code", "inner_code", "request_id"], ids=lambda w: f"a secret in {w}"
)
def test_every_field_an_answer_gives_is_scrubbed(where: str) -> None:
    fields = {"code": "BadParameter", "inner_code": None, "request_id": None, where: f"x {JWT}"}
    error = e.BadParameter(400, message="m", **fields)  # type: ignore[arg-type]
    assert JWT not in str(error)
    assert JWT not in str(getattr(error, where))
    long = e.BadParameter(400, "C" * 500, request_id="r" * 500)
    assert len(long.code) <= e.MAX_CODE_CHARS
    assert len(long.request_id or "") <= e.MAX_CODE_CHARS


@pytest.mark.parametrize(
    "error",
    [
        e.KeyVaultConnectionError(f"connection failed: {PEM}"),
        e.UnexpectedResponse(f"odd body {JWT}"),
        e.CredentialUnavailable(f"cannot get a token: client_secret={BLOB}"),
        e.KeyVaultError(f"Bearer {BLOB}"),
    ],
    ids=["a transport error", "an unexpected response", "a credential failure", "the root"],
)
def test_every_key_vault_error_scrubs_its_text(error: e.KeyVaultError) -> None:
    text = str(error)
    assert "PRIVATE KEY" not in text
    assert JWT not in text
    assert BLOB not in text
    assert "redacted" in text
    assert len(text) <= e.MAX_TEXT_CHARS


def test_known_secrets_are_redacted_wherever_the_answer_quotes_them() -> None:
    token, password = "f00dcafe0123456789", "correct horse"
    message = f"The password {password} and the token {token} are wrong; so is PoP."
    error = e.Unauthorized(401, f"E{token}", message, known=[token, password])
    assert token not in str(error)
    assert password not in str(error)
    assert token not in error.code
    assert "are wrong; so is PoP." in error.message
    assert all(token not in repr(value) for value in vars(error).values()), "known is not kept"
    # Too short to look for: would redact ordinary words.
    assert e.scrub("an ab test", known=["ab"]) == "an ab test"


def test_scrub_keeps_key_vault_messages_readable() -> None:
    for text in (
        "AKV10000: Request is missing a Bearer or PoP token.",
        "AKV10032: Invalid issuer. The token is not accepted by this vault.",
        "The specified PKCS#12 X.509 certificate content can not be read.",
        "Public key from x509 certificate and key of this instance doesn't match",
        "Pending status must be in progress to allow update.",
        "x5t fLi3U52HunIVNXubkEnf8tP6Wbo, request 6b3e9b2c-7d1f-4c0e-9a63-0d4f2b1e8a55",
    ):
        assert e.scrub(text) == text


def test_scrub_is_linear_in_the_echo_it_is_given() -> None:
    lines = "\n".join([KEY_LINE] * 20_000)
    for body in (f"{lines} x\n-----END PRIVATE KEY-----", "A" * 1_000_000 + " -----END X-----"):
        started = time.monotonic()
        text = e.BadParameter(400, "BadParameter", body).message
        assert time.monotonic() - started < 5.0
        assert KEY_LINE not in text
        assert len(text) <= e.MAX_MESSAGE_CHARS


def test_a_failed_operations_error_code_is_scrubbed_like_its_message() -> None:
    body = {
        "id": "https://kv.vault.azure.net/certificates/web/pending",
        "request_id": "a76827a18b63421c917da80f28e9913d",
        "status": "failed",
        "error": {"code": f"Bearer {JWT}", "message": f"rejected {PEM}"},
    }
    observed = operation_from_wire(wire.CertificateOperation.model_validate(body))
    assert observed.error is not None
    assert "PRIVATE KEY" not in observed.error.message
    assert JWT not in observed.error.code


def test_scrub_keeps_ordinary_text_and_urls() -> None:
    text = (
        "A certificate with (name/id) https://kv.vault.azure.net/certificates/web/"
        "f60f2a4f8ae442cfb41ca2090bd4b769 was not found in this key vault."
    )
    assert e.scrub(text) == text


def test_scrub_truncates_after_redacting() -> None:
    message = "x " * 400
    assert len(e.scrub(message)) <= e.MAX_MESSAGE_CHARS
    assert e.scrub(PEM + " tail", limit=20) == "[PEM redacted] tail"


def test_scrub_flattens_control_characters() -> None:
    assert e.scrub("line1\r\nline2\x00") == "line1 line2"
    assert e.scrub("abc\u202edcba\u2028next\u200b") == "abc dcba next", "bidi and separators"
