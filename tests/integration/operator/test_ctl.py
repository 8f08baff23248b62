"""The `kvcert` CLI for humans (issue #19 §1), driven as a subprocess (`python -m kvcert.cli`,
and the `kubectl-kvcert` script) against the real API server, the local vault and the operator:
status, csr, merge, renew, cancel, inspect secret, and its one-line errors and exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cluster
from tests.integration.operator.harness import (
    Kube,
    VaultOps,
    certificate_spec,
    secret_text,
    wait_for,
)
from tests.integration.operator.testca import TestCA, key_pair, pem_certs, pem_of

pytestmark = pytest.mark.one_profile("service")  # the CLI talks to Kubernetes, not the vault
KUBECTL_KVCERT = Path(sys.executable).parent / "kubectl-kvcert"


def ctl(
    cluster: Cluster,
    kube: Kube,
    *args: str,
    plugin: bool = False,
    kubeconfig: Path | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with the test's kubeconfig (or `kubeconfig`) and namespace; its output as
    text."""
    program = [str(KUBECTL_KVCERT)] if plugin else [sys.executable, "-m", "kvcert.cli"]
    where = ["--kubeconfig", str(kubeconfig or cluster.kubeconfig), "-n", kube.namespace]
    return subprocess.run(
        [*program, *args, *where], capture_output=True, text=True, timeout=timeout, check=False
    )


def _self_signed(kube: Kube, name: str) -> dict[str, Any]:
    kube.apply_certificate(name, certificate_spec("main", f"{name}-tls", cn=f"{name}.example.com"))
    return kube.wait_condition(name, "Ready", "True", "Issued")


def _manual(kube: Kube, name: str) -> dict[str, Any]:
    spec = certificate_spec(
        "main", f"{name}-tls", "Unknown", mergeFrom={"secretName": f"{name}-signed"}
    )
    kube.apply_certificate(name, spec)
    return kube.wait_condition(name, "Issuing", "True", "AwaitingMerge")


def test_status_tells_the_story_of_a_ready_certificate_in_text_and_json(
    cluster: Cluster, kube: Kube, keyvault: str
):
    body = _self_signed(kube, "web")
    delivered = body["status"]["certificate"]

    shown = ctl(cluster, kube, "status", "web")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Certificate {kube.namespace}/web"
    assert "  Issuer:      Self" in lines
    assert "  SANs:        DNS:web.example.com" in lines
    assert any(line.startswith("  Ready       True    Issued") for line in lines), shown.stdout
    assert "Pending operation: completed (issuer Self)" in lines
    assert f"Delivered version: {delivered['version']}" in lines
    assert f"  x5t:         {delivered['x5t']}" in lines
    assert "Secret web-tls: kubernetes.io/tls, keys ca.crt, tls.crt, tls.key" in lines
    assert "  Key matches leaf: yes" in lines
    assert any("Issued" in line for line in lines[lines.index("Events:") :])
    assert "PRIVATE KEY" not in shown.stdout

    data = ctl(cluster, kube, "status", "web", "--output", "json")
    assert data.returncode == 0, data.stderr
    facts = json.loads(data.stdout)
    assert facts["certificate"]["serialNumber"] == delivered["serialNumber"]
    assert facts["operation"]["requestId"] == body["status"]["operation"]["requestId"]
    assert facts["secret"]["leaf"]["x5t"] == delivered["x5t"]
    assert facts["secret"]["keyMatchesLeaf"] is True
    assert {c["type"]: c["reason"] for c in facts["conditions"]}["Ready"] == "Issued"
    assert "Issued" in [e["reason"] for e in facts["events"]]

    inspected = ctl(cluster, kube, "inspect", "secret", "web-tls", "-o", "json")
    assert inspected.returncode == 0, inspected.stderr
    secret = json.loads(inspected.stdout)
    assert secret["leaf"]["subject"] == "CN=web.example.com"
    assert secret["leaf"]["serialNumber"] == delivered["serialNumber"]
    assert (secret["certificate"], secret["keyMatchesLeaf"]) == ("web", True)
    text = ctl(cluster, kube, "inspect", "secret", "web-tls", plugin=True)
    assert text.returncode == 0, text.stderr
    assert "  Key matches leaf: yes" in text.stdout.splitlines()
    assert "PRIVATE KEY" not in text.stdout + inspected.stdout


def test_csr_and_merge_take_a_manual_certificate_to_ready(
    cluster: Cluster, kube: Kube, keyvault: str, tmp_path: Path
):
    _manual(kube, "manual")
    request = tmp_path / "req.pem"
    got = ctl(cluster, kube, "csr", "manual", "-o", str(request), plugin=True)
    assert got.returncode == 0, got.stderr
    assert "subject: CN=app.example.com" in got.stderr
    assert "SANs:    DNS:app.example.com" in got.stderr
    assert request.read_text() == kube.config_map("manual-csr").data["csr.pem"]  # type: ignore[union-attr]

    # A chain that is not for the CSR's key is refused locally: nothing is written.
    ca = TestCA.make()
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(ca.chain_pem(ca.sign(key_pair().public_key(), "app.example.com")))
    refused = ctl(cluster, kube, "merge", "manual", "--chain", str(wrong))
    assert refused.returncode == 4
    assert refused.stderr.strip().splitlines() == [
        f"kvcert: {wrong}: no certificate in the chain is for the CSR's public key (was another "
        "CSR signed?): nothing written"
    ]
    assert kube.secret("manual-signed") is None

    # The right chain, root first: merge orders it, writes it and waits for Ready.
    leaf = ca.sign_csr(request.read_text())
    signed = tmp_path / "signed.pem"
    signed.write_bytes(pem_of(ca.cert, leaf))
    merged = ctl(cluster, kube, "merge", "manual", "--chain", str(signed), "--timeout", "90")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    lines = merged.stdout.splitlines()
    assert lines[0].startswith(f"Secret {kube.namespace}/manual-signed created: 2 certificate")
    assert lines[-1] == f"Certificate {kube.namespace}/manual is Ready with the merged chain"
    assert any(line.startswith("  Ready=") for line in lines[1:-1])
    source = kube.secret("manual-signed")
    assert source is not None
    assert source.metadata.labels["kvcert.io/source"] == "true"
    assert pem_certs(secret_text(source, "tls.crt")) == [leaf, ca.cert]
    assert pem_certs(secret_text(kube.secret("manual-tls"), "tls.crt"))[0] == leaf  # type: ignore[arg-type]

    # Nothing is pending any more: csr and merge say so.
    none = ctl(cluster, kube, "csr", "manual")
    assert none.returncode == 4
    assert "has no pending CSR (operation: completed)" in none.stderr


def test_merge_reports_a_merge_key_vault_forbids_and_no_wait_returns_at_once(
    cluster: Cluster, kube: Kube, keyvault: str, vault_ops: VaultOps, tmp_path: Path
):
    """An issuer's request in progress: the chain is fine locally, Key Vault forbids it."""
    vault_ops.set_issuer("mydigicert", "DigiCert")
    spec = certificate_spec(
        "main", "early-tls", "mydigicert", mergeFrom={"secretName": "early-signed"}
    )
    kube.apply_certificate("early", spec)
    body = kube.wait_operation("early", lambda op: op.get("status") == "inProgress")
    ca = TestCA.make()
    signed = tmp_path / "signed.pem"
    signed.write_bytes(ca.chain_pem(ca.sign_csr(body["status"]["operation"]["csr"])))

    started = time.monotonic()
    quick = ctl(cluster, kube, "merge", "early", "--chain", str(signed), "--no-wait")
    assert quick.returncode == 0, quick.stderr
    assert quick.stdout.startswith(f"Secret {kube.namespace}/early-signed created")
    assert quick.stdout.count("\n") == 1  # no progress line: it did not wait
    assert time.monotonic() - started < 30

    waited = ctl(cluster, kube, "merge", "early", "--chain", str(signed), "--timeout", "60")
    assert waited.returncode == 1, waited.stdout + waited.stderr
    assert waited.stdout.startswith(f"Secret {kube.namespace}/early-signed updated")
    assert waited.stderr.startswith("kvcert: Key Vault refused the merge (Forbidden")
    assert waited.stderr.rstrip().endswith("see kvcert status early")
    assert kube.condition("early", "Ready")["reason"] == "MergeForbidden"  # type: ignore[index]


def test_renew_asks_for_one_renewal_and_a_new_version_is_delivered(
    cluster: Cluster, kube: Kube, keyvault: str
):
    before = _self_signed(kube, "again")["status"]["certificate"]["version"]
    done = ctl(cluster, kube, "renew", "again")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Certificate {kube.namespace}/again: asked for one renewal")
    value = done.stdout.split("kvcert.io/renew=")[1].rstrip(")\n")
    annotations = kube.certificate("again")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["kvcert.io/renew"] == value

    def renewed() -> dict[str, Any] | None:
        body = kube.certificate("again") or {}
        version = ((body.get("status") or {}).get("certificate") or {}).get("version")
        return body if version and version != before else None

    wait_for(renewed, 60, "a new version of again")
    kube.wait_condition("again", "Ready", "True", "Issued")


def test_cancel_sets_spec_cancel_and_the_pending_operation_is_cancelled(
    cluster: Cluster, kube: Kube, keyvault: str
):
    _manual(kube, "stop")
    done = ctl(cluster, kube, "cancel", "stop")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"Certificate {kube.namespace}/stop: set spec.cancel: true (pending operation: "
        "inProgress)\n"
    )
    assert kube.certificate("stop")["spec"]["cancel"] is True  # type: ignore[index]
    kube.wait_operation("stop", lambda op: op.get("status") == "cancelled", timeout=45)

    # Nothing in progress any more: a second cancel writes nothing; renew and retry are refused
    # while spec.cancel is true (no new request would be made), naming the fix.
    again = ctl(cluster, kube, "cancel", "stop")
    assert (again.returncode, again.stdout) == (4, "")
    assert "nothing is in progress (pending operation: cancelled)" in again.stderr
    for command in ("renew", "retry"):
        refused = ctl(cluster, kube, command, "stop")
        assert refused.returncode == 4, refused.stderr
        assert "spec.cancel: true" in refused.stderr
        assert '{"spec":{"cancel":false}}' in refused.stderr
    annotations = kube.certificate("stop")["metadata"].get("annotations") or {}  # type: ignore[index]
    assert not {"kvcert.io/renew", "kvcert.io/retry"} & set(annotations)


def test_retry_after_a_failed_operation_starts_a_new_one(
    cluster: Cluster, kube: Kube, keyvault: str, vault_ops: VaultOps
):
    first = _manual(kube, "redo")["status"]["operation"]["requestId"]
    vault_ops.fail("redo", "Rejected", "Organization not validated.")
    kube.wait_operation("redo", lambda op: op.get("status") == "failed", timeout=45)

    done = ctl(cluster, kube, "retry", "redo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Certificate {kube.namespace}/redo: asked for one retry")
    assert "kvcert.io/retry=" in done.stdout
    kube.wait_operation(
        "redo",
        lambda op: op.get("status") == "inProgress" and op.get("requestId") != first,
        timeout=45,
    )


def test_errors_are_one_line_with_the_fix_and_a_documented_exit_code(
    cluster: Cluster, kube: Kube, crds: None, tmp_path: Path
):
    missing = ctl(cluster, kube, "status", "nope")
    assert missing.returncode == 3
    assert missing.stderr == (
        f"kvcert: Certificate nope not found in namespace {kube.namespace}: check the name and -n\n"
    )
    assert missing.stdout == ""
    secret = ctl(cluster, kube, "inspect", "secret", "nope", plugin=True)
    assert (secret.returncode, secret.stderr.count("\n")) == (3, 1)
    assert f"Secret nope not found in namespace {kube.namespace}" in secret.stderr

    no_file = ctl(cluster, kube, "merge", "nope", "--chain", str(tmp_path / "absent.pem"))
    assert no_file.returncode == 3
    assert "check --chain" in no_file.stderr

    usage = ctl(cluster, kube, "merge", "nope")
    assert usage.returncode == 2
    assert "--chain" in usage.stderr

    absent = ctl(cluster, kube, "status", "nope", kubeconfig=tmp_path / "none")
    assert absent.returncode == 2  # a kubeconfig that cannot be loaded is the user's to fix
    assert "check --kubeconfig, KUBECONFIG and --context" in absent.stderr


def test_context_chooses_the_cluster_and_its_namespace_from_the_kubeconfig(
    cluster: Cluster, kube: Kube, keyvault: str, tmp_path: Path
):
    """`--context` picks a context of the user's kubeconfig and, without -n, its namespace; the
    current context is used otherwise (here one whose server does not answer: exit 5)."""
    _self_signed(kube, "ctx-web")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    real = config["contexts"][0]
    config["contexts"] = [
        {"name": "real", "context": {**real["context"], "namespace": kube.namespace}},
        {"name": "away", "context": {**real["context"], "cluster": "away"}},
    ]
    server = config["clusters"][0]["cluster"]
    config["clusters"].append(
        {"name": "away", "cluster": {**server, "server": f"https://127.0.0.1:{_free_port()}"}}
    )
    config["current-context"] = "away"
    kubeconfig = tmp_path / "two-contexts.yaml"
    kubeconfig.write_text(yaml.safe_dump(config))
    where = ["--kubeconfig", str(kubeconfig)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)

    python = [sys.executable, "-m", "kvcert.cli"]
    chosen = run(*python, "status", "ctx-web", *where, "--context", "real", "-o", "json")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["namespace"] == kube.namespace
    # As a kubectl plugin the connection flags may come first, as in `kubectl kvcert -n ns ...`.
    plugin = run(
        str(KUBECTL_KVCERT), *where, "--context", "real", "status", "ctx-web", "-o", "json"
    )
    assert plugin.returncode == 0, plugin.stderr
    assert json.loads(plugin.stdout)["name"] == "ctx-web"

    # `kvcert` takes them before the command too; the current context's server is away.
    current = run(*python, "-n", kube.namespace, *where, "status", "ctx-web")
    assert current.returncode == 5
    assert current.stderr.count("\n") == 1
    assert "--context" in current.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_requests_on_an_existing_certificate_say_what_they_do_or_are_refused_locally(
    cluster: Cluster, kube: Kube, keyvault: str, vault_ops: VaultOps, tmp_path: Path
):
    """source: Existing (issue #19 §3): renew asks for a look at Key Vault, cancel and retry
    are refused before anything is written (exit 4), status shows the source."""
    name = f"legacy-{time.time_ns() % 10**8}"
    policy = {
        "x509_props": {"subject": f"CN={name}.example.com"},
        "issuer": {"name": "Self"},
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": "application/x-pem-file"},
    }
    vault_ops.ok("POST", f"/certificates/{name}/create", {"policy": policy})
    spec = {"source": "Existing", "vaultRef": {"name": keyvault}, "secretName": f"{name}-tls"}
    kube.apply_certificate(name, spec)
    kube.wait_condition(name, "Ready", "True", "Issued")

    shown = ctl(cluster, kube, "status", name)
    assert shown.returncode == 0, shown.stderr
    assert "Source:      Existing (kvcert only delivers; looks every 1h)" in shown.stdout

    renew = ctl(cluster, kube, "renew", name)
    assert renew.returncode == 0, renew.stderr
    assert "asked for a look at Key Vault now" in renew.stdout
    chain = tmp_path / "chain.pem"
    chain.write_text("not used")
    for command in (["cancel"], ["retry"], ["merge", "--chain", str(chain)], ["csr"]):
        refused = ctl(cluster, kube, command[0], name, *command[1:])
        assert refused.returncode == 4, refused.stderr
        assert refused.stderr.count("\n") == 1
        assert "source: Existing" in refused.stderr
    body = kube.certificate(name)
    assert body is not None
    assert body["spec"].get("cancel") is not True
    assert "kvcert.io/retry" not in (body["metadata"].get("annotations") or {})


def test_merge_csr_and_inspect_refuse_what_they_cannot_do(
    cluster: Cluster, kube: Kube, keyvault: str, tmp_path: Path
):
    """A Self certificate has no CSR to sign (exit 4, saying why); a Secret without a
    certificate fails inspection (exit 1); an unknown command-line placement is refused."""
    _self_signed(kube, "selfish")
    csr = ctl(cluster, kube, "csr", "selfish")
    assert csr.returncode == 4, csr.stderr
    assert "issuer Self: Key Vault signs it itself, there is no CSR to sign" in csr.stderr
    kube.put_secret("plain", {"password": b"not a certificate"})
    plain = ctl(cluster, kube, "inspect", "secret", "plain")
    assert plain.returncode == 1, plain.stdout
    assert "no tls.crt" in plain.stdout
    before = [sys.executable, "-m", "kvcert.cli", "-n", kube.namespace]
    misplaced = subprocess.run(
        [*before, "operator", "run", "--kubeconfig", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert misplaced.returncode == 2
    assert "--namespace before the command is for status" in misplaced.stderr
