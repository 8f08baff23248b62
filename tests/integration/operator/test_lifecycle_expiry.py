"""Time running out (issue #15 §1): a certificate nobody renews (its policy's only lifetime
action is EmailContacts, and it has no renewBefore) has no renewalTime, costs nothing while it
is valid, and turns Ready False reason Expired at notAfter, once, with a Warning event.

Runs under the `documented` profile only: expiry does not differ between the vault's profiles.
"""

from __future__ import annotations

from tests.integration.operator.meter import QUIET
from tests.integration.operator.timetravel import (
    Tenant,
    condition,
    event_types,
    external_cluster,
    issue,
    lab_fixtures,
    parse_time,
    secret_x5t,
)

pytestmark = external_cluster
EMAIL_ONLY = [{"trigger": {"daysBeforeExpiry": 7}, "action": "EmailContacts"}]


lab, operator, tenant = lab_fixtures("lifecycle-expiry", ("documented",))


def test_a_certificate_nobody_renews_expires_at_not_after(tenant: Tenant):
    body = issue(tenant, "ending", policy={"validityMonths": 1, "lifetimeActions": EMAIL_ONLY})
    status = body["status"]
    not_after = parse_time(status["certificate"]["notAfter"])
    not_before = parse_time(status["certificate"]["notBefore"])
    assert not_after is not None
    assert not_before is not None
    assert (not_after - not_before).days <= 31, "validityMonths 1"
    assert status.get("renewalTime") is None, "nothing renews it: no next look"
    row = tenant.printer_row("ending")
    assert (row["Ready"], row["Expires"], row["Renewal"]) == (
        "True",
        status["certificate"]["notAfter"],
        None,
    )

    idle = tenant.meter()
    idle.quiet(QUIET, "a request by a valid certificate nobody renews")
    tenant.advance((not_after - tenant.lab.now()).total_seconds() / 2)
    idle.quiet(2.0, "a request half way to notAfter")
    costs = idle.stop("valid, nothing renews it: 5 s, then half its life", settle=False)
    assert costs.key_vault == {}
    assert costs.kubernetes == {}

    meter = tenant.meter()
    tenant.lab.advance_past(not_after)
    body = tenant.kube.wait_condition("ending", "Ready", "False", "Expired", timeout=30)
    tenant.kube.wait_event("ending", "Expired")
    costs = meter.stop("notAfter passed: Expired")
    assert costs.lifetime_actions == {"EmailContacts": 1}, "Key Vault e-mailed its contacts"
    assert costs.key_vault == {}, "expiry is known from status: no Key Vault request"
    assert costs.kubernetes == {"patch certificates/status": 1, "create events": 1}
    assert event_types(tenant.kube, "ending", "Expired") == ["Warning"]
    assert condition(body, "Issuing")["status"] == "False"
    assert status["certificate"]["version"] in condition(body, "Ready")["message"]
    row = tenant.printer_row("ending")
    assert (row["Ready"], row["Status"], row["Expires"]) == (
        "False",
        "completed",
        status["certificate"]["notAfter"],
    )
    assert secret_x5t(tenant.kube, "ending-tls") == status["certificate"]["x5t"]
    notes = tenant.vault.notifications("ending")
    assert [n["action"] for n in notes] == ["EmailContacts"]
    assert notes[0]["version"] == status["certificate"]["version"]

    after = tenant.meter()
    after.quiet(QUIET, "a request after Expired")
    tenant.advance(86400)
    after.quiet(2.0, "a request a day after Expired")
    assert after.stop("expired: 5 s, then a day later", settle=False).key_vault == {}
    assert tenant.kube.event_reasons("ending").count("Expired") == 1
