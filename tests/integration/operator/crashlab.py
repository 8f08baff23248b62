"""The crash table's machinery (test_crash_points.py, issue #18 §1): a case is one crash point
in one vault profile with the kind of Certificate that reaches it; `crash` runs an operator
armed at that point over the case's own namespace until it exits, `recover` runs one operator
without the setting over every namespace, `check` judges each end state into the case's Row.

Kinds (KINDS): `self` (Self-issued), `manual` (issuer Unknown; the test signs the CSR from the
`<name>-csr` ConfigMap into the labelled mergeFrom Secret), `import` (a PFX in importFrom),
`deleted` (Self, deletionPolicy Delete, deleted once Ready), `dropped` (Unknown, deletionPolicy
DeletePending, deleted while its request is in progress). Key Vault's Retry-After is skipped by
moving the operator's clock (its clock file) TICK seconds per step, never slept.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from kvcert.runtime import crashpoints
from tests.integration.operator.harness import Kube, VaultOps, certificate_spec, secret_text
from tests.integration.operator.testca import TestCA, key_pair, pem_certs, pfx
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

KINDS = ("self", "manual", "import", "deleted", "dropped")
KIND_OF_WRITE = {"import": "import", "merge": "manual", "finalizer": "deleted"}
"""The kind that reaches a write; every other write is reached by a Self certificate."""
GONE = ("deleted", "dropped")
CRASH_TIMEOUT = 90.0
RECOVERY_TIMEOUT = 90.0
TICK = 15.0
"""Seconds an operator's clock moves per step: past Key Vault's Retry-After (10 s)."""
MAX_EVENTS_PER_REASON = 2
EXPECTED_CALLS = {"import": {"import": 1}, "manual": {"create": 1, "merge": 1}}
"""Key Vault calls per Certificate by kind (deletes aside); any other kind: one create."""
ANNOUNCED_BY = {"manual": ("Merged",), "import": ("Imported", "Adopted")}
"""The events that tell what kvcert did in Key Vault; any other kind: Created or Adopted."""
REQUEST_LINE = re.compile(r"kvcert\.keyvault: (\w+) /certificates/([^/\s]+)(/\S*)? -> (\d+)")
CALLS = {
    ("POST", "/create"): "create",
    ("POST", "/import"): "import",
    ("POST", "/pending/merge"): "merge",
    ("DELETE", ""): "delete",
    ("DELETE", "/pending"): "delete pending",
}


@dataclass(frozen=True)
class Case:
    """One crash point (`before:create`, `after:status#2`) in one profile, and the kind of
    Certificate that reaches it (by default KIND_OF_WRITE's)."""

    point: str
    profile: str
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", KIND_OF_WRITE.get(self.write, "self"))
        assert self.kind in KINDS, self.kind

    @property
    def write(self) -> str:
        return self.point.split(":")[1].split("#")[0]

    @property
    def name(self) -> str:
        """The Certificate's name and its Key Vault certificate's: unique across cases, so
        that the restarted operator's log tells them apart."""
        slug = self.point.replace(":", "-").replace("#", "-")
        return f"{self.kind[:3]}-{slug}-{self.profile[:3]}"

    @property
    def namespace(self) -> str:
        return f"crash-{self.name}"


@dataclass
class Row:
    """What happened to one case: the crash, the state it left, the end state's problems."""

    case: Case
    exit_code: int | None = None
    crash_seconds: float = 0.0
    at_crash: str = ""
    requests: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    merge_result: str | None = None
    problems: list[str] = field(default_factory=list)
    log_tail: str = ""

    @property
    def outcome(self) -> str:
        if self.problems:
            return f"FAIL ({self.case.kind}): " + "; ".join(self.problems)
        calls = ", ".join(f"{n} {what}" for what, n in sorted(self.requests.items()))
        events = ", ".join(f"{reason} x{n}" for reason, n in sorted(self.events.items()))
        return f"ok ({self.case.kind}): crashed at [{self.at_crash}]; {calls}; events {events}"

    def unannounced(self) -> str | None:
        """What kvcert did in Key Vault and neither an event nor status.operation tells."""
        reasons = ANNOUNCED_BY.get(self.case.kind, ("Created", "Adopted"))
        if not set(reasons) & set(self.events):
            return f"none of the events {reasons} (events: {dict(self.events)})"
        if self.case.kind == "manual" and self.merge_result != "Merged":
            return f"status.operation.merge.result is {self.merge_result}, not Merged"
        return None


@dataclass
class Lab:
    """The module's own control plane (api, kubeconfig) and vaults by profile."""

    api: client.ApiClient
    kubeconfig: Path
    directory: Path
    vaults: dict[str, LocalVault]
    ops: dict[str, VaultOps]


class Drive:
    """One case's Certificate and what the test does for it while an operator runs."""

    def __init__(self, lab: Lab, case: Case) -> None:
        self.case, self.vault = case, lab.vaults[case.profile]
        self.kube = Kube(lab.api, case.namespace)
        self.ca = TestCA.make()
        self.leaf: x509.Certificate | None = None  # the one signed or imported (None: Self)
        self.deleting = False

    def prepare(self) -> None:
        """The namespace, its KeyVault `main`, and (import) the PFX to import."""
        namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=self.kube.namespace))
        self.kube.core.create_namespace(namespace)
        self.kube.put_secret("vault-token", {"token": self.vault.token.encode()})
        self.kube.keyvault("main", self.vault.url, "vault-token", self.vault.ca_path.read_text())
        if self.case.kind == "import":
            key, name = key_pair(), self.case.name
            self.leaf = self.ca.sign(key.public_key(), f"{name}.example.com")
            self.kube.put_secret(f"{name}-source", {"tls.pfx": pfx(key, self.leaf, self.ca)})

    def apply(self) -> None:
        name, kind = self.case.name, self.case.kind
        spec: dict[str, Any]
        if kind == "import":
            source = {"secretName": f"{name}-source"}
            spec = {"vaultRef": {"name": "main"}, "secretName": f"{name}-tls", "importFrom": source}
        else:
            issuer = "Self" if kind in ("self", "deleted") else "Unknown"
            extra: dict[str, Any] = {
                "manual": {"mergeFrom": {"secretName": f"{name}-signed"}},
                "deleted": {"deletionPolicy": "Delete"},
                "dropped": {"deletionPolicy": "DeletePending"},
            }.get(kind, {})
            spec = certificate_spec("main", f"{name}-tls", issuer, f"{name}.example.com", **extra)
        self.kube.apply_certificate(name, spec)

    def step(self, operator: OperatorProcess) -> None:
        """Sign a published CSR (manual), delete when due (deleted, dropped), move the clock."""
        name, kind = self.case.name, self.case.kind
        if kind == "manual" and self.leaf is None:
            csr = self.kube.config_map(f"{name}-csr")
            if csr is not None:
                self.leaf = self.ca.sign_csr(csr.data["csr.pem"])
                self._put_source(f"{name}-signed", {"tls.crt": self.ca.chain_pem(self.leaf)})
        if not self.deleting and (
            (kind == "deleted" and self.ready())
            or (kind == "dropped" and self.kube.config_map(f"{name}-csr") is not None)
        ):
            self.kube.delete_certificate(name)
            self.deleting = True
        operator.advance_clock(TICK)

    def _put_source(self, name: str, data: dict[str, bytes]) -> None:
        """A mergeFrom Secret labelled kvcert.io/source: its change reconciles at once."""
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels={"kvcert.io/source": "true"}),
            data={k: base64.b64encode(v).decode() for k, v in data.items()},
        )
        self.kube.core.create_namespaced_secret(self.kube.namespace, secret)

    def ready(self) -> bool:
        found = self.kube.condition(self.case.name, "Ready") or {}
        return (found.get("status"), found.get("reason")) == ("True", "Issued")

    def done(self) -> bool:
        if self.case.kind in GONE:
            return self.deleting and self.kube.certificate(self.case.name) is None
        return self.ready()

    def state(self, ops: VaultOps) -> str:
        """Where the crash left things: status.operation, Key Vault, the output Secret."""
        name = self.case.name
        body = self.kube.certificate(name)
        op = ((body or {}).get("status") or {}).get("operation") or {}
        status = "gone" if body is None else op.get("status") or ("intent" if op else "-")
        held = ops.certificate(name)
        vault = "issued" if held and held.get("x5t") else (ops.pending(name) or {}).get("status")
        secret = "yes" if self.kube.secret(f"{name}-tls") is not None else "no"
        return f"status {status}, vault {vault or 'none'}, secret {secret}"


def requests_of(log: str, name: str) -> Counter[str]:
    """Key Vault calls an operator's log shows for certificate `name` that the vault acted on
    (a 401 is the bearer challenge before the real request), by kind (CALLS)."""
    counted: Counter[str] = Counter()
    for method, found, rest, code in REQUEST_LINE.findall(log):
        kind = CALLS.get((method, rest or ""))
        if found == name and kind and code != "401":
            counted[kind] += 1
    return counted


def crash(lab: Lab, drive: Drive, row: Row) -> None:
    """Start an operator armed at the case's point over its namespace only, drive the
    Certificate until the operator exits (or CRASH_TIMEOUT), and note where things stand."""
    case = drive.case
    drive.prepare()
    clock = lab.directory / f"clock-{case.namespace}"
    env = {"KVCERT_CRASH_AT": case.point}
    args = ("--namespace", case.namespace)
    with OperatorProcess(lab.kubeconfig, env=env, args=args, clock_file=clock) as operator:
        started = time.monotonic()
        drive.apply()
        while (code := operator.wait_exit(0.3)) is None:
            if time.monotonic() - started > CRASH_TIMEOUT:
                break
            drive.step(operator)
        row.exit_code, row.crash_seconds = code, time.monotonic() - started
        log = operator.log(tail=10_000_000)
    row.requests.update(requests_of(log, case.name))
    row.at_crash = drive.state(lab.ops[case.profile])
    if code != crashpoints.CRASH_EXIT_CODE:
        row.problems.append(f"the operator did not crash at {case.point} (exit {code})")
        row.log_tail = log[-4000:]
    elif f"crash point {case.point.split('#')[0]} reached" not in log:
        row.problems.append("exit 86 without the crash point's line in the log")


def recover(lab: Lab, drives: list[Drive], rows: dict[Case, Row]) -> tuple[str, bool]:
    """One operator without the setting over every namespace, stepping every case until all are
    done (or RECOVERY_TIMEOUT); (its log, whether it was still alive at the end)."""
    with OperatorProcess(lab.kubeconfig, clock_file=lab.directory / "clock-restart") as operator:
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        left = list(drives)
        while left and time.monotonic() < deadline and operator.alive():
            for drive in left:
                drive.step(operator)
            left = [drive for drive in left if not drive.done()]
            operator.wait_exit(0.3)
        alive = operator.alive()
        log = operator.log(tail=50_000_000)
    for drive in drives:
        rows[drive.case].requests.update(requests_of(log, drive.case.name))
        if drive in left:
            rows[drive.case].log_tail = log[-4000:]
    return log, alive


def check(lab: Lab, drive: Drive, row: Row) -> None:
    """The end state after the restart (see test_crash_points); problems go to the row."""
    case, kube, ops = drive.case, drive.kube, lab.ops[drive.case.profile]
    name, problems = case.name, row.problems
    row.events.update(Counter(kube.event_reasons(name)))
    storms = {reason: n for reason, n in row.events.items() if n > MAX_EVENTS_PER_REASON}
    if storms:
        problems.append(f"events repeated: {storms}")
    want = EXPECTED_CALLS.get(case.kind, {"create": 1})
    calls = {k: v for k, v in row.requests.items() if not k.startswith("delete")}
    if calls != want:
        problems.append(f"Key Vault calls {calls}, want {want}")
    if case.kind in GONE:
        if kube.certificate(name) is not None:
            problems.append("the Certificate is still there")
        if case.kind == "dropped" and ops.pending(name) is not None:
            problems.append("Key Vault's pending operation was not deleted")
        if case.kind == "deleted" and (ops.certificate(name) or not ops.deleted(name)):
            problems.append("Key Vault's certificate was not deleted")
        return
    status = (kube.certificate(name) or {}).get("status") or {}
    operation = status.get("operation") or {}
    row.merge_result = (operation.get("merge") or {}).get("result")
    if not drive.ready():
        problems.append(f"not Ready/Issued after the restart: {status.get('conditions')}")
        return
    if operation.get("status") != "completed":
        problems.append(f"status.operation is {operation}")
    pending = ops.pending(name)
    if pending is not None and pending.get("status") == "inProgress":
        problems.append("Key Vault's pending operation is still in progress")
    versions = ops.ok("GET", f"/certificates/{name}/versions").get("value", [])
    if len(versions) != 1:
        problems.append(f"{len(versions)} versions in Key Vault")
    problems.extend(secret_problems(drive, status.get("certificate") or {}, ops.certificate(name)))


def secret_problems(drive: Drive, info: dict[str, Any], held: dict[str, Any] | None) -> list[str]:
    """The output Secret against its key, status.certificate (`info`) and Key Vault's current
    version (`held`); the leaf is the one signed or imported, if any."""
    secret = drive.kube.secret(f"{drive.case.name}-tls")
    if secret is None:
        return ["no output Secret"]
    leaf = pem_certs(secret_text(secret, "tls.crt"))[0]
    key = serialization.load_pem_private_key(secret_text(secret, "tls.key").encode(), None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    der = leaf.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
    annotations = secret.metadata.annotations or {}
    version = (held or {}).get("id", "").rstrip("/").rsplit("/", 1)[-1]
    found = []
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        found.append("tls.key does not match the leaf")
    if x5t != info.get("x5t") or x5t != annotations.get("kvcert.io/x5t"):
        found.append(f"leaf x5t {x5t}, status {info.get('x5t')}")
    if (held or {}).get("x5t") != x5t or version != info.get("version"):
        found.append(f"Key Vault holds {version}, status says {info.get('version')}")
    if annotations.get("kvcert.io/version") != info.get("version"):
        found.append("the Secret's version annotation differs from status")
    if drive.leaf is not None and leaf != drive.leaf:
        found.append("the delivered leaf is not the one signed or imported")
    return found
