"""What happens in Key Vault behind kvcert's back (issue #15 §5): a pending operation deleted,
a version made outside kvcert, the certificate deleted. Each is seen at kvcert's next look (a
poll, or status.renewalTime with spec.refreshInterval), reported once, and never answered by a
create of its own: only the kvcert.io/retry annotation asks for one.

The pending-operation test runs under both vault profiles: the state words of a pending
operation differ between them (DESIGN §3.2). The others only read certificates, which do not
differ, and run under `documented`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.integration.operator.harness import (
    CREATES,
    PENDING_READS,
    certificate_spec,
    wait_for,
)
from tests.integration.operator.meter import QUIET
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
    wait_handled,
)
from tests.support.operator_process import OperatorProcess

pytestmark = external_cluster
ISSUER = "mydigicert"
RETRY = "kvcert.io/retry"
PROFILES = ("documented", "service")
GET_CERTIFICATE = "GET /certificates/{name}/"


lab, operator, tenant = lab_fixtures("lifecycle-outofband", PROFILES)


@pytest.fixture(params=PROFILES)
def both(request: pytest.FixtureRequest, lab: Lab, operator: OperatorProcess) -> Iterator[Tenant]:
    """A tenant on each profile's vault."""
    with open_tenant(lab, request.param) as here:
        yield here


def test_a_pending_operation_deleted_in_key_vault_is_reported_and_not_recreated(both: Tenant):
    both.ops.set_issuer(ISSUER, "DigiCert")
    both.kube.apply_certificate("vanish", certificate_spec("main", "vanish-tls", ISSUER))
    body = both.kube.wait_operation("vanish", lambda op: op.get("status") == "inProgress")
    first = body["status"]["operation"]["requestId"]
    both.meter().settle()

    both.ops.delete_pending("vanish")
    meter = both.meter()
    both.advance(30)  # the next poll of the operation is due
    body = both.kube.wait_condition("vanish", "Stalled", "True", "OperationDeleted", timeout=30)
    costs = meter.stop(f"pending operation deleted in Key Vault ({both.vault.profile})")
    op = body["status"]["operation"]
    assert (op["status"], op["requestId"]) == ("deleted", first)
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "OperationDeleted")
    assert RETRY in ready["message"]
    assert condition(body, "Issuing")["status"] == "False"
    assert event_types(both.kube, "vanish", "OperationDeleted") == ["Warning"]
    assert costs.kv(CREATES) == 0, "a deleted operation is not created anew by itself"
    assert costs.kv(PENDING_READS) >= 1
    row = both.printer_row("vanish")
    assert (row["Ready"], row["Status"]) == ("False", "deleted")

    # Stalled: no request at all, even when the CA's time has long passed.
    quiet = both.meter()
    quiet.quiet(QUIET, "a request after OperationDeleted")
    both.advance(3600)
    quiet.quiet(2.0, "a request after OperationDeleted, an hour later")
    costs = quiet.stop("stalled on OperationDeleted: 5 s, then an hour later", settle=False)
    assert costs.key_vault == {}
    assert costs.kubernetes == {}
    assert both.ops.pending("vanish") is None

    # kvcert.io/retry asks for one new create.
    retry = both.meter()
    both.kube.patch_certificate("vanish", {"metadata": {"annotations": {RETRY: "1"}}})
    wait_handled(both, "vanish", "retry", "1")
    body = both.kube.wait_operation(
        "vanish", lambda op: op.get("status") == "inProgress" and op.get("requestId") != first
    )
    costs = retry.stop(f"kvcert.io/retry after OperationDeleted ({both.vault.profile})")
    assert costs.kv(CREATES) == 1
    assert body["status"]["operation"]["intent"]["trigger"] == "retry"
    assert condition(body, "Stalled")["status"] == "False"
    pending = both.ops.pending("vanish")
    assert pending is not None
    assert pending["request_id"] == body["status"]["operation"]["requestId"]


def test_a_version_made_outside_kvcert_is_delivered_at_the_next_look(tenant: Tenant):
    body = issue(tenant, "outside", refreshInterval="1h")
    old = body["status"]["certificate"]
    renewal = parse_time(body["status"]["renewalTime"])
    assert renewal is not None
    ahead = (renewal - tenant.lab.now()).total_seconds()
    assert 3600 - 120 <= ahead <= 3600, f"renewalTime {renewal} is not refreshInterval (1h) away"

    # Someone creates a new version with the certificate's own policy (az certificate create).
    tenant.ops.ok("POST", "/certificates/outside/create", {})
    wait_for(
        lambda: (tenant.ops.certificate("outside") or {}).get("x5t") not in (None, old["x5t"]),
        10,
        "the version made outside kvcert",
    )
    theirs = tenant.ops.certificate("outside")
    assert theirs is not None

    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = wait_delivered(tenant, "outside", old["version"])
    tenant.kube.wait_event("outside", "Renewed")
    costs = meter.stop("a version made outside kvcert, picked up at refreshInterval")
    assert body["status"]["certificate"]["x5t"] == theirs["x5t"]
    assert costs.kv(CREATES) == 0, "kvcert creates nothing: it delivers what it found"
    assert costs.kv(GET_CERTIFICATE) == 1
    assert costs.k8s("update secrets") == 1, "one Secret write"
    assert condition(body, "Ready")["reason"] == "Issued"
    renewal = parse_time(body["status"]["renewalTime"])
    assert renewal is not None
    assert timedelta(minutes=58) <= renewal - tenant.lab.now() <= timedelta(hours=1)


def test_a_certificate_deleted_in_key_vault_is_reported_and_not_recreated(tenant: Tenant):
    body = issue(tenant, "gone", refreshInterval="1h")
    old = body["status"]["certificate"]
    renewal = parse_time(body["status"]["renewalTime"])
    assert renewal is not None
    tenant.ops.ok("DELETE", "/certificates/gone")

    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = tenant.kube.wait_condition("gone", "Ready", "False", "CertificateDeleted", timeout=30)
    costs = meter.stop("certificate deleted in Key Vault, seen at refreshInterval")
    assert condition(body, "Stalled")["status"] == "True"
    assert RETRY in condition(body, "Ready")["message"]
    assert event_types(tenant.kube, "gone", "CertificateDeleted") == ["Warning"]
    assert costs.kv(GET_CERTIFICATE) == 1
    assert costs.kv(CREATES) == 0, "a deleted certificate is not recreated by itself"
    assert costs.k8s("update secrets") == 0
    assert secret_x5t(tenant.kube, "gone-tls") == old["x5t"], "the Secret keeps the last version"
    assert tenant.printer_row("gone")["Ready"] == "False"

    quiet = tenant.meter()
    quiet.quiet(QUIET, "a request after CertificateDeleted")
    assert tenant.ops.certificate("gone") is None

    # kvcert.io/retry: the name is soft-deleted, which is reported; purged, a retry creates.
    retry = tenant.meter()
    tenant.kube.patch_certificate("gone", {"metadata": {"annotations": {RETRY: "1"}}})
    wait_handled(tenant, "gone", "retry", "1")
    body = tenant.kube.wait_condition("gone", "Stalled", "True", "NameSoftDeleted", timeout=30)
    costs = retry.stop("kvcert.io/retry after CertificateDeleted: the name is soft-deleted")
    assert costs.kv(CREATES) == 1, "one create, refused: the name is soft-deleted"
    assert condition(body, "Ready")["reason"] == "NameSoftDeleted"
    assert tenant.ops.deleted("gone") is not None
    tenant.ops.ok("DELETE", "/deletedcertificates/gone")

    retry = tenant.meter()
    tenant.kube.patch_certificate("gone", {"metadata": {"annotations": {RETRY: "2"}}})
    wait_handled(tenant, "gone", "retry", "2")
    tenant.advance(15)  # the poll after the create is due
    body = wait_delivered(tenant, "gone", old["version"])
    costs = retry.stop("kvcert.io/retry after the soft-deleted name was purged")
    assert costs.kv(CREATES) == 1
    assert costs.k8s("update secrets") == 1
    assert condition(body, "Ready")["reason"] == "Issued"
    assert condition(body, "Stalled")["status"] == "False"
