"""What a name that does not exist, or does not exist yet, answers (issue 14, kind 3).

Each input class (unknown name, soft-deleted name, pending-only name, disabled version) against
every read and list route of the certificates API and the certificate's secret, as the live
service answers it; the table in operator/kvcert/vault/README.md is the same, row by row.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, WellKnownIssuerNames
from tests.integration.vault.vault_helpers import assert_error, create, url, wait_status

HEX = "0" * 32
NOT_FOUND = (
    "A certificate with (name/id) {} was not found in this key vault. If you recently deleted "
    "this certificate you may be able to recover it using the correct recovery command. For "
    "help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)
SECRET_NOT_FOUND = (
    "A secret with (name/id) {} was not found in this key vault. If you recently deleted this "
    "secret you may be able to recover it using the correct recovery command. For help "
    "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)
DISABLED = "Operation get is not allowed on a disabled secret."
EMPTY_PAGE = {"value": [], "nextLink": None}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _items(kv: httpx.Client, path: str, **query: str) -> dict[str, Any]:
    """Every item a list route answers, by certificate name, following nextLink."""
    found: dict[str, Any] = {}
    next_url: str | None = url(path, maxresults="25", **query)
    while next_url:
        page = _ok(kv.get(next_url))
        found |= {item["id"].split("/")[4]: item for item in page["value"]}
        next_url = page["nextLink"]
    return found


def _names(kv: httpx.Client, path: str, **query: str) -> list[str]:
    return list(_items(kv, path, **query))


def _issued(kv: httpx.Client, name: str) -> str:
    """A Self-issued certificate; its version."""
    assert create(kv, name).status_code == 202
    assert wait_status(kv, name)["status"] == "completed"
    version: str = _ok(kv.get(url(f"/certificates/{name}/")))["id"].rsplit("/", 1)[1]
    return version


def _disable(kv: httpx.Client, name: str, version: str, enabled: bool = False) -> None:
    body = {"attributes": {"enabled": enabled}}
    assert (
        _ok(kv.patch(url(f"/certificates/{name}/{version}"), json=body))["attributes"]["enabled"]
        is enabled
    )


def _certificate_not_found(response: httpx.Response, what: str) -> None:
    assert_error(response, 404, "CertificateNotFound", NOT_FOUND.format(what))


def _secret_not_found(response: httpx.Response, what: str) -> None:
    assert_error(response, 404, "SecretNotFound", SECRET_NOT_FOUND.format(what))


def _secret_disabled(response: httpx.Response) -> None:
    body = assert_error(response, 403, "Forbidden", DISABLED)
    assert body["error"]["innererror"] == {"code": "SecretDisabled"}


# --- unknown name ------------------------------------------------------------------------------


def test_versions_of_an_unknown_name_are_an_empty_page_not_a_404(
    kv: httpx.Client, name: str
) -> None:
    assert _ok(kv.get(url(f"/certificates/{name}/versions"))) == EMPTY_PAGE
    assert _ok(kv.get(url(f"/certificates/{name}/versions", maxresults="1"))) == EMPTY_PAGE


def test_an_unknown_name_is_not_found_on_every_get_route(kv: httpx.Client, name: str) -> None:
    _certificate_not_found(kv.get(url(f"/certificates/{name}")), name)
    _certificate_not_found(kv.get(url(f"/certificates/{name}/")), name)
    _certificate_not_found(kv.get(url(f"/certificates/{name}/{HEX}")), f"{name}/{HEX}")
    _certificate_not_found(kv.get(url(f"/certificates/{name}/policy")), name)
    assert_error(
        kv.get(url(f"/certificates/{name}/pending")),
        404,
        "PendingCertificateNotFound",
        f"Pending certificate not found: {name}",
    )
    assert_error(
        kv.get(url(f"/deletedcertificates/{name}")),
        404,
        "CertificateNotFound",
        f"Deleted Certificate not found: {name}",
    )
    _secret_not_found(kv.get(url(f"/secrets/{name}")), name)
    _secret_not_found(kv.get(url(f"/secrets/{name}/")), name)
    _secret_not_found(kv.get(url(f"/secrets/{name}/{HEX}")), f"{name}/{HEX}")
    assert name not in _names(kv, "/certificates", includePending="true")
    assert name not in _names(kv, "/deletedcertificates", includePending="true")


def test_an_unknown_version_of_a_known_name_is_not_found(kv: httpx.Client, name: str) -> None:
    _issued(kv, name)
    _certificate_not_found(kv.get(url(f"/certificates/{name}/{HEX}")), f"{name}/{HEX}")
    _secret_not_found(kv.get(url(f"/secrets/{name}/{HEX}")), f"{name}/{HEX}")


def test_the_sdk_lists_no_versions_for_an_unknown_name(sdk: CertificateClient, name: str) -> None:
    assert list(sdk.list_properties_of_certificate_versions(name)) == []


# --- soft-deleted name -------------------------------------------------------------------------


def test_a_soft_deleted_name_answers_like_an_unknown_one_except_under_deletedcertificates(
    kv: httpx.Client, name: str
) -> None:
    version = _issued(kv, name)
    _ok(kv.delete(url(f"/certificates/{name}")))
    assert _ok(kv.get(url(f"/certificates/{name}/versions"))) == EMPTY_PAGE
    _certificate_not_found(kv.get(url(f"/certificates/{name}")), name)
    _certificate_not_found(kv.get(url(f"/certificates/{name}/")), name)
    _certificate_not_found(kv.get(url(f"/certificates/{name}/{version}")), f"{name}/{version}")
    _certificate_not_found(kv.get(url(f"/certificates/{name}/policy")), name)
    assert_error(kv.get(url(f"/certificates/{name}/pending")), 404, "PendingCertificateNotFound")
    _secret_not_found(kv.get(url(f"/secrets/{name}")), name)
    _secret_not_found(kv.get(url(f"/secrets/{name}/{version}")), f"{name}/{version}")
    deleted = _ok(kv.get(url(f"/deletedcertificates/{name}")))
    assert deleted["id"].endswith(f"/certificates/{name}/{version}")
    assert name not in _names(kv, "/certificates", includePending="true")
    assert name in _names(kv, "/deletedcertificates")
    # Recovered, every route answers again.
    _ok(kv.post(url(f"/deletedcertificates/{name}/recover")))
    assert [
        v["id"].rsplit("/", 1)[1]
        for v in _ok(kv.get(url(f"/certificates/{name}/versions")))["value"]
    ] == [version]
    _ok(kv.get(url(f"/secrets/{name}/{version}")))


# --- pending-only name -------------------------------------------------------------------------


@pytest.fixture
def pending_only(kv: httpx.Client, name: str) -> str:
    """A manual (Unknown issuer) create: only its pending version exists until a merge. Returns
    the pending version."""
    assert create(kv, name, "Unknown").status_code == 202
    body = _ok(kv.get(url(f"/certificates/{name}/")))
    assert body["attributes"]["enabled"] is False
    version: str = body["id"].rsplit("/", 1)[1]
    return version


def test_a_pending_only_name_is_a_disabled_certificate_without_material(
    kv: httpx.Client, name: str, pending_only: str
) -> None:
    for path in (f"/certificates/{name}", f"/certificates/{name}/{pending_only}"):
        body = _ok(kv.get(url(path)))
        assert body["id"].endswith(f"/certificates/{name}/{pending_only}")
        assert body["attributes"]["enabled"] is False
        assert body["pending"]["id"].endswith(f"/certificates/{name}/pending")
        assert not {"x5t", "cer", "kid", "sid"} & set(body)
    (item,) = _ok(kv.get(url(f"/certificates/{name}/versions")))["value"]
    assert item["id"].endswith(f"/certificates/{name}/{pending_only}")
    assert item["attributes"]["enabled"] is False
    assert "x5t" not in item
    assert _ok(kv.get(url(f"/certificates/{name}/policy")))["issuer"]["name"] == "Unknown"
    assert _ok(kv.get(url(f"/certificates/{name}/pending")))["status"] == "inProgress"


def test_a_pending_only_name_has_no_secret_yet(
    kv: httpx.Client, name: str, pending_only: str
) -> None:
    _secret_not_found(kv.get(url(f"/secrets/{name}")), name)
    _secret_not_found(kv.get(url(f"/secrets/{name}/")), name)
    _secret_not_found(kv.get(url(f"/secrets/{name}/{pending_only}")), f"{name}/{pending_only}")


def test_a_pending_only_name_is_listed_only_with_include_pending(
    kv: httpx.Client, name: str, pending_only: str
) -> None:
    assert name not in _names(kv, "/certificates")
    assert name not in _names(kv, "/certificates", includePending="false")
    assert name in _names(kv, "/certificates", includePending="true")
    assert_error(kv.get(url(f"/deletedcertificates/{name}")), 404, "CertificateNotFound")
    # Deleted while pending: a deleted certificate that never had an issued version.
    _ok(kv.delete(url(f"/certificates/{name}")))
    assert name not in _names(kv, "/deletedcertificates")
    assert name in _names(kv, "/deletedcertificates", includePending="true")
    assert _ok(kv.get(url(f"/deletedcertificates/{name}")))["attributes"]["enabled"] is False
    assert _ok(kv.get(url(f"/certificates/{name}/versions"))) == EMPTY_PAGE
    assert kv.delete(url(f"/deletedcertificates/{name}")).status_code == 204


def test_a_renewal_in_progress_lists_its_pending_version_after_the_issued_one(
    kv: httpx.Client, name: str
) -> None:
    issued = _issued(kv, name)
    assert create(kv, name, "Unknown").status_code == 202
    items = _ok(kv.get(url(f"/certificates/{name}/versions")))["value"]
    assert [i["id"].rsplit("/", 1)[1] == issued for i in items] == [True, False]
    assert [i["attributes"]["enabled"] for i in items] == [True, False]
    pending_version = items[1]["id"].rsplit("/", 1)[1]
    # The certificate is still the issued version; its secret still answers.
    assert _ok(kv.get(url(f"/certificates/{name}/")))["id"].endswith(issued)
    assert _ok(kv.get(url(f"/secrets/{name}")))["id"].endswith(f"/secrets/{name}/{issued}")
    _secret_not_found(
        kv.get(url(f"/secrets/{name}/{pending_version}")), f"{name}/{pending_version}"
    )


def test_the_sdk_reads_pending_only_names_in_every_list(sdk: CertificateClient, name: str) -> None:
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=p.test")
    sdk.begin_create_certificate(name, policy, _polling_interval=0.05).result(timeout=30)
    (version,) = sdk.list_properties_of_certificate_versions(name)
    assert version.enabled is False
    assert version.x509_thumbprint is None
    assert name not in [c.name for c in sdk.list_properties_of_certificates()]
    listed = {c.name: c for c in sdk.list_properties_of_certificates(include_pending=True)}
    assert listed[name].enabled is False
    sdk.begin_delete_certificate(name, _polling_interval=0.05).result()
    assert name not in [d.name for d in sdk.list_deleted_certificates()]
    deleted = {d.name: d for d in sdk.list_deleted_certificates(include_pending=True)}
    assert deleted[name].properties.enabled is False
    assert deleted[name].recovery_id
    sdk.purge_deleted_certificate(name)


# --- disabled version --------------------------------------------------------------------------


def test_a_disabled_version_is_readable_as_a_certificate_but_its_secret_is_forbidden(
    kv: httpx.Client, name: str
) -> None:
    version = _issued(kv, name)
    _disable(kv, name, version)
    for path in (
        f"/certificates/{name}",
        f"/certificates/{name}/",
        f"/certificates/{name}/{version}",
    ):
        body = _ok(kv.get(url(path)))
        assert body["attributes"]["enabled"] is False
        assert body["x5t"]
        assert body["cer"]
    (item,) = _ok(kv.get(url(f"/certificates/{name}/versions")))["value"]
    assert item["attributes"]["enabled"] is False
    assert _items(kv, "/certificates")[name]["attributes"]["enabled"] is False
    _ok(kv.get(url(f"/certificates/{name}/policy")))
    _secret_disabled(kv.get(url(f"/secrets/{name}")))
    _secret_disabled(kv.get(url(f"/secrets/{name}/")))
    _secret_disabled(kv.get(url(f"/secrets/{name}/{version}")))
    _disable(kv, name, version, enabled=True)
    assert _ok(kv.get(url(f"/secrets/{name}/{version}")))["attributes"]["enabled"] is True


def test_the_latest_secret_is_the_latest_version_even_when_it_is_disabled(
    kv: httpx.Client, name: str
) -> None:
    first = _issued(kv, name)
    second = _issued(kv, name)
    assert first != second
    _disable(kv, name, second)
    _secret_disabled(kv.get(url(f"/secrets/{name}")))
    assert _ok(kv.get(url(f"/secrets/{name}/{first}")))["id"].endswith(f"/{first}")
    assert _ok(kv.get(url(f"/certificates/{name}/")))["id"].endswith(f"/{second}")


def test_a_deleted_disabled_certificate_is_shown_disabled(kv: httpx.Client, name: str) -> None:
    version = _issued(kv, name)
    _disable(kv, name, version)
    assert _ok(kv.delete(url(f"/certificates/{name}")))["attributes"]["enabled"] is False
    assert _ok(kv.get(url(f"/deletedcertificates/{name}")))["attributes"]["enabled"] is False
    _secret_not_found(kv.get(url(f"/secrets/{name}/{version}")), f"{name}/{version}")
