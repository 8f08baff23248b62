"""CertificateIssuer / ClusterCertificateIssuer (issue #19 §2) against the real API server, the
session operator and the local vault: written to Key Vault, updated, rotated password, NotOwned
then adopted, deleted with Delete and with Retain, and used by a Certificate; and the review's
findings: a failing delete backs off, a gone vault lets the issuer go, vaultRef is immutable,
one resource per issuer, updates are PUT whole."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.faultproxy import FaultProxy, Record
from tests.integration.operator.harness import (
    GROUP,
    VERSION,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    wait_for,
)
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

PUTS = "PUT /certificates/issuers/{issuer}"
PATCHES = "PATCH /certificates/issuers/{issuer}"
GETS = "GET /certificates/issuers/{issuer}"
DELETES = "DELETE /certificates/issuers/{issuer}"
PLURAL = "certificateissuers"
CLUSTER_PLURAL = "clustercertificateissuers"
OPERATOR_NAMESPACE = "kvcert-system"


def unique(prefix: str) -> str:
    """Issuer names are vault-wide and the vault is shared between tests."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Issuers:
    """The test's CertificateIssuers in its namespace, and the vault's view of them."""

    def __init__(self, kube: Kube, ops: VaultOps) -> None:
        self.kube, self.ops = kube, ops
        self.custom = kube.custom

    def apply(self, name: str, vault: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CertificateIssuer",
            "metadata": {"name": name},
            "spec": {"vaultRef": {"name": vault}, "provider": "DigiCert", **spec},
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.kube.namespace, PLURAL, body
        )

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.kube.namespace, PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.kube.namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.kube.namespace, PLURAL, name
        )

    def ready(
        self, name: str, status: str = "True", reason: str = "Configured", generation: int = 1
    ) -> dict[str, Any]:
        def matched() -> dict[str, Any] | None:
            body = self.get(name) or {}
            got = body.get("status") or {}
            for item in got.get("conditions") or []:
                if (
                    item["type"] == "Ready"
                    and (item["status"], item["reason"]) == (status, reason)
                    and got.get("observedGeneration") == generation
                ):
                    return body
            return None

        return wait_for(matched, 30, f"{name} Ready={status} {reason} at generation {generation}")

    def in_vault(self, name: str) -> dict[str, Any] | None:
        response = self.ops.call("GET", f"/certificates/issuers/{name}")
        if response.status_code == 404:
            return None
        assert response.is_success, response.text
        found: dict[str, Any] = response.json()
        return found

    def drop(self, name: str) -> None:
        self.ops.call("DELETE", f"/certificates/issuers/{name}")


@pytest.fixture
def issuers(kube: Kube, keyvault: str, vault_ops: VaultOps) -> Iterator[Issuers]:
    made = Issuers(kube, vault_ops)
    yield made
    listed = made.custom.list_namespaced_custom_object(GROUP, VERSION, kube.namespace, PLURAL)
    for item in listed.get("items", []):
        name = item["metadata"]["name"]
        made.delete(name)
        wait_for(lambda name=name: made.get(name) is None, 30, f"{name} deleted")
        made.drop((item.get("spec") or {}).get("issuerName") or name)


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in body["status"]["conditions"] if c["type"] == kind]
    assert found, f"no {kind} condition"
    return dict(found[0])


def events(kube: Kube, name: str) -> list[client.CoreV1Event]:
    return sorted(kube.events(name), key=lambda e: e.metadata.creation_timestamp)


def password_secret(kube: Kube, name: str, password: str) -> None:
    """A password Secret labelled kvcert.io/source=true: the operator watches it."""
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels={"kvcert.io/source": "true"}),
        string_data={"password": password},
    )
    try:
        kube.core.create_namespaced_secret(kube.namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        kube.core.replace_namespaced_secret(name, kube.namespace, body)


def test_an_issuer_is_written_updated_and_its_password_rotated(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps, operator: OperatorProcess
):
    name = unique("digicert")
    password, rotated = f"pw-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    password_secret(kube, f"{name}-account", password)
    before = vault_ops.stats()
    issuers.apply(
        name,
        keyvault,
        accountId="acct-1",
        passwordSecretRef={"name": f"{name}-account", "key": "password"},
        organizationId="org-1",
        administrators=[{"firstName": "Ada", "lastName": "L", "email": "ada@example.com"}],
    )
    body = issuers.ready(name)
    after = vault_ops.stats()  # before the test's own reads

    status = body["status"]
    assert status["managed"] is True
    assert len(status["appliedHash"]) == 32
    assert status["issuer"]["id"].endswith(f"/certificates/issuers/{name}")
    assert (status["issuer"]["provider"], status["issuer"]["enabled"]) == ("DigiCert", True)
    assert condition(body, "Stalled")["status"] == "False"
    found = issuers.in_vault(name)
    assert found is not None
    assert found["provider"] == "DigiCert"
    assert found["credentials"] == {"account_id": "acct-1"}
    assert found["org_details"] == {
        "id": "org-1",
        "admin_details": [{"first_name": "Ada", "last_name": "L", "email": "ada@example.com"}],
    }
    # apply -> Ready: one read (404), one PUT; never a PATCH.
    assert after.get(GETS, 0) - before.get(GETS, 0) == 1
    assert after.get(PUTS, 0) - before.get(PUTS, 0) == 1
    assert after.get(PATCHES, 0) == before.get(PATCHES, 0)
    wait_for(lambda: [e.reason for e in events(kube, name)] == ["Configured"], 10, "Configured")

    # An update: disabled, another provider and account.
    issuers.patch(name, {"enabled": False, "provider": "GlobalSign", "accountId": "acct-2"})
    body = issuers.ready(name, generation=2)
    found = issuers.in_vault(name)
    assert found is not None
    assert (found["provider"], found["attributes"]["enabled"]) == ("GlobalSign", False)
    assert found["credentials"] == {"account_id": "acct-2"}
    assert body["status"]["issuer"]["enabled"] is False
    # Updates are PUT whole (SetCertificateIssuer), never PATCHed: a PATCH keeps dropped fields.
    assert vault_ops.count(PUTS) - after.get(PUTS, 0) == 1
    assert vault_ops.count(PATCHES) == after.get(PATCHES, 0)

    # A rotated password (the labelled Secret changed): applied at once, the hash moves.
    applied = body["status"]["appliedHash"]
    puts = vault_ops.count(PUTS)
    password_secret(kube, f"{name}-account", rotated)
    wait_for(
        lambda: (issuers.get(name) or {})["status"].get("appliedHash") not in (applied, None),
        30,
        "the rotated password applied",
    )
    assert vault_ops.count(PUTS) - puts == 1

    # A metadata-only edit of the Secret (a new resourceVersion, the same password): the round
    # sees it, moves the hash, and sends nothing (the applied password is compared in memory).
    applied = (issuers.get(name) or {})["status"]["appliedHash"]
    puts = vault_ops.count(PUTS)
    kube.core.patch_namespaced_secret(
        f"{name}-account", kube.namespace, {"metadata": {"annotations": {"example.com/x": "1"}}}
    )
    wait_for(
        lambda: (issuers.get(name) or {})["status"].get("appliedHash") != applied,
        30,
        "the Secret's new resourceVersion recorded",
    )
    assert vault_ops.count(PUTS) == puts, "the same password sent again"
    assert vault_ops.count(PATCHES) == after.get(PATCHES, 0)

    # The password is nowhere: status, events, the operator's log.
    shown = json.dumps(issuers.get(name)) + " ".join(str(e.message) for e in events(kube, name))
    log = operator.log(tail=50_000_000)
    for secret in (password, rotated):
        assert secret not in shown
        assert secret not in log


def test_an_issuer_kvcert_does_not_manage_is_refused_until_adopted(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps
):
    name = unique("theirs")
    vault_ops.set_issuer(name, "GlobalSign")
    writes = vault_ops.count(PUTS) + vault_ops.count(PATCHES)
    issuers.apply(name, keyvault, accountId="ours")

    body = issuers.ready(name, "False", "NotOwned")
    ready = condition(body, "Ready")
    assert "spec.adopt: true" in ready["message"]
    assert condition(body, "Stalled")["status"] == "True"
    assert not body["status"].get("managed")
    never(
        lambda: vault_ops.count(PUTS) + vault_ops.count(PATCHES) != writes,
        3,
        "a write to an issuer kvcert does not manage",
    )
    assert (issuers.in_vault(name) or {})["provider"] == "GlobalSign"

    issuers.patch(name, {"adopt": True})
    body = issuers.ready(name, generation=2)
    assert body["status"]["managed"] is True
    found = issuers.in_vault(name)
    assert found is not None
    assert (found["provider"], found["credentials"]) == ("DigiCert", {"account_id": "ours"})
    # Events' timestamps are in seconds: the two of one round may sort either way.
    wait_for(
        lambda: (
            sorted(e.reason for e in events(kube, name)) == ["Adopted", "Configured", "NotOwned"]
        ),
        10,
        "NotOwned, then Adopted and Configured events",
    )


def test_deletion_policy_delete_removes_the_issuer_and_retain_keeps_it(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps
):
    gone, kept = unique("gone"), unique("kept")
    issuers.apply(gone, keyvault, deletionPolicy="Delete")
    issuers.apply(kept, keyvault)
    issuers.ready(gone)
    body = issuers.ready(kept)
    assert "finalizers" not in body["metadata"], "Retain holds no deletion"
    wait_for(
        lambda: (
            "kvcert.io/cleanup" in ((issuers.get(gone) or {})["metadata"].get("finalizers") or [])
        ),
        10,
        "the finalizer on the Delete issuer",
    )

    issuers.delete(gone)
    wait_for(lambda: issuers.get(gone) is None, 30, f"{gone} deleted")
    assert issuers.in_vault(gone) is None
    assert "Deleted" in [e.reason for e in events(kube, gone)]

    issuers.delete(kept)
    wait_for(lambda: issuers.get(kept) is None, 30, f"{kept} deleted")
    assert issuers.in_vault(kept) is not None
    issuers.drop(kept)


def test_a_certificate_is_issued_through_an_issuer_made_by_the_resource(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps
):
    name = unique("ca")
    password_secret(kube, f"{name}-account", "demo-password")
    issuers.apply(
        name,
        keyvault,
        accountId="demo",
        passwordSecretRef={"name": f"{name}-account", "key": "password"},
    )
    issuers.ready(name)
    certificate = unique("via-issuer")
    kube.apply_certificate(certificate, certificate_spec(keyvault, f"{certificate}-tls", name))
    op = kube.wait_operation(certificate, lambda op: op.get("status") == "inProgress")
    assert op["status"]["operation"]["issuer"] == name
    vault_ops.complete(certificate)
    kube.wait_condition(certificate, "Ready", "True", "Issued", timeout=45)
    assert kube.secret(f"{certificate}-tls") is not None


@pytest.mark.one_profile("documented")
def test_a_cluster_issuer_uses_a_clusterkeyvault_and_a_secret_of_the_operators_namespace(
    api_client: client.ApiClient, vault: LocalVault, operator: OperatorProcess, vault_ops: VaultOps
):
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    name = unique("cluster-ca")
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE))
        )
    except ApiException as error:
        if error.status != 409:
            raise
    for secret, data in (
        (f"{name}-token", {"token": vault.token}),
        (f"{name}-pw", {"password": "pw-cluster-1"}),
    ):
        core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            client.V1Secret(metadata=client.V1ObjectMeta(name=secret), string_data=data),
        )
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterkeyvaults",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterKeyVault",
            "metadata": {"name": name},
            "spec": {
                "url": vault.url,
                "auth": {"token": {"secretRef": {"name": f"{name}-token", "key": "token"}}},
                "caBundle": vault.ca_path.read_text(),
            },
        },
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterCertificateIssuer",
        "metadata": {"name": name},
        "spec": {
            "vaultRef": {"name": name},
            "provider": "OneCertV2-PrivateCA",
            "passwordSecretRef": {"name": f"{name}-pw", "key": "password"},
            "deletionPolicy": "Delete",
        },
    }
    custom.create_cluster_custom_object(GROUP, VERSION, CLUSTER_PLURAL, body)

    def get() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = custom.get_cluster_custom_object(
                GROUP, VERSION, CLUSTER_PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    try:

        def ready() -> bool:
            conditions = ((get() or {}).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_for(ready, 30, f"ClusterCertificateIssuer {name} Ready")
        response = vault_ops.call("GET", f"/certificates/issuers/{name}")
        assert response.json()["provider"] == "OneCertV2-PrivateCA"
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, CLUSTER_PLURAL, name)
        wait_for(lambda: get() is None, 30, f"{name} deleted")
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)
        for secret in (f"{name}-token", f"{name}-pw"):
            core.delete_namespaced_secret(secret, OPERATOR_NAMESPACE)
    assert vault_ops.call("GET", f"/certificates/issuers/{name}").status_code == 404


@pytest.mark.one_profile("documented")
def test_a_restart_reads_the_issuer_and_writes_nothing_when_it_is_as_the_spec_says(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps, operator: OperatorProcess
):
    name = unique("idle")
    password_secret(kube, f"{name}-account", "idle-password")
    issuers.apply(
        name,
        keyvault,
        accountId="a",
        passwordSecretRef={"name": f"{name}-account", "key": "password"},
        organizationId="org-1",
        administrators=[{"firstName": "Ada", "email": "ada@example.com"}],
    )
    issuers.ready(name)
    # Fields removed from the spec are removed in Key Vault (the update is a whole PUT).
    patches = vault_ops.count(PATCHES)
    issuers.patch(name, {"organizationId": None, "administrators": None})
    version = issuers.ready(name, generation=2)["metadata"]["resourceVersion"]
    found = issuers.in_vault(name)
    assert found is not None
    assert not found.get("org_details"), found.get("org_details")
    assert found["credentials"] == {"account_id": "a"}
    assert vault_ops.count(PATCHES) == patches
    gets, writes = vault_ops.count(GETS), vault_ops.count(PUTS) + vault_ops.count(PATCHES)

    operator.restart()

    # The re-list reads Key Vault once (other tests' issuers may be read too: at least one)...
    wait_for(lambda: vault_ops.count(GETS) > gets, 60, "the re-list's read of the issuer")
    # ... and writes nothing: no Key Vault write, no status write.
    never(
        lambda: vault_ops.count(PUTS) + vault_ops.count(PATCHES) != writes,
        3,
        "a Key Vault write after an idle re-list",
    )
    assert (issuers.get(name) or {})["metadata"]["resourceVersion"] == version


def authorized_deletes(proxy: FaultProxy, name: str) -> list[Record]:
    """The DELETEs of issuer `name` that carried a token: one per round (the bodyless probe
    before it, for the bearer challenge, carries none)."""
    path = f"/certificates/issuers/{name}"
    return [
        r for r in proxy.records() if (r.method, r.path, r.authorized) == ("DELETE", path, True)
    ]


@pytest.mark.one_profile("documented")
def test_a_failing_delete_is_retried_with_backoff_not_at_once(
    kube: Kube, keyvault: str, issuers: Issuers, vault: LocalVault, vault_ops: VaultOps
):
    """Issue #19 §2 review, finding 1: each failed delete round wrote status, whose echo (with
    a deletionTimestamp) started the next round at once. The vault's token is made wrong after
    the issuer is Ready, then the issuer (deletionPolicy Delete) is deleted: its DELETEs are
    spaced by the backoff (5 s, 10 s, 20 s, times at most 1.5): at most 3 rounds in 20 s."""
    name = unique("stuck")
    kube.put_secret("bad-token", {"token": b"not-the-vault-token"})
    with FaultProxy(vault, rate=0.0) as proxy:
        kube.put_secret("proxy-token", {"token": vault.token.encode()})
        kube.keyvault("viaproxy", proxy.url, "proxy-token", vault.ca_path.read_text())
        issuers.apply(name, "viaproxy", deletionPolicy="Delete")
        issuers.ready(name)
        wait_for(
            lambda: (
                "kvcert.io/cleanup"
                in ((issuers.get(name) or {})["metadata"].get("finalizers") or [])
            ),
            10,
            "the finalizer",
        )
        bad = {"spec": {"auth": {"token": {"secretRef": {"name": "bad-token", "key": "token"}}}}}
        kube.custom.patch_namespaced_custom_object(
            GROUP, VERSION, kube.namespace, "keyvaults", "viaproxy", bad
        )

        def refused() -> bool:
            found = kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, kube.namespace, "keyvaults", "viaproxy"
            )
            status = found.get("status") or {}
            ready = [c["status"] for c in status.get("conditions") or [] if c["type"] == "Ready"]
            return status.get("observedGeneration") == 2 and ready == ["False"]

        # The operator has the KeyVault's new generation (its probe was refused): the issuer's
        # rounds use the wrong token from here on.
        wait_for(refused, 30, "the KeyVault probed with the wrong token")
        issuers.delete(name)
        try:
            first = wait_for(lambda: authorized_deletes(proxy, name), 30, "the first DELETE")[0]
            never(
                lambda: len(authorized_deletes(proxy, name)) > 3,
                max(20.0 - (time.monotonic() - first.at), 0.0),
                "a fourth DELETE round within 20 s",
            )
            rounds = authorized_deletes(proxy, name)
            assert [r.status for r in rounds] == [401] * len(rounds)
            assert len(rounds) >= 2, "the failed delete is retried"
            assert rounds[1].at - rounds[0].at >= 4.5
            body = issuers.get(name)
            assert body is not None, "the finalizer holds the issuer while Key Vault refuses"
            ready = condition(body, "Ready")
            assert (ready["status"], ready["reason"]) == ("False", "KeyVaultError")
        finally:
            # Let it go: the finalizer is removed by hand, the issuer dropped from the vault.
            issuers.custom.patch_namespaced_custom_object(
                GROUP, VERSION, kube.namespace, PLURAL, name, {"metadata": {"finalizers": []}}
            )
            wait_for(lambda: issuers.get(name) is None, 30, f"{name} gone")
    issuers.drop(name)


def test_a_second_resource_cannot_take_an_issuer_another_manages_even_with_adopt(
    kube: Kube, keyvault: str, issuers: Issuers, vault_ops: VaultOps
):
    """Issue #19 §2 review, finding 5: one resource per Key Vault issuer, adoption or not."""
    shared = unique("shared")
    issuers.apply("first", keyvault, issuerName=shared, accountId="first")
    issuers.ready("first")
    writes = vault_ops.count(PUTS) + vault_ops.count(PATCHES)
    issuers.apply("second", keyvault, issuerName=shared, provider="GlobalSign", adopt=True)

    body = issuers.ready("second", "False", "NotOwned")
    assert f"CertificateIssuer {kube.namespace}/first" in condition(body, "Ready")["message"]
    assert not body["status"].get("managed")
    never(
        lambda: vault_ops.count(PUTS) + vault_ops.count(PATCHES) != writes,
        3,
        "a write by the second resource",
    )
    assert (issuers.in_vault(shared) or {})["provider"] == "DigiCert"


def test_vault_ref_is_immutable_and_a_gone_vault_lets_the_issuer_go(
    kube: Kube, keyvault: str, issuers: Issuers, vault: LocalVault, vault_ops: VaultOps
):
    """Issue #19 §2 review, findings 2 and 3: vaultRef cannot be changed (CEL); a namespace
    being deleted removes the KeyVault and the issuer together: with the vault gone, the
    issuer (deletionPolicy Delete) is let go with a VaultMissing event, nothing deleted."""
    name = unique("orphan")
    kube.keyvault("doomed", vault.url, "vault-token", vault.ca_path.read_text())
    issuers.apply(name, "doomed", deletionPolicy="Delete")
    body = issuers.ready(name)
    assert body["status"]["vaultURL"] == vault.url.rstrip("/")
    wait_for(
        lambda: (
            "kvcert.io/cleanup" in ((issuers.get(name) or {})["metadata"].get("finalizers") or [])
        ),
        10,
        "the finalizer",
    )
    with pytest.raises(ApiException) as refused:
        issuers.patch(name, {"vaultRef": {"name": keyvault}})
    assert refused.value.status == 422
    assert "vaultRef is immutable" in str(refused.value.body)

    kube.custom.delete_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", "doomed"
    )
    issuers.delete(name)
    wait_for(lambda: issuers.get(name) is None, 30, f"{name} let go")
    warnings = wait_for(
        lambda: [e for e in events(kube, name) if e.reason == "VaultMissing"],
        10,
        "the VaultMissing event",
    )
    assert warnings[0].type == "Warning"
    assert "nothing was deleted in Key Vault" in str(warnings[0].message)
    assert issuers.in_vault(name) is not None, "nothing deleted without its vault"
    issuers.drop(name)
