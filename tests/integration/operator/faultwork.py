"""The workload and the measurements of test_vault_faults (issue #18 §2): the Certificates of
mixed kinds, one run of them through a FaultProxy, and what its records prove (one create or
import per certificate, Retry-After kept)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from kvcert.keyvault import RetryPolicy
from tests.integration.operator.faultproxy import VERSION_SEGMENT, FaultProxy, Record
from tests.integration.operator.harness import GROUP, VERSION, Kube, VaultOps, wait_for
from tests.integration.operator.testca import TestCA, key_pair, key_pem, pfx
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

PATTERN = (
    *("ec-pem",) * 7,
    *("ec384-pfx",) * 2,
    *("rsa-formats",) * 4,
    *("rsa-private",) * 2,
    *("rsa-p12",) * 2,
    "import-pfx",
    "import-pem",
    "manual",
)
"""Kinds by index, repeating: Self EC P-256 PEM; Self EC P-384 PKCS#12; Self RSA 2048 PEM with
CombinedPEM and DER outputs; Self RSA 2048 not exportable; Self RSA 3072 with a PKCS12 output;
importFrom a PFX, a PEM pair; manual (issuer Unknown, the test signs its CSR into mergeFrom)."""
PASSWORD = b"keystore-pass"
SLACK = 0.05
"""Seconds a request may come before a Retry-After ends (clock granularity, not leniency)."""
IN_CALL = RetryPolicy().max_delay
"""The longest Retry-After the Key Vault client waits in the call (longer: the scheduler)."""
SETTLE = 2.0
"""Seconds with no Key Vault request after which a run's trailing work is over."""


# --- the workload ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """The Certificates (name -> kind), the import sources and the CA that signs manual CSRs:
    made once, applied identically in both runs."""

    kinds: dict[str, str]
    sources: dict[str, tuple[dict[str, bytes], str]]
    ca: TestCA

    @classmethod
    def make(cls, count: int) -> Workload:
        ca = TestCA.make()
        kinds = {
            f"c{i:03d}-{PATTERN[i % len(PATTERN)]}": PATTERN[i % len(PATTERN)] for i in range(count)
        }
        sources: dict[str, tuple[dict[str, bytes], str]] = {}
        for name, kind in kinds.items():
            if kind.startswith("import"):
                key = key_pair()
                cert = ca.sign(key.public_key(), f"{name}.example.com")
                sources[name] = (
                    ({"tls.pfx": pfx(key, cert, ca)}, "Opaque")
                    if kind == "import-pfx"
                    else (
                        {"tls.crt": ca.chain_pem(cert), "tls.key": key_pem(key)},
                        "kubernetes.io/tls",
                    )
                )
        return cls(kinds, sources, ca)

    def spec(self, name: str) -> dict[str, Any]:
        kind = self.kinds[name]
        base: dict[str, Any] = {"vaultRef": {"name": "main"}, "secretName": f"{name}-tls"}
        if kind.startswith("import"):
            return {**base, "importFrom": {"secretName": f"{name}-source"}}
        key: dict[str, Any] = {"type": "EC", "curve": "P-256"}
        content, issuer = "application/x-pem-file", "Self"
        if kind == "ec384-pfx":
            key, content = {"type": "EC", "curve": "P-384"}, "application/x-pkcs12"
        elif kind.startswith("rsa"):
            key = {"type": "RSA", "size": 3072 if kind == "rsa-p12" else 2048}
            key["exportable"] = kind != "rsa-private"
        elif kind == "manual":
            issuer = "Unknown"
            base["mergeFrom"] = {"secretName": f"{name}-signed"}
        if kind == "rsa-formats":
            base["additionalOutputFormats"] = [{"type": "CombinedPEM"}, {"type": "DER"}]
        if kind == "rsa-p12":
            ref = {"name": "p12-pass", "key": "password"}
            base["additionalOutputFormats"] = [{"type": "PKCS12", "passwordSecretRef": ref}]
        policy = {
            "issuer": {"name": issuer},
            "subject": f"CN={name}.example.com",
            "dnsNames": [f"{name}.example.com"],
            "validityMonths": 12,
            "key": key,
            "contentType": content,
        }
        return {**base, "policy": policy}


def vault_probed(kube: Kube, name: str) -> bool:
    """Whether the KeyVault's status has its Ready condition (True or not)."""
    found = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, "keyvaults", name
    )
    conditions = (found.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" for c in conditions)


def put_source(kube: Kube, name: str, data: dict[str, bytes], kind: str = "Opaque") -> None:
    """A Secret labelled kvcert.io/source: the operator watches it (no polling)."""
    kube.put_secret(name, data, kind)
    kube.core.patch_namespaced_secret(
        name, kube.namespace, {"metadata": {"labels": {"kvcert.io/source": "true"}}}
    )


# --- one run -------------------------------------------------------------------------------------
@dataclass
class Run:
    """One pass of the workload: its namespace, vault, proxy and what was measured."""

    label: str
    kube: Kube
    vault: LocalVault
    proxy: FaultProxy
    started: float = 0.0
    ready_at: float = 0.0
    signed: dict[str, float] = field(default_factory=dict)
    """Manual Certificates whose mergeFrom Secret the test wrote, and when (monotonic)."""
    ready: dict[str, float] = field(default_factory=dict)

    def apply(self, work: Workload) -> None:
        self.kube.put_secret("vault-token", {"token": self.vault.token.encode()})
        self.kube.put_secret("p12-pass", {"password": PASSWORD})
        for name, (data, kind) in work.sources.items():
            put_source(self.kube, f"{name}-source", data, kind)
        self.kube.keyvault("main", self.proxy.url, "vault-token", self.vault.ca_path.read_text())
        # Its readiness is written to its status once, whatever the probe met: Certificates
        # start after it, so that both runs start alike (that write once replaced the vault's
        # client under their first calls: test_vault_faults, the KeyVault edit test).
        wait_for(lambda: vault_probed(self.kube, "main"), 60, "the KeyVault probed")
        self.started = time.monotonic()
        for name in work.kinds:
            self.kube.apply_certificate(name, work.spec(name))

    def sign_manual(self, work: Workload) -> None:
        """Sign each manual Certificate's CSR once its ConfigMap is published."""
        for name, kind in work.kinds.items():
            if kind != "manual" or name in self.signed:
                continue
            published = self.kube.config_map(f"{name}-csr")
            if published is not None and (published.data or {}).get("csr.pem"):
                leaf = work.ca.sign_csr(published.data["csr.pem"])
                put_source(self.kube, f"{name}-signed", {"tls.crt": work.ca.chain_pem(leaf)})
                self.signed[name] = time.monotonic()

    def not_ready(self) -> dict[str, Any]:
        """Certificates not Ready=True/Issued: name -> their Ready condition (or status)."""
        listed = self.kube.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.kube.namespace, "certificates"
        )
        left = {}
        for item in listed.get("items", []):
            status = item.get("status") or {}
            ready = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
            )
            if not ready or (ready.get("status"), ready.get("reason")) != ("True", "Issued"):
                left[item["metadata"]["name"]] = ready or status
        return left

    def wait_ready(self, work: Workload, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left: dict[str, Any] = dict.fromkeys(work.kinds)
        while time.monotonic() < deadline:
            self.sign_manual(work)
            left = self.not_ready()
            now = time.monotonic() - self.started
            for name in work.kinds:
                if name not in left:
                    self.ready.setdefault(name, now)
            if not left:
                self.ready_at = time.monotonic()
                return
            time.sleep(0.5)  # poll interval while waiting for a condition
        sample = dict(list(left.items())[:5])
        pytest.fail(f"{self.label}: {len(left)} Certificates stuck after {timeout} s: {sample}")

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the proxy has seen no request for SETTLE s (trailing work is over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.proxy.records()
            last = max((r.done for r in records), default=0.0)
            if time.monotonic() - last >= SETTLE:
                return
            time.sleep(0.2)
        pytest.fail(f"{self.label}: Key Vault requests did not stop within {timeout} s")

    @property
    def seconds(self) -> float:
        return round(self.ready_at - self.started, 1)


def writes_reaching_vault(
    records: list[Record], ends: tuple[str, ...] = ("/create", "/import")
) -> Counter[str]:
    """POSTs whose path ends with one of `ends` (creates and imports by default, or merges:
    "/pending/merge") that the vault received, acted on or not, by certificate; the bodiless
    challenge probes (no token, answered 401) are not counted."""
    return Counter(
        r.certificate or "?"
        for r in records
        if r.method == "POST" and r.path.endswith(ends) and r.upstream and r.authorized
    )


def retry_after_kept(
    records: list[Record],
) -> tuple[list[str], Counter[str]]:
    """Requests about a certificate that came before the Retry-After of a 429 about it asked
    for (each described), and how many 429s were checked so: "in the call" (Retry-After within
    RetryPolicy's max_delay: the client waits) or "by the scheduler" (longer: handed back),
    whatever started the later round (a source Secret's change waits too: Rounds.hold)."""
    early: list[str] = []
    checked: Counter[str] = Counter()
    by_cert: dict[str, list[Record]] = {}
    for record in sorted(records, key=lambda r: r.at):
        if record.certificate:
            by_cert.setdefault(record.certificate, []).append(record)
    for name, seen in by_cert.items():
        for i, throttled in enumerate(seen):
            if throttled.fault != "throttle" or throttled.retry_after is None:
                continue
            allowed = throttled.done + throttled.retry_after - SLACK
            later = [r for r in seen[i + 1 :] if r.at > throttled.done]
            if not later:
                continue
            path = "in the call" if throttled.retry_after <= IN_CALL else "by the scheduler"
            checked[path] += 1
            early += [
                f"{name}: {r.method} {r.path} {r.at - throttled.done:.2f} s after a 429 with "
                f"Retry-After {throttled.retry_after:.0f}"
                for r in later
                if r.at < allowed
            ]
    return early, checked


def versions(vault: LocalVault, names: list[str]) -> dict[str, int]:
    """Certificate versions in the vault, by name (asked directly, not through the proxy)."""
    ops = VaultOps(vault)
    try:
        return {
            name: len(ops.ok("GET", f"/certificates/{name}/versions").get("value", []))
            for name in names
        }
    finally:
        ops.close()


def slowest_by_kind(one: Run) -> dict[str, float]:
    """Seconds from the first apply to Ready of each kind's slowest Certificate."""
    slowest: dict[str, float] = {}
    for name, at in one.ready.items():
        kind = name.split("-", 1)[1]
        slowest[kind] = round(max(slowest.get(kind, 0.0), at), 1)
    return dict(sorted(slowest.items()))


def faults_on_writes(records: list[Record]) -> dict[str, dict[str, int]]:
    """Faults given to creates, imports and merges carrying a token: operation -> kind -> n."""
    found: dict[str, Counter[str]] = {}
    for r in records:
        if r.method == "POST" and r.fault and r.authorized:
            operation = r.path.rsplit("/", 1)[-1]
            if operation in ("create", "import", "merge"):
                found.setdefault(operation, Counter())[r.fault] += 1
    return {op: dict(sorted(kinds.items())) for op, kinds in sorted(found.items())}


def by_route(records: list[Record]) -> dict[str, int]:
    """Requests by route ("GET /certificates/{name}/pending"), as the vault's stats name them;
    the bodiless challenge probes apart ("... (no token)")."""
    counted: Counter[str] = Counter()
    for r in records:
        parts = r.path.split("/")
        if r.certificate is not None:
            parts[2] = "{name}"
        path = VERSION_SEGMENT.sub("/{version}", "/".join(parts))
        counted[f"{r.method} {path}" + ("" if r.authorized else " (no token)")] += 1
    return dict(sorted(counted.items()))


def warnings(kube: Kube) -> list[str]:
    """The namespace's Warning events, as "object: reason"."""
    listed = kube.core.list_namespaced_event(kube.namespace).items
    return [f"{e.involved_object.name}: {e.reason}" for e in listed if e.type == "Warning"]


def check_operator(process: OperatorProcess, since: int) -> None:
    """Fail if the operator died, or a reconcile raised since byte `since` of its log."""
    if not process.alive():
        pytest.fail(f"the operator died:\n{process.log()}")
    text = process.log_path.read_bytes()[since:].decode(errors="replace")
    lines = text.splitlines()
    failed = [i for i, line in enumerate(lines) if "reconcile failed" in line]
    if failed or "reconcile did not settle" in text:
        context = "\n".join(lines[failed[0] if failed else 0 :][:40])
        pytest.fail(f"the operator's reconciles raised ({len(failed)} times):\n{context}")
