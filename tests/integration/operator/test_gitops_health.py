"""Live Certificates read the way GitOps tools read them: Argo CD's health.lua (a real Lua
5.1, deploy/argocd/resource_customizations/kvcert.io) and Flux's kstatus (hack/kstatus), in
the states the committed testdata copies: Ready (Self), AwaitingMerge (manual), Issuing
(DigiCert in progress), OperationFailed (the simulated CA's `fail`). Nothing is written to the
repository: with KVCERT_GITOPS_DUMP=<dir> the live objects are written there (trimmed), to
refresh deploy/argocd/resource_customizations/kvcert.io/*/testdata by hand. Also: the
operator's log has one line per transition, none per watch event."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator.harness import GROUP, VERSION, Kube, VaultOps, certificate_spec
from tests.support.gitops import argo_health, kstatus, kstatus_binary
from tests.support.operator_process import OperatorProcess

pytestmark = pytest.mark.one_profile("documented")
ISSUER = "mydigicert"


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}


def dump(name: str, body: dict[str, Any]) -> None:
    """Write `body` without server bookkeeping to $KVCERT_GITOPS_DUMP/<name>.yaml, if set."""
    folder = os.environ.get("KVCERT_GITOPS_DUMP")
    if not folder:
        return
    meta = body["metadata"]
    trimmed = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": {k: meta[k] for k in ("name", "namespace", "generation") if k in meta},
        "spec": body.get("spec"),
        "status": body.get("status"),
    }
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.yaml").write_text(yaml.safe_dump(trimmed, sort_keys=False))


def flux(body: dict[str, Any]) -> str | None:
    """kstatus' status, or None when hack/kstatus.sh cannot build it here."""
    return kstatus(body)[0] if kstatus_binary() is not None else None


def test_live_certificates_read_as_argo_cd_and_flux_expect(
    kube: Kube, keyvault: str, vault_ops: VaultOps, operator: OperatorProcess
) -> None:
    vault_ops.set_issuer(ISSUER, "DigiCert")
    manual = {"mergeFrom": {"secretName": "g-manual-signed"}}
    kube.apply_certificate("g-self", certificate_spec(keyvault, "g-self-tls"))
    kube.apply_certificate(
        "g-manual", certificate_spec(keyvault, "g-manual-tls", "Unknown", **manual)
    )
    kube.apply_certificate("g-issuing", certificate_spec(keyvault, "g-issuing-tls", ISSUER))
    kube.apply_certificate("g-failed", certificate_spec(keyvault, "g-failed-tls", ISSUER))

    body = kube.wait_condition("g-self", "Ready", "True", "Issued")
    dump("healthy_self", body)
    assert argo_health("Certificate", body) == ("Healthy", conditions(body)["Ready"]["message"])
    assert flux(body) in ("Current", None)

    body = kube.wait_condition("g-manual", "Issuing", "True", "AwaitingMerge")
    dump("suspended_awaiting_merge", body)
    status, message = argo_health("Certificate", body)
    assert status == "Suspended"
    assert "g-manual-csr" in message
    assert flux(body) in ("InProgress", None)

    body = kube.wait_condition("g-issuing", "Issuing", "True", "Issuing")
    dump("progressing_issuing", body)
    assert argo_health("Certificate", body) == (
        "Progressing",
        conditions(body)["Issuing"]["message"],
    )
    assert flux(body) in ("InProgress", None)
    reconciling, issuing = conditions(body)["Reconciling"], conditions(body)["Issuing"]
    assert (reconciling["status"], reconciling["reason"], reconciling["message"]) == (
        issuing["status"],
        issuing["reason"],
        issuing["message"],
    )

    kube.wait_condition("g-failed", "Issuing", "True", "Issuing")
    vault_ops.fail("g-failed", "CertificateRequestRejected", "the CA said no")
    body = kube.wait_condition("g-failed", "Stalled", "True", "OperationFailed", timeout=60)
    dump("degraded_operation_failed", body)
    status, message = argo_health("Certificate", body)
    assert status == "Degraded"
    assert "the CA said no" in message
    assert flux(body) in ("Failed", None)
    assert conditions(body)["Reconciling"]["status"] == "False"

    vault = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", keyvault
    )
    dump("keyvault_healthy", vault)
    assert argo_health("KeyVault", vault)[0] == "Healthy"
    assert flux(vault) in ("Current", None)

    # The log: Events as INFO lines with namespace/name, reason and request id; kopf's
    # "Handler ... succeeded." once per watch event never at INFO (DEBUG with -v, as here).
    log = operator.log(tail=50_000_000)
    namespace = re.escape(kube.namespace)
    where = f"{namespace}/g-issuing"
    assert re.search(
        rf" INFO kvcert\.events: Certificate {where}: Created: .*\(request [0-9a-f]{{32}}\)", log
    )
    assert re.search(
        rf" WARNING kvcert\.events: Certificate {namespace}/g-failed: OperationFailed: ",
        log,
    )
    assert not re.search(r" INFO kopf\.objects: .*Handler '\w+' succeeded", log)
