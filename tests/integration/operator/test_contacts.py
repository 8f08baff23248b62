"""spec.contacts of KeyVault and ClusterKeyVault (issue #19 §2), on the real API server.

Key Vault keeps one contact list per vault, so this module runs a local vault of its own (one
profile: contacts behave alike in both) and leaves the session's shared vault alone; its tests
reset that vault's contacts and request counters first, and never run against it in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.integration.operator.conftest import VAULT_TOKENS
from tests.integration.operator.harness import GROUP, VERSION, Kube, VaultOps, wait_for
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

CONTACTS = "/certificates/contacts"
GET, PUT, DELETE = (f"{method} {CONTACTS}" for method in ("GET", "PUT", "DELETE"))
PKI = {"email": "pki@example.com", "name": "PKI team", "phone": "+1 555 0100"}
ONCALL = {"email": "oncall@example.com"}


@pytest.fixture(scope="module")
def own_vault() -> Iterator[LocalVault]:
    local = LocalVault.start(profile="service")
    VAULT_TOKENS.append(local.token)  # the session operator's log is checked for it too
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def ops(own_vault: LocalVault) -> Iterator[VaultOps]:
    """The module's vault with no contacts and zeroed request counters."""
    found = VaultOps(own_vault)
    found.call("DELETE", CONTACTS)
    found.ok("DELETE", "/_kvcert/stats")
    try:
        yield found
    finally:
        found.close()


def _create(kube: Kube, name: str, vault: LocalVault, contacts: Any = ..., token: str = "") -> None:
    kube.put_secret(f"{name}-token", {"token": (token or vault.token).encode()})
    spec: dict[str, Any] = {
        "url": vault.url,
        "auth": {"token": {"secretRef": {"name": f"{name}-token", "key": "token"}}},
        "caBundle": vault.ca_path.read_text(),
    }
    if contacts is not ...:
        spec["contacts"] = contacts
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KeyVault", "metadata": {"name": name}}
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", {**body, "spec": spec}
    )


def _set_contacts(kube: Kube, name: str, contacts: Any) -> None:
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", name, {"spec": {"contacts": contacts}}
    )


def _read(kube: Kube, name: str) -> dict[str, Any]:
    found = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", name
    )
    return cast(dict[str, Any], found)


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in (body.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def _probed(kube: Kube, name: str, generation: int) -> dict[str, Any]:
    """The object once its probe for `generation` wrote status."""

    def done() -> dict[str, Any] | None:
        body = _read(kube, name)
        return body if (body.get("status") or {}).get("observedGeneration") == generation else None

    return wait_for(done, 30, f"{name} probed at generation {generation}")


def _applied(kube: Kube, name: str, generation: int) -> dict[str, Any]:
    """ContactsApplied as the probe for `generation` left it."""
    body = _probed(kube, name, generation)
    found = _condition(body, "ContactsApplied")
    assert found is not None, body.get("status")
    assert found["observedGeneration"] == generation
    return found


def _in_vault(ops: VaultOps) -> list[dict[str, Any]] | None:
    response = ops.call("GET", CONTACTS)
    if response.status_code == 404:
        return None
    assert response.is_success, response.text
    found: list[dict[str, Any]] = response.json()["contacts"]
    return found


def _counts(ops: VaultOps) -> tuple[int, int, int]:
    stats = ops.stats()
    return stats.get(GET, 0), stats.get(PUT, 0), stats.get(DELETE, 0)


def _delta(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(b - a for a, b in zip(before, after, strict=True))


def test_contacts_are_set_changed_kept_and_deleted_with_one_read_per_probe(
    kube: Kube, ops: VaultOps, own_vault: LocalVault, operator: OperatorProcess
) -> None:
    # Each step: the operator's contacts requests (GET, PUT, DELETE) counted before the test
    # reads the vault itself (its own reads count too).
    _create(kube, "kv", own_vault, [PKI])
    first = _applied(kube, "kv", 1)
    assert _counts(ops) == (1, 1, 0)  # first apply: one GET, one PUT
    assert (first["status"], first["reason"]) == ("True", "ContactsSet")
    assert first["lastTransitionTime"]
    assert _in_vault(ops) == [PKI]
    ready = _condition(_read(kube, "kv"), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Reachable")  # kept beside it
    kube.wait_event("kv", "ContactsSet")

    before = _counts(ops)
    _set_contacts(kube, "kv", [ONCALL, PKI])
    changed = _applied(kube, "kv", 2)
    assert _delta(before, _counts(ops)) == (1, 1, 0)
    assert changed["reason"] == "ContactsSet"
    assert changed["lastTransitionTime"] == first["lastTransitionTime"]  # no flip, no move
    assert _in_vault(ops) == [ONCALL, PKI]

    before = _counts(ops)
    _set_contacts(kube, "kv", [PKI, ONCALL])  # the same contacts in another order
    same = _applied(kube, "kv", 3)
    assert _delta(before, _counts(ops)) == (1, 0, 0)  # a read, no write
    assert same["reason"] == "ContactsUpToDate"

    # A restart re-lists every vault object: one more probe, one GET, no PUT.
    before = _counts(ops)
    reachable = kube.event_reasons("kv").count("Reachable")
    operator.restart()
    wait_for(
        lambda: kube.event_reasons("kv").count("Reachable") > reachable, 60, "the re-list probe"
    )
    assert _delta(before, _counts(ops)) == (1, 0, 0)
    assert _applied(kube, "kv", 3)["reason"] == "ContactsUpToDate"

    before = _counts(ops)
    _set_contacts(kube, "kv", [])
    deleted = _applied(kube, "kv", 4)
    assert _delta(before, _counts(ops)) == (1, 0, 1)
    assert (deleted["status"], deleted["reason"]) == ("True", "ContactsDeleted")
    assert _in_vault(ops) is None
    kube.wait_event("kv", "ContactsDeleted")
    assert kube.event_reasons("kv").count("ContactsSet") == 2  # one per write, none for reads

    # Unset: kvcert lets go of the vault's contacts; someone else's list stays as it is.
    ops.ok("PUT", CONTACTS, {"contacts": [ONCALL]})
    before = _counts(ops)
    _set_contacts(kube, "kv", None)
    body = _probed(kube, "kv", 5)
    assert _counts(ops) == before
    assert _condition(body, "ContactsApplied") is None
    assert _condition(body, "Ready") is not None
    assert _in_vault(ops) == [ONCALL]


def test_a_keyvault_without_contacts_leaves_the_vaults_contacts_alone(
    kube: Kube, ops: VaultOps, own_vault: LocalVault, operator: OperatorProcess
) -> None:
    ops.ok("PUT", CONTACTS, {"contacts": [PKI]})
    before = _counts(ops)
    _create(kube, "plain", own_vault)
    body = _probed(kube, "plain", 1)
    assert _condition(body, "Ready")["status"] == "True"  # type: ignore[index]
    assert _counts(ops) == before
    assert _condition(body, "ContactsApplied") is None
    assert _in_vault(ops) == [PKI]


def test_contacts_of_a_vault_that_refuses_the_credential_wait_for_ready(
    kube: Kube, ops: VaultOps, own_vault: LocalVault, operator: OperatorProcess
) -> None:
    _create(kube, "refused", own_vault, [PKI], token="not-the-token")
    applied = _applied(kube, "refused", 1)
    assert (applied["status"], applied["reason"]) == ("False", "VaultNotReady")
    ready = _condition(_read(kube, "refused"), "Ready")
    assert (ready or {}).get("reason") == "AccessDenied"
    assert _counts(ops) == (0, 0, 0)
    assert _in_vault(ops) is None
    assert "ContactsSet" not in kube.event_reasons("refused")


def test_a_clusterkeyvault_sets_contacts_too(
    kube: Kube, ops: VaultOps, own_vault: LocalVault, operator: OperatorProcess
) -> None:
    name = f"contacts-{kube.namespace}"
    kube.put_secret("cluster-token", {"token": own_vault.token.encode()})
    ref = {"name": "cluster-token", "key": "token", "namespace": kube.namespace}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterKeyVault",
        "metadata": {"name": name},
        "spec": {
            "url": own_vault.url,
            "auth": {"token": {"secretRef": ref}},
            "caBundle": own_vault.ca_path.read_text(),
            "contacts": [ONCALL],
        },
    }
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", body)
    try:

        def applied() -> dict[str, Any] | None:
            found = kube.custom.get_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)
            return _condition(cast(dict[str, Any], found), "ContactsApplied")

        condition = wait_for(applied, 30, f"{name} ContactsApplied")
        assert _counts(ops) == (1, 1, 0)
        assert (condition["status"], condition["reason"]) == ("True", "ContactsSet")
        assert _in_vault(ops) == [ONCALL]
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)
