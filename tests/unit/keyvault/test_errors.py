"""Every status and code the service (both profiles) returns maps to a class the operator can
branch on, and no secret in an error body survives into exception text."""

from __future__ import annotations

import pickle

import pytest

from kvcert.keyvault import errors as e

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


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        pytest.param(PEM, f"bad input {PEM} here", id="a PEM block"),
        pytest.param(
            "BEGIN PRIVATE KEY-----\nMIG",
            "cut: -----BEGIN PRIVATE KEY-----\nMIG",
            id="a PEM block cut short",
        ),
        pytest.param("abc.def-ghi", "header was Bearer abc.def-ghi", id="a bearer token"),
        pytest.param(JWT, f"token {JWT} rejected", id="a bare JWT"),
        pytest.param(BLOB, f"cannot parse {BLOB}", id="a long base64 run"),
        pytest.param("hunter2", '{"pwd": "hunter2"}', id="a password field"),
    ],
)
def test_scrub_removes_secrets_from_exception_text(secret: str, message: str) -> None:
    error = e.BadParameter(400, "BadParameter", message)
    assert secret not in str(error)
    assert secret not in error.message
    assert secret not in repr(error)


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
