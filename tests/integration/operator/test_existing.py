"""Existing Key Vault certificates brought under kvcert (issue #19 §3), on the real API server
and the local vault over HTTPS, with the operator's clock moved instead of slept on.

`source: Existing` only delivers: the certificates are made in the vault by the test (as a
team did before kvcert), a Certificate delivers them, follows a version made out of band at its
refreshInterval, and reports what it cannot deliver; no create, import, merge or PATCH ever
reaches the vault. `adopt: true` turns such a certificate into a managed one (tags and policy
in place, no new version); without it the name is refused, and another Certificate's
certificate is refused even with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import (
    CREATES,
    GROUP,
    MERGES,
    VERSION,
    certificate_spec,
    wait_for,
)
from tests.integration.operator.timetravel import (
    Lab,
    Tenant,
    condition,
    event_types,
    external_cluster,
    issue,
    lab_fixtures,
    open_tenant,
    parse_time,
    secret_x5t,
    wait_delivered,
)
from tests.support.operator_process import OperatorProcess

pytestmark = external_cluster
PROFILES = ("documented", "service")
GET_CERTIFICATE = "GET /certificates/{name}/"
GET_SECRET = "GET /secrets/{name}/{version}"
IMPORTS = "POST /certificates/{name}/import"
PATCH_POLICY = "PATCH /certificates/{name}/policy"
PATCH_CERTIFICATE = "PATCH /certificates/{name}/"
DELETES = "DELETE /certificates/{name}"
WRITES = (CREATES, IMPORTS, MERGES, PATCH_POLICY, PATCH_CERTIFICATE, DELETES)
"""Every Key Vault route that changes a certificate: source Existing never calls one."""

lab, operator, tenant = lab_fixtures("existing", PROFILES)


@pytest.fixture(params=PROFILES)
def both(request: pytest.FixtureRequest, lab: Lab, operator: OperatorProcess) -> Iterator[Tenant]:
    """A tenant on each profile's vault."""
    with open_tenant(lab, request.param) as here:
        yield here


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def made_in_vault(
    t: Tenant, name: str, *, issuer: str = "Self", exportable: bool = True
) -> dict[str, Any]:
    """A certificate created in the vault by someone else (no kvcert tags), as az would."""
    policy = {
        "x509_props": {"subject": f"CN={name}.example.com"},
        "issuer": {"name": issuer},
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": exportable},
        "secret_props": {"contentType": "application/x-pem-file"},
    }
    t.ops.ok("POST", f"/certificates/{name}/create", {"policy": policy})
    if issuer != "Self":
        return t.ops.certificate(name) or {}
    return wait_for(
        lambda: (found := t.ops.certificate(name)) and found.get("x5t") and found,
        10,
        f"{name} issued in the vault",
    )


def existing_spec(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": "Existing",
        "vaultRef": {"name": "main"},
        "certificateName": name,
        "secretName": f"{name}-tls",
        **extra,
    }


def vault_ready(t: Tenant) -> None:
    """Wait for the tenant's KeyVault to be Ready: its probe (a GET of a certificate name, the
    same route as a look) is then out of the way of the counts."""

    def ready() -> bool:
        found = t.kube.custom.get_namespaced_custom_object(
            GROUP, VERSION, t.namespace, "keyvaults", "main"
        )
        return any(
            item.get("type") == "Ready" and item.get("status") == "True"
            for item in (found.get("status") or {}).get("conditions") or []
        )

    wait_for(ready, 30, "KeyVault main Ready")


def writes(t: Tenant) -> dict[str, int]:
    return {route: t.ops.count(route) for route in WRITES}


def test_an_existing_certificate_is_delivered_and_followed(both: Tenant) -> None:
    name = unique("legacy")
    made = made_in_vault(both, name)
    vault_ready(both)
    before = writes(both)  # the vault is the module's: other tests' requests count too
    meter = both.meter()
    both.kube.apply_certificate(name, existing_spec(name))
    body = both.kube.wait_condition(name, "Ready", "True", "Issued", timeout=30)
    costs = meter.stop(f"source Existing: first delivery ({both.vault.profile})")
    status = body["status"]
    assert status["certificate"]["x5t"] == made["x5t"]
    assert secret_x5t(both.kube, f"{name}-tls") == made["x5t"]
    assert "operation" not in status
    assert costs.kv(GET_CERTIFICATE) == 1
    assert costs.kv(GET_SECRET) == 1
    # The refresh schedule: 1h by default, up to 10 % later.
    anchor = parse_time(status["renewalTime"])
    assert anchor is not None
    ahead = anchor - both.lab.now()
    assert timedelta(minutes=58) <= ahead <= timedelta(minutes=67), ahead

    # An idle look: one GET certificate, no status write, no Secret touched.
    idle = both.meter()
    both.lab.advance_past(anchor, by=5)
    wait_for(lambda: idle.peek()[0].get(GET_CERTIFICATE) == 1, 20, "the look at refreshInterval")
    costs = idle.stop(f"source Existing: an idle look ({both.vault.profile})")
    assert costs.key_vault == {GET_CERTIFICATE: 1}
    assert costs.kubernetes == {}, "nothing changed: no status write, no Secret write"

    # A version made in Key Vault out of band is delivered at the next look.
    both.ops.ok("POST", f"/certificates/{name}/create", {})
    newer = wait_for(
        lambda: (found := both.ops.certificate(name)) and found["x5t"] != made["x5t"] and found,
        10,
        "the version made out of band",
    )
    follow = both.meter()
    both.lab.advance(3600)
    body = wait_delivered(both, name, status["certificate"]["version"])
    both.kube.wait_event(name, "Renewed")
    costs = follow.stop(f"source Existing: a new version at the next look ({both.vault.profile})")
    assert body["status"]["certificate"]["x5t"] == newer["x5t"]
    assert costs.kv(GET_CERTIFICATE) == 1
    assert costs.kv(GET_SECRET) == 1
    assert costs.k8s("update secrets") == 1
    assert costs.k8s("patch certificates/status") == 1
    assert body["status"]["renewalTime"] == status["renewalTime"], "the schedule does not drift"
    assert writes(both) == {**before, CREATES: before[CREATES] + 1}, "only the test's own create"


def test_what_cannot_be_delivered_is_reported_and_looked_at_again(tenant: Tenant) -> None:
    t = tenant
    whole = t.meter()
    # Not found: reported, and delivered once it exists (at the next look, not in a loop).
    missing = unique("missing")
    t.kube.apply_certificate(missing, existing_spec(missing, refreshInterval="10m"))
    body = t.kube.wait_condition(missing, "Ready", "False", "CertificateNotFound", timeout=30)
    assert missing in condition(body, "Ready")["message"]
    assert event_types(t.kube, missing, "CertificateNotFound") == ["Warning"]
    quiet = t.meter()
    quiet.quiet(3.0, "a request while CertificateNotFound waits for its next look")
    made_in_vault(t, missing)
    anchor = parse_time(body["status"]["renewalTime"])
    assert anchor is not None
    t.lab.advance_past(anchor, by=5)
    t.kube.wait_condition(missing, "Ready", "True", "Issued", timeout=30)

    # Disabled in Key Vault: reported; the Secret keeps serving the delivered version.
    delivered = secret_x5t(t.kube, f"{missing}-tls")
    assert delivered is not None
    t.ops.ok("PATCH", f"/certificates/{missing}/", {"attributes": {"enabled": False}})
    t.annotate(missing, {"kvcert.io/renew": "look-now"})  # a look now, not in 10 min
    body = t.kube.wait_condition(missing, "Ready", "False", "CertificateDisabled", timeout=30)
    assert "keeps serving" in condition(body, "Ready")["message"]
    assert secret_x5t(t.kube, f"{missing}-tls") == delivered

    # Only a pending version (issuer Unknown, never merged): not issued yet.
    pending = unique("pending")
    made_in_vault(t, pending, issuer="Unknown")
    t.kube.apply_certificate(pending, existing_spec(pending))
    t.kube.wait_condition(pending, "Ready", "False", "CertificateNotIssued", timeout=30)
    assert t.kube.secret(f"{pending}-tls") is None

    # A key that is not exportable: the certificate is delivered without tls.key, and said so.
    sealed = unique("sealed")
    made_in_vault(t, sealed, exportable=False)
    t.kube.apply_certificate(sealed, existing_spec(sealed))
    body = t.kube.wait_condition(sealed, "Ready", "False", "KeyNotExportable", timeout=30)
    assert "without tls.key" in condition(body, "Ready")["message"]
    secret = t.kube.secret(f"{sealed}-tls")
    assert secret is not None
    assert "tls.crt" in (secret.data or {})
    assert "tls.key" not in (secret.data or {})
    kv = whole.peek()[0]
    assert kv.get(CREATES) == 3, "only the test's own three creates"
    assert kv.get(PATCH_CERTIFICATE) == 1, "only the test's own disable"
    assert not any(kv.get(route) for route in (IMPORTS, MERGES, PATCH_POLICY, DELETES)), kv


def test_existing_turned_managed_is_refused_then_adopted_without_a_new_version(
    tenant: Tenant,
) -> None:
    t = tenant
    name = unique("adoptee")
    made = made_in_vault(t, name)
    t.kube.apply_certificate(name, existing_spec(name))
    t.kube.wait_condition(name, "Ready", "True", "Issued", timeout=30)
    policy = certificate_spec("main", f"{name}-tls", cn=f"{name}.example.com")["policy"]
    policy["lifetimeActions"] = [{"trigger": {"lifetimePercentage": 80}, "action": "AutoRenew"}]

    # Managed without adopt: the certificate is not kvcert's, nothing is written.
    creates = t.ops.count(CREATES)
    t.kube.patch_certificate(name, {"spec": {"source": "Managed", "policy": policy}})
    body = t.kube.wait_condition(name, "Stalled", "True", "NotOwned", timeout=30)
    assert "spec.adopt: true" in condition(body, "Ready")["message"]
    assert t.ops.count(CREATES) == creates
    assert t.ops.count(PATCH_POLICY) == 0

    # adopt: true: tagged, the policy applied, the current version kept, an Adopted event.
    adopt = t.meter()
    t.kube.patch_certificate(name, {"spec": {"adopt": True}})
    t.kube.wait_event(name, "Adopted")
    body = t.kube.wait_condition(name, "Ready", "True", "Issued", timeout=30)
    costs = adopt.stop("adopt: true on a certificate made outside kvcert")
    assert costs.kv(CREATES) == 0, "adoption creates no version"
    assert costs.kv(PATCH_POLICY) == 1
    assert costs.kv(PATCH_CERTIFICATE) == 1
    found = t.ops.certificate(name)
    assert found is not None
    assert found["x5t"] == made["x5t"]
    tags = found.get("tags") or {}
    assert tags.get("managed-by") == "kvcert"
    assert tags.get("kvcert-uid") == body["metadata"]["uid"]
    assert tags.get("kvcert-owner") == f"{t.namespace}/{name}"
    assert t.ops.ok("GET", f"/certificates/{name}/policy")["key_props"]["kty"] == "EC"
    message = next(e.message for e in t.kube.events(name) if e.reason == "Adopted")
    assert made["id"].rstrip("/").rsplit("/", 1)[-1] in message, "the event names the version"
    assert body["status"]["certificate"]["x5t"] == made["x5t"]
    assert body["status"]["operation"]["intent"]["trigger"] == "adopt"
    assert secret_x5t(t.kube, f"{name}-tls") == made["x5t"]

    # From here it is managed: kvcert.io/renew creates the next version.
    renew = t.meter()
    t.annotate(name, {"kvcert.io/renew": "1"})
    t.kube.wait_operation(name, lambda op: op.get("status") in ("inProgress", "completed"))
    t.advance(15)
    body = wait_delivered(t, name, body["status"]["certificate"]["version"])
    costs = renew.stop("kvcert.io/renew after an adoption")
    assert costs.kv(CREATES) == 1


def test_adopt_never_takes_another_certificates_certificate(tenant: Tenant) -> None:
    t = tenant
    name = unique("owned")
    issue(t, name)
    thief = unique("thief")
    patches = t.ops.count(PATCH_POLICY), t.ops.count(PATCH_CERTIFICATE)
    spec = certificate_spec("main", f"{thief}-tls", certificateName=name, adopt=True)
    t.kube.apply_certificate(thief, spec)
    body = t.kube.wait_condition(thief, "Stalled", "True", "NotOwned", timeout=30)
    assert f"Certificate {t.namespace}/{name}'s" in condition(body, "Ready")["message"]
    assert (t.ops.count(PATCH_POLICY), t.ops.count(PATCH_CERTIFICATE)) == patches
    found = t.ops.certificate(name) or {}
    assert (found.get("tags") or {}).get("kvcert-owner") == f"{t.namespace}/{name}"


def test_managed_turned_existing_is_released_and_nothing_is_deleted(tenant: Tenant) -> None:
    t = tenant
    name = unique("released")
    body = issue(t, name)
    version = body["status"]["certificate"]["version"]
    meter = t.meter()
    t.kube.patch_certificate(name, {"spec": {"source": "Existing", "policy": None}})
    t.kube.wait_event(name, "Released")
    body = wait_for(
        lambda: (b := t.kube.certificate(name)) and "operation" not in b["status"] and b,
        30,
        "status.operation forgotten",
    )
    assert condition(body, "Ready")["status"] == "True"
    assert body["status"]["certificate"]["version"] == version
    assert t.ops.certificate(name) is not None, "nothing is deleted in Key Vault"
    costs = meter.stop("Managed turned Existing")
    assert set(costs.key_vault) == {GET_CERTIFICATE}, "only a look: nothing written or deleted"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        pytest.param(
            {"policy": {"issuer": {"name": "Self"}}}, "policy is not allowed", id="policy"
        ),
        pytest.param({"tags": {"team": "a"}}, "tags is not allowed", id="tags"),
        pytest.param({"cancel": True}, "cancel: true is not allowed", id="cancel"),
        pytest.param(
            {"deletionPolicy": "Delete"}, "deletionPolicy other than Retain", id="deletionPolicy"
        ),
        pytest.param({"adopt": True}, "adopt: true is not allowed", id="adopt"),
        pytest.param({"renewBefore": "720h"}, "renewBefore is not allowed", id="renewBefore"),
    ],
)
def test_the_api_server_refuses_what_source_existing_cannot_do(
    tenant: Tenant, extra: dict[str, Any], words: str
) -> None:
    name = unique("refused")
    with pytest.raises(ApiException) as raised:
        tenant.kube.apply_certificate(name, existing_spec(name, **extra))
    assert raised.value.status == 422, raised.value.body
    assert words in str(raised.value.body)
    assert "set source: Managed" in str(raised.value.body)
