"""DESIGN §3.1 (every scenario row) and §3.2 (every profile line), over real HTTPS, both profiles.

Provider outcomes are made immediate through the management API rather than waiting --ca-delay.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import cast

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.integration.vault.vault_helpers import (
    API,
    CONFLICT_TEXT,
    EXPECTED,
    MANUAL_DETAILS,
    PROVIDER_DETAILS,
    OutsideCA,
    assert_error,
    create,
    manage,
    pending,
    set_issuer,
    url,
    wait_status,
)
from tests.integration.vault.vault_helpers import (
    policy as policy_body,
)
from tests.support.vault import LocalVault

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def expected(vault: LocalVault) -> dict[str, object]:
    return EXPECTED[vault.profile]


@pytest.fixture
def digicert(kv: httpx.Client) -> str:
    set_issuer(kv, "mydigicert", "DigiCert")
    return "mydigicert"


def test_create_with_a_configured_issuer_answers_202_with_the_operation(
    vault: LocalVault, kv: httpx.Client, name: str, digicert: str, expected: dict[str, object]
) -> None:
    response = kv.post(
        url(f"/certificates/{name}/create"),
        json={
            "policy": {
                "x509_props": {"subject": "CN=web.example.com"},
                "issuer": {"name": digicert, "cty": "OV-SSL"},
            }
        },
    )
    assert response.status_code == 202
    assert response.headers["retry-after"] == "10"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    match = re.fullmatch(
        re.escape(f"{vault.url}/certificates/{name}/pending?api-version={API}&request_id=")
        + "([0-9a-f]{32})",
        response.headers["location"],
    )
    assert match
    assert match.group(1) == body["request_id"]
    assert body["id"] == f"{vault.url}/certificates/{name}/pending"
    assert body["issuer"] == {"name": digicert}
    assert body["cancellation_requested"] is False
    assert body["status"] == expected["issuer_create_status"]
    assert body["status_details"] == PROVIDER_DETAILS
    csr = x509.load_der_x509_csr(base64.b64decode(body["csr"]))
    assert csr.is_signature_valid
    assert "error" not in body
    assert "target" not in body


def test_get_pending_in_progress_and_the_request_id_filter(
    kv: httpx.Client, name: str, digicert: str
) -> None:
    request_id = create(kv, name, digicert).json()["request_id"]
    response = pending(kv, name)
    assert response.status_code == 200
    assert response.headers["retry-after"] == "10"
    assert response.json()["status"] == "inProgress"
    assert response.json()["request_id"] == request_id
    assert pending(kv, name, request_id=request_id).status_code == 200
    other = pending(kv, name, request_id="0" * 32)
    assert_error(other, 404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")


def test_get_pending_completed_shows_the_target_and_stays_readable(
    vault: LocalVault, kv: httpx.Client, name: str, digicert: str, expected: dict[str, object]
) -> None:
    create(kv, name, digicert)
    manage(kv, name, "complete")
    for _ in range(2):
        response = pending(kv, name)
        assert response.status_code == 200
        assert "retry-after" not in response.headers
        body = response.json()
        assert body["status"] == "completed"
        assert body["target"] == f"{vault.url}/certificates/{name}{expected['target_suffix']}"
        assert ("status_details" in body) is expected["completed_details"]
    certificate = kv.get(url(f"/certificates/{name}/")).json()
    assert certificate["attributes"]["enabled"] is True
    assert kv.get(url(f"/certificates/{name}")).json() == certificate
    version = certificate["id"].rsplit("/", 1)[1]
    assert kv.get(url(f"/certificates/{name}/{version}")).json() == certificate
    assert_error(kv.get(url(f"/certificates/{name}/{'0' * 32}")), 404, "CertificateNotFound")


def test_get_pending_cancelled(
    kv: httpx.Client, name: str, digicert: str, expected: dict[str, object]
) -> None:
    create(kv, name, digicert)
    response = kv.patch(url(f"/certificates/{name}/pending"), json={"cancellation_requested": True})
    assert response.status_code == 200
    assert response.json()["cancellation_requested"] is True
    assert response.json()["status"] == "inProgress"
    body = wait_status(kv, name, timeout=5)
    assert body["status"] == expected["cancelled"]
    assert body["cancellation_requested"] is True


def test_get_pending_failed_carries_the_issuer_error(
    kv: httpx.Client, name: str, digicert: str
) -> None:
    create(kv, name, digicert)
    manage(kv, name, "fail", {"code": "CertificateRejected", "message": "Domain not validated."})
    response = pending(kv, name)
    assert response.status_code == 200
    assert "retry-after" not in response.headers
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "CertificateRejected", "message": "Domain not validated."}


def test_delete_pending_returns_it_then_404(kv: httpx.Client, name: str, digicert: str) -> None:
    before = create(kv, name, digicert).json()
    response = kv.delete(url(f"/certificates/{name}/pending"))
    assert response.status_code == 200
    assert response.json()["request_id"] == before["request_id"]
    assert response.json()["status"] == "inProgress"
    assert_error(
        pending(kv, name),
        404,
        "PendingCertificateNotFound",
        f"Pending certificate not found: {name}",
    )


@pytest.mark.parametrize("end", ["completed", "failed", "cancelled"])
def test_create_overwrites_a_pending_object_that_is_not_in_progress(
    kv: httpx.Client, name: str, digicert: str, end: str
) -> None:
    first = create(kv, name, digicert).json()["request_id"]
    if end == "completed":
        manage(kv, name, "complete")
    elif end == "failed":
        manage(kv, name, "fail", {"code": "X", "message": "no"})
    else:
        kv.patch(url(f"/certificates/{name}/pending"), json={"cancellation_requested": True})
        wait_status(kv, name, timeout=5)
    second = create(kv, name, "Unknown")
    assert second.status_code == 202
    assert second.json()["request_id"] != first
    assert_error(pending(kv, name, request_id=first), 404, "PendingCertificateNotFound")
    assert pending(kv, name).json()["request_id"] == second.json()["request_id"]


def test_import_overwrites_a_pending_object_that_is_not_in_progress(
    kv: httpx.Client, name: str, digicert: str, pfx_b64: str
) -> None:
    create(kv, name, digicert)
    manage(kv, name, "fail", {"code": "X", "message": "no"})
    response = kv.post(url(f"/certificates/{name}/import"), json={"value": pfx_b64})
    assert response.status_code == 200, response.text
    assert_error(pending(kv, name), 404, "PendingCertificateNotFound")


@pytest.mark.parametrize("how", ["create", "import"])
def test_create_or_import_while_in_progress_is_409(
    kv: httpx.Client, name: str, digicert: str, expected: dict[str, object], how: str, pfx_b64: str
) -> None:
    request_id = create(kv, name, digicert).json()["request_id"]
    if how == "create":
        response = create(kv, name, "Self")
    else:
        response = kv.post(url(f"/certificates/{name}/import"), json={"value": pfx_b64})
    assert_error(response, 409, str(expected["conflict_code"]), CONFLICT_TEXT)
    assert pending(kv, name).json()["request_id"] == request_id


def test_merge_while_an_issuer_operation_is_in_progress_is_forbidden(
    kv: httpx.Client, name: str, digicert: str
) -> None:
    csr = create(kv, name, digicert).json()["csr"]
    response = kv.post(
        url(f"/certificates/{name}/pending/merge"), json={"x5c": OutsideCA().x5c(csr)}
    )
    assert_error(
        response,
        403,
        "Forbidden",
        "Merge is forbidden on pending object created with "
        f"issuer : {digicert} while it is in progess.",
    )
    assert pending(kv, name).json()["status"] == "inProgress"


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_merge_is_allowed_after_failure_or_cancellation(
    kv: httpx.Client, name: str, digicert: str, end: str
) -> None:
    csr = create(kv, name, digicert).json()["csr"]
    if end == "failed":
        manage(kv, name, "fail", {"code": "X", "message": "no"})
    else:
        kv.patch(url(f"/certificates/{name}/pending"), json={"cancellation_requested": True})
        wait_status(kv, name, timeout=5)
    response = kv.post(
        url(f"/certificates/{name}/pending/merge"), json={"x5c": OutsideCA().x5c(csr)}
    )
    assert response.status_code == 201, response.text
    assert pending(kv, name).json()["status"] == "completed"


def test_cancel_when_not_in_progress_is_an_error(
    kv: httpx.Client, name: str, digicert: str, expected: dict[str, object]
) -> None:
    create(kv, name, digicert)
    manage(kv, name, "complete")
    response = kv.patch(url(f"/certificates/{name}/pending"), json={"cancellation_requested": True})
    status, code, message = cast(tuple[int, str, str | None], expected["cancel_error"])
    assert_error(response, status, code, message)
    assert pending(kv, name).json()["cancellation_requested"] is False


@pytest.mark.parametrize("issuer", ["Unknown", None], ids=["issuer Unknown", "no issuer"])
def test_manual_create_then_merge(
    vault: LocalVault, kv: httpx.Client, name: str, issuer: str | None
) -> None:
    response = create(kv, name, issuer)
    assert response.status_code == 202
    assert response.headers["retry-after"] == "10"
    op = response.json()
    assert op["status"] == "inProgress"
    assert op["status_details"] == MANUAL_DETAILS
    assert op["issuer"] == {"name": "Unknown"}

    # the pending-only certificate shape (§3.3)
    only = kv.get(url(f"/certificates/{name}/"))
    assert only.status_code == 200
    shape = only.json()
    assert shape["attributes"]["enabled"] is False
    assert shape["pending"] == {"id": f"{vault.url}/certificates/{name}/pending"}
    assert not {"x5t", "cer", "kid", "sid"} & set(shape)

    ca = OutsideCA()
    leaf = ca.sign(op["csr"])
    merged = kv.post(url(f"/certificates/{name}/pending/merge"), json={"x5c": ca.items(leaf)})
    assert merged.status_code == 201, merged.text
    assert merged.headers["location"] == f"{vault.url}/certificates/{name}?api-version={API}"
    body = merged.json()
    version = body["id"].rsplit("/", 1)[1]
    assert re.fullmatch(HEX32, version)
    assert body["kid"] == f"{vault.url}/keys/{name}/{version}"
    assert body["sid"] == f"{vault.url}/secrets/{name}/{version}"
    der = base64.b64decode(body["cer"])
    assert der == leaf.public_bytes(serialization.Encoding.DER)
    sha1 = hashlib.sha1(der).digest()
    assert body["x5t"] == base64.urlsafe_b64encode(sha1).rstrip(b"=").decode()
    assert {"enabled", "nbf", "exp", "created", "updated", "recoveryLevel"} <= set(
        body["attributes"]
    )
    assert body["pending"] == {"id": f"{vault.url}/certificates/{name}/pending"}
    assert body["policy"]["issuer"]["name"] == "Unknown"
    assert pending(kv, name).json()["status"] == "completed"
    # the CSR carried the vault-held key: the merged leaf (signed from it) has that key
    csr = x509.load_der_x509_csr(base64.b64decode(op["csr"]))
    assert csr.public_key() == leaf.public_key()


def test_merge_accepts_base64_of_pem_text(kv: httpx.Client, name: str) -> None:
    csr = create(kv, name, "Unknown").json()["csr"]
    response = kv.post(
        url(f"/certificates/{name}/pending/merge"), json={"x5c": OutsideCA().x5c(csr, pem=True)}
    )
    assert response.status_code == 201, response.text


def test_merge_with_a_leaf_for_another_key_is_rejected_and_changes_nothing(
    kv: httpx.Client, name: str
) -> None:
    create(kv, name, "Unknown")
    other = create(kv, f"{name}-other", "Unknown").json()["csr"]
    response = kv.post(
        url(f"/certificates/{name}/pending/merge"), json={"x5c": OutsideCA().x5c(other)}
    )
    assert_error(response, 400, "BadParameter")
    assert pending(kv, name).json()["status"] == "inProgress"


def test_self_create_completes_right_after_the_202(kv: httpx.Client, name: str) -> None:
    response = create(kv, name, "Self")
    assert response.status_code == 202
    assert response.json()["status"] == "inProgress"
    assert wait_status(kv, name, timeout=10)["status"] == "completed"


def test_tags_given_at_create_reach_the_issued_version_and_the_list(
    kv: httpx.Client, name: str
) -> None:
    tags = {"managed-by": "kvcert", "uid": "1234"}
    response = kv.post(
        url(f"/certificates/{name}/create"), json={"policy": policy_body("Self"), "tags": tags}
    )
    assert response.status_code == 202
    assert kv.get(url(f"/certificates/{name}/")).json()["tags"] == tags
    wait_status(kv, name, timeout=10)
    assert kv.get(url(f"/certificates/{name}/")).json()["tags"] == tags
    items = kv.get(url("/certificates")).json()
    listed = []
    while True:
        listed += [i for i in items["value"] if i["id"].endswith(f"/{name}")]
        if not items["nextLink"]:
            break
        items = kv.get(items["nextLink"]).json()
    assert [i["tags"] for i in listed] == [tags]
