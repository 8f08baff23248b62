"""Key Vault faults (issue #18 §2): a mixed workload through faultproxy.FaultProxy.

The module runs a lab of its own (etcd + kube-apiserver, the CRDs, one operator with Key Vault's
create limit lifted: KVCERT_VAULT_CREATES_PER_10S=100000) and, per vault profile, the same
workload twice, each time on a fresh local vault behind a proxy of its own and in a namespace of
its own: once with no fault (rate 0), then with 20 % of Key Vault requests faulted (429 with
Retry-After, 500, 503, a reset before forwarding, a stall past the client's read timeout after
the vault acted, a response lost after the vault acted). It asserts, for the faulted run:

- every Certificate reaches Ready (Issued) with its Secret, nothing is left stuck;
- exactly one create or import per Certificate reached the vault, one merge per manual one, and
  each certificate has exactly one version in the vault (a lost or stalled answer is adopted,
  never made twice; creates met both faults after the vault acted);
- Retry-After is honoured: after a 429 asking for R seconds, no request about the same
  certificate arrives earlier than R seconds later (the proxy's clock, 0.05 s slack), both when
  the client waits in the call (R <= 4 s) and when it hands the wait to the scheduler;
- the Key Vault requests stay within 1.5x those of the fault-free run (which itself reports no
  Warning and makes one create or import per Certificate).

Workload (faultwork.PATTERN, by index, a pattern of 20): Self EC P-256 PEM; Self EC P-384
PKCS#12; Self RSA 2048 PEM with CombinedPEM and DER outputs; Self RSA 2048 not exportable; Self
RSA 3072 with a PKCS12 output; importFrom a PFX and a PEM pair; a manual one (issuer Unknown)
whose CSR the test signs and puts, labelled kvcert.io/source, in its mergeFrom Secret.

Smaller tests check the proxy itself (each kind of fault does to a create what it says; the
faults drawn do not depend on the order of requests), that a KeyVault edit does not cut a Key
Vault call in flight, and that a source Secret change does not call a
throttled vault before its Retry-After.

`make test` runs one profile with 100 certificates; KVCERT_FAULTS_LONG=1 runs both profiles with
300. The figures are printed and written to .bench/vault-faults.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.integration.operator.faultproxy import FAULTS, VERSION_SEGMENT, FaultProxy, Record
from tests.integration.operator.faultwork import (
    PATTERN,
    SLACK,
    Run,
    Workload,
    by_route,
    check_operator,
    faults_on_writes,
    put_source,
    retry_after_kept,
    slowest_by_kind,
    vault_probed,
    versions,
    warnings,
    writes_reaching_vault,
)
from tests.integration.operator.harness import (
    GROUP,
    VERSION,
    Kube,
    VaultOps,
    certificate_spec,
    own_control_plane,
    wait_for,
)
from tests.integration.operator.meter import file_size
from tests.integration.operator.testca import TestCA
from tests.integration.operator.timetravel import external_cluster
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

LONG = os.environ.get("KVCERT_FAULTS_LONG") == "1"
PROFILES = ("documented", "service") if LONG else ("documented",)
COUNT = 300 if LONG else 100
RATE, SEED = 0.2, 18
MAX_RATIO = 1.5
READY_TIMEOUT = {False: 60.0 + 0.6 * COUNT, True: 120.0 + 1.2 * COUNT}
"""Seconds for every Certificate to be Ready (fault-free, under faults). Under faults a few
are stalled for the client's 30 s read timeout, then back off."""
FIGURES = Path(__file__).resolve().parents[3] / ".bench" / "vault-faults.json"
pytestmark = [external_cluster, pytest.mark.xdist_group("test_vault_faults")]


# --- the proxy itself ---------------------------------------------------------------------------
EMPTY = client.V1ConfigMap()
CREATE_BODY = {"policy": {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=probe"}}}


@pytest.fixture(scope="module")
def plain_vault() -> Iterator[LocalVault]:
    with LocalVault.start(profile="documented") as vault:
        yield vault


@pytest.mark.parametrize(
    ("kind", "answered", "acted"),
    [
        ("throttle", 429, False),
        ("error500", 500, False),
        ("error503", 503, False),
        ("reset", None, False),
        ("stall", None, True),
        ("lost", None, True),
    ],
)
def test_each_fault_does_to_a_create_what_it_says(
    plain_vault: LocalVault, kind: str, answered: int | None, acted: bool
) -> None:
    """`answered`: the status the client gets (None: no answer, a reset or its own timeout);
    `acted`: whether the vault received the create (it then has a pending operation)."""
    vault = plain_vault
    with (
        FaultProxy(vault, rate=1.0, weights={kind: 1.0}, stall=1.5) as proxy,
        httpx.Client(
            base_url=proxy.url, verify=vault.ssl_context(), headers=vault.auth_headers(), timeout=1
        ) as http,
    ):
        try:
            response = http.post(f"/certificates/{kind}/create?api-version=7.5", json=CREATE_BODY)
        except httpx.TransportError as error:
            got: int | str = type(error).__name__
        else:
            got = response.status_code
            retry_after = response.headers.get("retry-after")
            assert (retry_after is not None) == (kind == "throttle")
            if retry_after is not None:
                assert 1 <= int(retry_after) <= 6
        [record] = proxy.records()
    ops = VaultOps(vault)
    try:
        pending = ops.pending(kind)
    finally:
        ops.close()
    if kind == "stall":
        assert got == "ReadTimeout"
    elif answered is None:
        assert got in ("RemoteProtocolError", "ReadError"), got  # the connection reset
    else:
        assert got == answered
    assert (pending is not None) == acted
    assert (record.fault, record.status) == (kind, answered)
    assert record.upstream == (202 if acted else None)


def test_the_faults_drawn_do_not_depend_on_the_order_of_requests(tmp_path: Path) -> None:
    """The same requests in another order, with other certificate versions, meet the same
    faults: what the n-th request of a method and path meets depends on the seed alone."""
    vault = LocalVault(data_dir=tmp_path, port=0, token="unused")  # never started
    calls = [("GET", f"/certificates/c{i:03d}/pending") for i in range(60)] * 3
    calls += [("POST", f"/certificates/c{i:03d}/create") for i in range(60)]
    calls += [("GET", f"/secrets/c{i:03d}/{i:032x}") for i in range(60)]
    shuffled = [(m, VERSION_SEGMENT.sub(f"/{'f' * 32}", p)) for m, p in calls]
    random.Random(1).shuffle(shuffled)

    def draws(seed: int, sequence: list[tuple[str, str]]) -> dict[Any, Any]:
        proxy, seen, out = FaultProxy(vault, seed=seed), Counter[Any](), {}
        for method, path in sequence:
            key = (method, VERSION_SEGMENT.sub("/{version}", path))
            out[(key, seen[key])] = proxy.draw(method, path)
            seen[key] += 1
        return out

    drawn = draws(7, calls)
    assert draws(7, shuffled) == drawn
    assert draws(8, calls) != drawn
    assert 40 < sum(1 for fault, _ in drawn.values() if fault) < 80  # 20 % of 300: 60 ± 3 sd


# --- the lab -------------------------------------------------------------------------------------
@dataclass
class Lab:
    api: client.ApiClient
    operator: OperatorProcess


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("vault-faults")
    env = {"KVCERT_VAULT_CREATES_PER_10S": "100000"}
    with contextlib.ExitStack() as stack:
        plane, api = own_control_plane(stack, directory / "cp")
        process = stack.enter_context(OperatorProcess(plane.kubeconfig, env=env))
        yield Lab(api, process)


@pytest.fixture
def operator(lab: Lab) -> OperatorProcess:
    """The module's operator (so that a failed test's report carries its log)."""
    return lab.operator


@contextlib.contextmanager
def run(lab: Lab, profile: str, label: str, rate: float) -> Iterator[Run]:
    """A namespace, a fresh vault of `profile` and a proxy faulting `rate` of its requests."""
    namespace = f"{label}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    with (
        LocalVault.start(profile=profile, ca_delay=600.0) as vault,
        FaultProxy(vault, rate=rate, seed=SEED) as proxy,
    ):
        yield Run(label, Kube(lab.api, namespace), vault, proxy)


FIGURES_SO_FAR: dict[str, Any] = {}


def report(profile: str, clean: Run, faulted: Run, checked: Counter[str]) -> dict[str, Any]:
    """Print the table and write every profile's figures so far to FIGURES."""
    injected = faulted.proxy.injected()
    total = {"fault_free": clean.proxy.total(), "under_faults": faulted.proxy.total()}
    figures = {
        "certificates": COUNT,
        "kinds": dict(Counter(PATTERN[i % len(PATTERN)] for i in range(COUNT))),
        "rate": RATE,
        "seed": SEED,
        "faults_injected": {kind: injected.get(kind, 0) for kind in FAULTS},
        "requests": total,
        "ratio": round(total["under_faults"] / max(total["fault_free"], 1), 3),
        "seconds_to_all_ready": {"fault_free": clean.seconds, "under_faults": faulted.seconds},
        "slowest_by_kind": {
            "fault_free": slowest_by_kind(clean),
            "under_faults": slowest_by_kind(faulted),
        },
        "throttles_checked": dict(checked),
        "faults_on_writes": faults_on_writes(faulted.proxy.records()),
        "requests_by_route": {
            "fault_free": by_route(clean.proxy.records()),
            "under_faults": by_route(faulted.proxy.records()),
        },
    }
    rows = [f"vault faults: profile {profile}, {COUNT} certificates, rate {RATE}, seed {SEED}"]
    rows += [f"  {kind:10s} injected {n:5d}" for kind, n in figures["faults_injected"].items()]
    rows += [
        f"  requests   fault-free {total['fault_free']:5d}, under faults "
        f"{total['under_faults']:5d}: ratio {figures['ratio']:.3f} (limit {MAX_RATIO})",
        f"  all Ready  fault-free {clean.seconds:5.1f} s, under faults {faulted.seconds:5.1f} s",
        f"  429s followed by a request about the same certificate: {dict(checked)}",
        f"  faults on writes: {figures['faults_on_writes']}",
    ]
    routes = figures["requests_by_route"]
    for route in sorted(set(routes["fault_free"]) | set(routes["under_faults"])):
        clean_n, faulted_n = (
            routes["fault_free"].get(route, 0),
            routes["under_faults"].get(route, 0),
        )
        rows.append(f"  {clean_n:5d} {faulted_n:5d}  {route}")
    print("\n" + "\n".join(rows))
    FIGURES_SO_FAR[profile] = figures
    FIGURES.parent.mkdir(exist_ok=True)
    document = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "long": LONG}
    FIGURES.write_text(json.dumps({**document, "profiles": FIGURES_SO_FAR}, indent=2) + "\n")
    return figures


def test_a_metadata_edit_of_the_keyvault_does_not_break_the_calls_in_flight(
    lab: Lab, operator: OperatorProcess, plain_vault: LocalVault
) -> None:
    """A slow vault (each answer held 5 s): while a create is in flight, the KeyVault gets an
    annotation (a new resourceVersion, same spec) and another Certificate is applied. The
    create in flight must be answered, not cut: its Certificate reports Created, no failure.
    (Found by this module: clients were keyed on the KeyVault's resourceVersion and the old one
    closed at once, which failed 31 of 100 creates of a fault-free run whose KeyVault's status
    was written under them; runtime/vaults.py now keys on generation and retires clients.)"""
    namespace = f"inflight-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    kube = Kube(lab.api, namespace)
    ops = VaultOps(plain_vault)
    with FaultProxy(plain_vault, rate=0.0) as proxy:
        kube.put_secret("vault-token", {"token": plain_vault.token.encode()})
        kube.keyvault("main", proxy.url, "vault-token", plain_vault.ca_path.read_text())
        wait_for(lambda: vault_probed(kube, "main"), 60, "the KeyVault probed")
        proxy.latency = 5.0
        spec = certificate_spec("main", "first-tls", cn="first.example.com")
        kube.apply_certificate("inflight-first", spec)
        wait_for(lambda: ops.pending("inflight-first"), 30, "the create reached the vault")
        annotation = {"metadata": {"annotations": {"example.com/touched": "yes"}}}
        kube.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "keyvaults", "main", annotation
        )
        kube.apply_certificate("inflight-second", certificate_spec("main", "second-tls"))
        reasons = wait_for(lambda: kube.event_reasons("inflight-first"), 30, "an event")
        failed = [e.reason for e in kube.events("inflight-first") if e.type == "Warning"]
        kube.delete_all_certificates()
    ops.close()
    assert reasons[0] == "Created"
    assert failed == []


def test_a_source_secret_change_does_not_call_a_throttled_vault_before_retry_after(
    lab: Lab, operator: OperatorProcess, plain_vault: LocalVault
) -> None:
    """A manual Certificate's poll is throttled (429, Retry-After: 6, handed to the scheduler);
    its mergeFrom Secret then changes. The next request about it waits the 6 s all the same."""
    name, wait = "throttled-merge", 6.0
    pending = f"/certificates/{name}/pending"
    ca = TestCA.make()
    namespace = f"retry-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    kube = Kube(lab.api, namespace)
    with FaultProxy(plain_vault, rate=0.0) as proxy:
        kube.put_secret("vault-token", {"token": plain_vault.token.encode()})
        kube.keyvault("main", proxy.url, "vault-token", plain_vault.ca_path.read_text())
        wait_for(lambda: vault_probed(kube, "main"), 60, "the KeyVault probed")
        spec = certificate_spec("main", f"{name}-tls", "Unknown")
        spec["mergeFrom"] = {"secretName": f"{name}-signed"}
        kube.apply_certificate(name, spec)
        csr = wait_for(lambda: (kube.config_map(f"{name}-csr") or EMPTY).data, 30, "the CSR")
        proxy.force("throttle", "GET", pending, retry_after=wait)
        chain = ca.chain_pem(ca.sign_csr(csr["csr.pem"]))
        put_source(kube, f"{name}-signed", {"tls.crt": chain})

        def throttled() -> Record | None:
            return next((r for r in proxy.records() if r.fault == "throttle"), None)

        given = wait_for(throttled, 30, "the 429")
        touch = {"metadata": {"annotations": {"example.com/touched": "yes"}}}
        kube.core.patch_namespaced_secret(f"{name}-signed", namespace, touch)

        def next_request() -> Record | None:
            return next((r for r in proxy.records() if r.at > given.done), None)

        following = wait_for(next_request, 30, "the next request")
        kube.delete_all_certificates()
    assert following.at - given.done >= wait - SLACK, f"{following.path} came early"


@pytest.mark.timeout(READY_TIMEOUT[False] + READY_TIMEOUT[True] + 180)
@pytest.mark.parametrize("profile", PROFILES)
def test_a_mixed_workload_under_key_vault_faults_creates_once_each_and_honours_retry_after(
    lab: Lab, operator: OperatorProcess, profile: str
) -> None:
    since = file_size(operator.log_path)
    work = Workload.make(COUNT)
    names = list(work.kinds)
    with run(lab, profile, "clean", 0.0) as clean:
        clean.apply(work)
        clean.wait_ready(work, READY_TIMEOUT[False])
        clean.settle()
        assert not clean.proxy.injected()
        assert writes_reaching_vault(clean.proxy.records()) == dict.fromkeys(names, 1)
        assert warnings(clean.kube) == [], "a fault-free run reports no failure"
    with run(lab, profile, "faults", RATE) as faulted:
        faulted.apply(work)
        faulted.wait_ready(work, READY_TIMEOUT[True])
        faulted.settle()
        records = faulted.proxy.records()
        early, checked = retry_after_kept(records)
        figures = report(profile, clean, faulted, checked)
        counted = versions(faulted.vault, names)
        secrets = faulted.kube.core.list_namespaced_secret(faulted.kube.namespace).items
    check_operator(operator, since)

    assert all(figures["faults_injected"].values()), "every kind of fault was met"
    after_acting = set(figures["faults_on_writes"].get("create", {})) & {"lost", "stall"}
    assert after_acting == {"lost", "stall"}, "creates met both faults after the vault acted"
    creates = writes_reaching_vault(records)
    assert {n: c for n, c in creates.items() if c != 1} == {}, "creates/imports made twice"
    assert set(names) <= set(creates), "a Certificate Ready without its create/import"
    merges = writes_reaching_vault(records, ("/pending/merge",))
    manual = {n for n, kind in work.kinds.items() if kind == "manual"}
    assert merges == dict.fromkeys(manual, 1), "not one merge per manual Certificate"
    assert {n: c for n, c in counted.items() if c != 1} == {}, "versions other than one"
    assert {f"{n}-tls" for n in names} <= {s.metadata.name for s in secrets}
    assert checked["in the call"], "no 429 short enough to be waited in the call"
    assert checked["by the scheduler"], "no 429 long enough to go back to the scheduler"
    assert not early, "requests before Retry-After ended:\n" + "\n".join(early)
    assert figures["ratio"] <= MAX_RATIO
