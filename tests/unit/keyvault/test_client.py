"""The client against a fake vault: paths, bodies, success codes, both profiles' errors."""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections.abc import Callable, MutableMapping
from typing import Any

import httpx
import pytest

from kvcert.keyvault import (
    CertificatePolicySpec,
    KeyVaultClient,
    RetryPolicy,
    StaticToken,
    make_ssl_context,
)
from kvcert.keyvault import errors as e
from kvcert.keyvault.policy import LifetimeActionSpec
from kvcert.reconcile.observed import OperationStatus

from .conftest import TOKEN, VAULT, FakeVault, error, example
from .test_errors import TABLE

Make = Callable[..., KeyVaultClient]
CREATE = "POST /certificates/web/create"
PENDING = "/certificates/web/pending"
IN_PROGRESS_409 = (
    "A new key vault certificate can not be created or imported while a pending key vault "
    "certificate's status is inProgress."
)


def operation(status: str = "inProgress", **fields: object) -> dict[str, object]:
    return {
        "id": f"{VAULT}{PENDING}",
        "issuer": {"name": "Self"},
        "cancellation_requested": False,
        "status": status,
        "request_id": "a76827a18b63421c917da80f28e9913d",
        **fields,
    }


def body_of(request: httpx.Request) -> dict[str, object]:
    data: dict[str, object] = json.loads(request.content)
    return data


async def test_create_sends_the_policy_and_tags_and_returns_the_operation(
    vault: FakeVault, make_client: Make
) -> None:
    vault.on(
        CREATE, httpx.Response(202, json=operation("InProgress"), headers={"Retry-After": "10"})
    )
    async with make_client() as client:
        observed = await client.create_certificate(
            "web", CertificatePolicySpec(subject="CN=web"), tags={"managed-by": "kvcert"}
        )
    assert observed.status is OperationStatus.IN_PROGRESS
    assert observed.retry_after == 10.0
    sent = vault.authorized()[-1]
    assert sent.url.params["api-version"] == "7.5"
    assert sent.headers["content-type"] == "application/json"
    body = body_of(sent)
    assert body["tags"] == {"managed-by": "kvcert"}
    assert body["policy"]["x509_props"] == {"subject": "CN=web"}  # type: ignore[index]


async def test_create_answered_200_is_unexpected(vault: FakeVault, make_client: Make) -> None:
    vault.on(CREATE, httpx.Response(200, json=operation()))
    async with make_client() as client:
        with pytest.raises(e.UnexpectedResponse):
            await client.create_certificate("web", CertificatePolicySpec(subject="CN=web"))


@pytest.mark.parametrize("code", ["Forbidden", "Conflict"], ids=["documented", "service"])
async def test_create_while_in_progress_is_a_conflict_in_both_profiles(
    vault: FakeVault, make_client: Make, code: str
) -> None:
    vault.on(CREATE, error(409, code, IN_PROGRESS_409))
    async with make_client() as client:
        with pytest.raises(e.Conflict) as caught:
            await client.create_certificate("web", CertificatePolicySpec(subject="CN=web"))
    assert caught.value.status == 409
    assert caught.value.request_id == "req-1"
    assert len(vault.authorized()) == 1, "a 409 is never retried"


async def test_get_pending_returns_the_retry_after_hint(
    vault: FakeVault, make_client: Make
) -> None:
    vault.on(f"GET {PENDING}", httpx.Response(200, json=operation(), headers={"Retry-After": "10"}))
    async with make_client() as client:
        poll = await client.get_pending_operation(
            "web", request_id="a76827a18b63421c917da80f28e9913d"
        )
    assert poll.status is OperationStatus.IN_PROGRESS
    assert poll.retry_after == 10.0
    assert vault.authorized()[-1].url.params["request_id"] == "a76827a18b63421c917da80f28e9913d"


async def test_get_pending_of_a_deleted_operation(vault: FakeVault, make_client: Make) -> None:
    vault.on(
        f"GET {PENDING}",
        error(404, "PendingCertificateNotFound", "Pending certificate not found: web"),
    )
    async with make_client() as client:
        with pytest.raises(e.PendingCertificateNotFound):
            await client.get_pending_operation("web")


async def test_cancel_sends_cancellation_requested(vault: FakeVault, make_client: Make) -> None:
    vault.on(f"PATCH {PENDING}", httpx.Response(200, json=operation(cancellation_requested=True)))
    async with make_client() as client:
        observed = await client.cancel_pending_operation("web")
    assert observed.cancellation_requested is True
    assert body_of(vault.authorized()[-1]) == {"cancellation_requested": True}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            error(400, "BadParameter", "Pending operation is not in progress"),
            id="documented 400 BadParameter",
        ),
        pytest.param(
            error(403, "Forbidden", "Pending status must be in progress to allow update."),
            id="service 403 Forbidden",
        ),
    ],
)
async def test_cancel_of_an_ended_operation_is_one_error_in_both_profiles(
    vault: FakeVault, make_client: Make, answer: httpx.Response
) -> None:
    vault.on(f"PATCH {PENDING}", answer)
    async with make_client() as client:
        with pytest.raises(e.OperationNotInProgress):
            await client.cancel_pending_operation("web")


async def test_delete_pending_returns_the_operation_as_it_was(
    vault: FakeVault, make_client: Make
) -> None:
    body = example("DeleteCertificateOperation")["responses"]["200"]["body"]
    vault.on(f"DELETE {PENDING}", httpx.Response(200, json=body))
    async with make_client() as client:
        observed = await client.delete_pending_operation("web")
    assert observed.request_id == "b88791e33d9c4d609d3e3cc3d2d40d11"


async def test_merge_sends_base64_der_leaf_first(
    vault: FakeVault, make_client: Make, leaf_der: bytes
) -> None:
    bundle = {
        "id": f"{VAULT}/certificates/web/v2",
        "cer": base64.b64encode(leaf_der).decode(),
        "attributes": {"enabled": True, "nbf": 1, "exp": 2},
    }
    vault.on(f"POST {PENDING}/merge", httpx.Response(201, json=bundle))
    async with make_client() as client:
        cert = await client.merge_certificate("web", [leaf_der, b"\x30\x00"], tags={"a": "b"})
    assert cert.version == "v2"
    assert cert.der == leaf_der
    assert body_of(vault.authorized()[-1]) == {
        "x5c": [base64.b64encode(leaf_der).decode(), "MAA="],
        "tags": {"a": "b"},
    }


async def test_merge_while_an_issuer_is_working(vault: FakeVault, make_client: Make) -> None:
    vault.on(
        f"POST {PENDING}/merge",
        error(
            403,
            "Forbidden",
            "Merge is forbidden on pending object created with issuer : mydigicert while it is in "
            "progess.",
        ),
    )
    async with make_client() as client:
        with pytest.raises(e.MergeForbiddenInProgress):
            await client.merge_certificate("web", [b"\x30\x00"])


async def test_import_reveals_secrets_only_on_the_wire(vault: FakeVault, make_client: Make) -> None:
    vault.on(
        "POST /certificates/web/import",
        httpx.Response(200, json=example("ImportCertificate")["responses"]["200"]["body"]),
    )
    async with make_client() as client:
        cert = await client.import_certificate("web", b"\x01\x02", password="p4ss")
    assert cert.version == "f00e72f0ddee4dddadc27c0f605d84d7"
    assert body_of(vault.authorized()[-1]) == {"value": "AQI=", "pwd": "p4ss"}


async def test_get_certificate_latest_uses_the_trailing_slash(
    vault: FakeVault, make_client: Make
) -> None:
    body = example("GetCertificate")["responses"]["200"]["body"]
    vault.on("GET /certificates/web/", httpx.Response(200, json=body))
    vault.on("GET /certificates/web/v1", httpx.Response(200, json=body))
    async with make_client() as client:
        latest = await client.get_certificate("web")
        pinned = await client.get_certificate("web", "v1")
    assert latest == pinned


async def test_lifetime_actions_are_patched_into_the_policy_alone(
    vault: FakeVault, make_client: Make
) -> None:
    vault.on("PATCH /certificates/web/policy", httpx.Response(200, json={"id": "x"}))
    rule = LifetimeActionSpec("AutoRenew", days_before_expiry=30)
    async with make_client() as client:
        await client.update_lifetime_actions("web", [rule])
    sent = json.loads(vault.requests[-1].content)
    assert sent == {
        "lifetime_actions": [
            {"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}
        ]
    }


async def test_tags_are_patched_on_the_certificate(vault: FakeVault, make_client: Make) -> None:
    body = example("GetCertificate")["responses"]["200"]["body"]
    vault.on("PATCH /certificates/web/", httpx.Response(200, json=body))
    async with make_client() as client:
        updated = await client.update_tags("web", {"team": "a", "managed-by": "kvcert"})
    assert json.loads(vault.requests[-1].content) == {"tags": {"team": "a", "managed-by": "kvcert"}}
    assert updated.version


async def test_a_certificate_read_carries_its_lifetime_actions(
    vault: FakeVault, make_client: Make
) -> None:
    body = example("GetCertificate")["responses"]["200"]["body"]
    vault.on("GET /certificates/web/", httpx.Response(200, json=body))
    async with make_client() as client:
        got = await client.get_certificate("web")
    policy = body.get("policy") or {}
    expected = len(policy.get("lifetime_actions") or [])
    assert got.lifetime_actions is not None
    assert len(got.lifetime_actions) == expected


async def test_missing_certificate(vault: FakeVault, make_client: Make) -> None:
    vault.on(
        "GET /certificates/web/",
        error(404, "CertificateNotFound", "A certificate with (name/id) web was not found"),
    )
    async with make_client() as client:
        with pytest.raises(e.CertificateNotFound):
            await client.get_certificate("web")


async def test_secret_value_is_returned_but_never_shown(
    vault: FakeVault, make_client: Make, caplog: pytest.LogCaptureFixture
) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    vault.on(
        "GET /secrets/web/v1",
        httpx.Response(
            200,
            json={
                "id": f"{VAULT}/secrets/web/v1",
                "value": pem,
                "contentType": "application/x-pem-file",
                "managed": True,
            },
        ),
    )
    caplog.set_level(logging.DEBUG, logger="kvcert.keyvault")
    async with make_client() as client:
        secret = await client.get_certificate_secret("web", "v1")
    assert secret.value == pem
    assert secret.content_type == "application/x-pem-file"
    assert "PRIVATE" not in repr(secret)
    assert "PRIVATE" not in caplog.text
    assert TOKEN not in caplog.text
    assert "GET /secrets/web/v1 -> 200" in caplog.text


async def test_a_secret_body_that_fails_validation_is_not_echoed(
    vault: FakeVault, make_client: Make
) -> None:
    vault.on("GET /secrets/web/v1", httpx.Response(200, json={"value": {"leak": "SECRETKEY"}}))
    async with make_client() as client:
        with pytest.raises(e.UnexpectedResponse) as caught:
            await client.get_certificate_secret("web", "v1")
    assert "SECRETKEY" not in str(caught.value)


async def test_delete_certificate_is_a_soft_delete(vault: FakeVault, make_client: Make) -> None:
    body = example("DeleteCertificate")["responses"]["200"]["body"]
    vault.on("DELETE /certificates/web", httpx.Response(200, json=body))
    async with make_client() as client:
        cert = await client.delete_certificate("web")
    assert cert.version == "f00e72f0ddee4dddadc27c0f605d84d7"


async def test_recover_posts_to_the_deleted_certificate(
    vault: FakeVault, make_client: Make
) -> None:
    body = example("RecoverDeletedCertificate")["responses"]["200"]["body"]
    vault.on("POST /deletedcertificates/web/recover", httpx.Response(200, json=body))
    async with make_client() as client:
        cert = await client.recover_deleted_certificate("web")
    assert cert.version == "9ff2572a2c3145679057da8b7f6a4b1d"
    assert vault.requests[-1].method == "POST"
    assert vault.requests[-1].content == b""


async def test_recover_of_a_name_not_deleted(vault: FakeVault, make_client: Make) -> None:
    vault.on(
        "POST /deletedcertificates/web/recover",
        error(404, "CertificateNotFound", "Deleted Certificate not found: web"),
    )
    async with make_client() as client:
        with pytest.raises(e.CertificateNotFound):
            await client.recover_deleted_certificate("web")


async def test_create_of_a_soft_deleted_name_is_deleted_but_recoverable(
    vault: FakeVault, make_client: Make
) -> None:
    body = {
        "error": {
            "code": "Conflict",
            "message": "Certificate web is currently in a deleted but recoverable state",
            "innererror": {"code": "ObjectIsDeletedButRecoverable"},
        }
    }
    vault.on("POST /certificates/web/create", httpx.Response(409, json=body))
    async with make_client() as client:
        with pytest.raises(e.DeletedButRecoverable) as caught:
            await client.create_certificate("web", CertificatePolicySpec(subject="CN=web"))
    assert caught.value.inner_code == "ObjectIsDeletedButRecoverable"


async def test_set_and_get_issuer(vault: FakeVault, make_client: Make) -> None:
    body = example("SetCertificateIssuer")["responses"]["200"]["body"]
    vault.on("PUT /certificates/issuers/mydigicert", httpx.Response(200, json=body))
    vault.on("GET /certificates/issuers/mydigicert", httpx.Response(200, json=body))
    async with make_client() as client:
        issuer = await client.set_issuer(
            "mydigicert", "DigiCert", account_id="acct", password="pw", organization_id="org1"
        )
        assert await client.get_issuer("mydigicert") == issuer
    assert issuer.provider == "Test"
    assert issuer.account_id == "keyvaultuser"
    assert body_of(vault.authorized()[0]) == {
        "provider": "DigiCert",
        "credentials": {"account_id": "acct", "pwd": "pw"},
        "org_details": {"id": "org1"},
        "attributes": {"enabled": True},
    }


@pytest.mark.parametrize("api_version", ["7.5", "2026-04-01"])
async def test_every_call_carries_the_api_version(
    vault: FakeVault, make_client: Make, api_version: str
) -> None:
    vault.on(f"GET {PENDING}", httpx.Response(200, json=operation()))
    async with make_client(api_version=api_version) as client:
        await client.get_pending_operation("web")
    assert vault.requests
    assert {r.url.params["api-version"] for r in vault.requests} == {api_version}


@pytest.mark.parametrize(
    "url",
    ["http://kv.vault.local", "kv.vault.local", "https://", "https://kv.vault.local/certificates"],
)
def test_only_plain_https_vault_urls(url: str) -> None:
    with pytest.raises(e.InsecureVaultURL):
        KeyVaultClient(
            url, StaticToken("t"), transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )


@pytest.mark.parametrize("name", ["", "web/../x", "a b", "x" * 128])
async def test_names_are_checked_before_sending(make_client: Make, name: str) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="invalid"):
            await client.get_certificate(name)


def test_ca_bundle_builds_a_context_that_trusts_only_it(leaf_der: bytes) -> None:
    pem = ssl.DER_cert_to_PEM_cert(leaf_der)
    context = make_ssl_context(pem)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509"] == 1  # only the bundle, no system roots
    with pytest.raises(ssl.SSLError):
        make_ssl_context("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


async def test_works_over_asgi_transport() -> None:
    """What the integration tests will do with the local vault's Starlette app."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        authorised = (b"authorization", f"Bearer {TOKEN}".encode()) in scope["headers"]
        host = dict(scope["headers"])[b"host"].decode()
        status, headers, body = (
            401,
            [(b"www-authenticate", f'Bearer resource="https://{host.split(".", 1)[1]}"'.encode())],
            b"{}",
        )
        if authorised:
            status, headers = 200, [(b"content-type", b"application/json")]
            body = json.dumps(operation("cancelled")).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    client = KeyVaultClient(VAULT, StaticToken(TOKEN), transport=httpx.ASGITransport(app))
    async with client:
        poll = await client.get_pending_operation("web")
    assert poll.status is OperationStatus.CANCELLED


@pytest.mark.parametrize(("status", "code", "message", "inner", "expected"), TABLE)
async def test_error_answers_raise_their_class_through_the_client(
    vault: FakeVault,
    make_client: Make,
    status: int,
    code: str,
    message: str,
    inner: str | None,
    expected: type[Exception],
) -> None:
    body: dict[str, object] = {"code": code, "message": message}
    if inner:
        body["innererror"] = {"code": inner}
    vault.on(
        "GET /certificates/web/",
        httpx.Response(status, json={"error": body}, headers={"x-ms-request-id": "rid"}),
    )
    async with make_client(retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(e.KeyVaultHTTPError) as caught:
            await client.get_certificate("web")
    assert type(caught.value) is expected
    error = caught.value
    assert (error.status, error.code, error.request_id) == (status, code, "rid")
