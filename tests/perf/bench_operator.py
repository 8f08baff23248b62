"""Benchmark of the whole operator: N Self EC certificates from apply to Ready (issue #17).

    .venv/bin/python -m tests.perf.bench_operator --count 100 --count 1000 [--out run.json]
        [--creates-per-10s 100000] [--idle 60] [--py-spy profile.txt]

Starts its own control plane (etcd + kube-apiserver), a local vault (profile service) and the
operator as a subprocess, applies N Certificates (Self issuer, EC P-256, PEM) into a fresh
namespace per count, and reports per run:
  - seconds to all Ready, to the first Ready, p50/p95 of each certificate's apply-to-Ready time
    (from one watch), certificates/s;
  - CPU seconds (/proc) of the operator, the vault, kube-apiserver and etcd, and the operator's
    CPU milliseconds per certificate; the operator's RSS before and after, bytes per certificate;
  - Kubernetes API writes and reads per certificate by verb and resource (kube-apiserver's
    `apiserver_request_total`; the benchmark's own creates are taken out, and it reads nothing:
    it waits on a watch);
  - Key Vault requests per certificate by route (the vault's `/_kvcert/stats`);
  - with `--idle S`: then S seconds with nothing to do: API requests, Key Vault requests and
    operator CPU seconds in that window (DESIGN §5: idle costs nothing);
  - with `--py-spy FILE`: py-spy samples the operator during the (last) run, writes the
    collapsed stacks to FILE and prints the top frames (self and inclusive);
  - with `--tracemalloc FILE`: the operator runs under tracemalloc (tests/perf/traced_operator,
    slower: its timings are not comparable), and FILE gets the Python memory the (last) run
    left allocated, by allocating line.
Prints a table, writes JSON (`--out`), and appends every run to .bench/history.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane
from tests.integration.operator.harness import install_crds, wait_for
from tests.perf import measure
from tests.perf.profile import top_frames
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

GROUP, VERSION = measure.GROUP, measure.VERSION
HISTORY = Path(__file__).resolve().parents[2] / ".bench" / "history.jsonl"
SETTLE = 2.0
"""Seconds without a new API or Key Vault request after which a run's trailing work is over."""


def certificate(index: int) -> dict[str, Any]:
    name = f"c{index:05d}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {
            "vaultRef": {"name": "local"},
            "secretName": f"{name}-tls",
            "policy": {
                "issuer": {"name": "Self"},
                "subject": f"CN={name}.example.com",
                "dnsNames": [f"{name}.example.com"],
                "key": {"type": "EC", "curve": "P-256"},
                "contentType": "application/x-pem-file",
            },
        },
    }


class Run:
    """One machine: control plane, vault, operator; `once(count)` measures one batch."""

    def __init__(
        self,
        plane: ControlPlane,
        api: client.ApiClient,
        vault: LocalVault,
        operator: OperatorProcess,
    ) -> None:
        self.plane, self.api, self.vault, self.operator = plane, api, vault, operator
        assert operator.process is not None
        assert vault.process is not None
        self.pids = {
            "operator": operator.process.pid,
            "vault": vault.process.pid,
            **measure.plane_pids(plane),
        }

    def cpu(self) -> dict[str, float]:
        return {name: measure.cpu_seconds(pid) for name, pid in self.pids.items()}

    def namespace(self) -> str:
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="token"), string_data={"token": self.vault.token}
            ),
        )
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "keyvaults",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "KeyVault",
                "metadata": {"name": "local"},
                "spec": {
                    "url": self.vault.url,
                    "auth": {"token": {"secretRef": {"name": "token", "key": "token"}}},
                    "caBundle": self.vault.ca_path.read_text(),
                },
            },
        )

        def vault_ready() -> bool:
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "keyvaults", "local"
            )
            return measure._is_ready(body)

        wait_for(vault_ready, 60, "the KeyVault Ready")
        return namespace

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until neither the API server nor the vault has served a request for SETTLE s."""
        last = (measure.api_requests(self.plane), measure.vault_requests(self.vault))
        since, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() - since < SETTLE and time.monotonic() < deadline:
            time.sleep(0.25)
            now = (measure.api_requests(self.plane), measure.vault_requests(self.vault))
            if now != last:
                last, since = now, time.monotonic()

    def once(
        self, count: int, timeout: float, profile: Path | None, traced: Path | None = None
    ) -> dict[str, Any]:
        custom = client.CustomObjectsApi(self.api)
        namespace = self.namespace()
        self.settle()
        if traced is not None:
            self.traced(traced.with_name(traced.name + ".baseline"))
        measure.reset_vault_requests(self.vault)
        requests_before, cpu_before = measure.api_requests(self.plane), self.cpu()
        rss_before = measure.rss_bytes(self.pids["operator"])
        sampler = _py_spy(self.pids["operator"], profile) if profile else None
        ready = measure.ReadyWatch(self.api, namespace).start()
        applied_at: dict[str, float] = {}
        started = time.time()
        for index in range(count):
            body = certificate(index)
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "certificates", body)
            applied_at[body["metadata"]["name"]] = time.time()
        applied = time.time() - started
        done = ready.wait_for(count, timeout)
        elapsed = time.time() - started
        rss_after = measure.rss_bytes(self.pids["operator"])
        self.settle()
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=60)
        ready.stop()
        cpu_after = self.cpu()
        counts = measure.api_requests(self.plane)
        counts.subtract(requests_before)
        counts["POST certificates"] -= count  # the benchmark's own creates
        writes, reads = measure.split_requests(counts)
        kv = measure.vault_requests(self.vault)
        latencies = [ready.ready_at[name] - applied_at[name] for name in ready.ready_at]
        first = min(ready.ready_at.values(), default=started) - started
        cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after}
        result: dict[str, Any] = {
            "count": count,
            "ready": done,
            "apply_seconds": round(applied, 2),
            "seconds_to_all_ready": round(elapsed, 2),
            "seconds_to_first_ready": round(first, 2),
            "p50_seconds_apply_to_ready": _round(measure.percentile(latencies, 0.5)),
            "p95_seconds_apply_to_ready": _round(measure.percentile(latencies, 0.95)),
            "certificates_per_second": round(done / elapsed, 1) if elapsed else None,
            "cpu_seconds": cpu,
            "operator_cpu_ms_per_certificate": round(cpu["operator"] * 1000 / count, 2),
            "operator_rss_bytes": {"before": rss_before, "after": rss_after},
            "operator_rss_bytes_per_certificate": round((rss_after - rss_before) / count),
            "k8s_writes_per_certificate": _per(sum(writes.values()), count),
            "k8s_reads_per_certificate": _per(sum(reads.values()), count),
            "k8s_writes_by_kind_per_certificate": _per_kind(writes, count),
            "k8s_reads_by_kind_per_certificate": _per_kind(reads, count),
            "keyvault_requests_per_certificate": _per(sum(kv.values()), count),
            "keyvault_requests_by_route_per_certificate": _per_kind(kv, count),
        }
        if profile is not None:
            result["profile"] = {"file": str(profile), **top_frames(profile)}
        if traced is not None:
            self.traced(traced)
            result["tracemalloc"] = traced.read_text().splitlines()[:25]
        return result

    def traced(self, out: Path) -> None:
        """Ask the traced operator for a snapshot (SIGUSR2) and wait until it wrote `out`."""
        out.unlink(missing_ok=True)
        assert self.operator.process is not None
        self.operator.process.send_signal(signal.SIGUSR2)
        wait_for(out.exists, 300, f"the operator's tracemalloc snapshot {out}")

    def idle(self, seconds: float) -> dict[str, Any]:
        """What `seconds` of nothing to do cost: requests of every kind and CPU seconds."""
        self.settle()
        measure.reset_vault_requests(self.vault)
        requests_before, cpu_before = measure.api_requests(self.plane), self.cpu()
        time.sleep(seconds)  # the measured window itself, not a wait for an outcome
        counts = measure.api_requests(self.plane)
        counts.subtract(requests_before)
        cpu_after = self.cpu()
        return {
            "seconds": seconds,
            "k8s_requests": {k: v for k, v in counts.items() if v > 0},
            "keyvault_requests": measure.vault_requests(self.vault),
            "cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
            "operator_rss_bytes": measure.rss_bytes(self.pids["operator"]),
        }


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` (100 Hz, collapsed stacks, non-blocking) until SIGINT."""
    spy = Path(sys.executable).with_name("py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(spy), "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
    command += ["--nonblocking", "--output", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches before the first create (a start-up, not an outcome)
    return process


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def _per(total: int, count: int) -> float:
    return round(total / count, 2)


def _per_kind(counts: dict[str, int], count: int) -> dict[str, float]:
    return {key: round(value / count, 2) for key, value in sorted(counts.items()) if value}


@contextmanager
def machine(stack: ExitStack, creates_per_10s: int, traced: Path | None = None) -> Iterator[Run]:
    """Always a local control plane: its metrics endpoint is what the request counts come from."""
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvcert-bench-")))
    plane = stack.enter_context(ControlPlane(binaries=binaries.ensure(), directory=directory))
    api = stack.enter_context(config.new_client_from_config(config_file=str(plane.kubeconfig)))
    install_crds(api)
    vault = stack.enter_context(LocalVault.start(profile="service"))
    env = {"KVCERT_VAULT_CREATES_PER_10S": str(creates_per_10s)}
    module = "kvcert.cli"
    if traced is not None:
        env["KVCERT_TRACEMALLOC_OUT"] = str(traced.resolve())
        module = "tests.perf.traced_operator"
    operator = stack.enter_context(
        OperatorProcess(plane.kubeconfig, env=env, verbose=False, module=module)
    )
    yield Run(plane, api, vault, operator)


def print_table(results: list[dict[str, Any]], idle: dict[str, Any] | None) -> None:
    head = ("N", "s all", "s 1st", "p50", "p95", "cert/s", "op ms/c", "KB/c", "wr/c", "rd/c")
    print(" ".join(f"{h:>8}" for h in head) + f" {'KV/c':>6}")
    for r in results:
        cells = (
            r["count"],
            r["seconds_to_all_ready"],
            r["seconds_to_first_ready"],
            r["p50_seconds_apply_to_ready"],
            r["p95_seconds_apply_to_ready"],
            r["certificates_per_second"],
            r["operator_cpu_ms_per_certificate"],
            round(r["operator_rss_bytes_per_certificate"] / 1024, 1),
            r["k8s_writes_per_certificate"],
            r["k8s_reads_per_certificate"],
        )
        kv = r["keyvault_requests_per_certificate"]
        print(" ".join(f"{c!s:>8}" for c in cells) + f" {kv:>6}")
        print(
            f"{'':>8}   CPU s: {r['cpu_seconds']}  RSS after: "
            f"{r['operator_rss_bytes']['after'] / 2**20:.0f} MiB"
        )
        for key, value in r["k8s_writes_by_kind_per_certificate"].items():
            print(f"{'':>8}   k8s write {key}: {value}")
        for key, value in r["k8s_reads_by_kind_per_certificate"].items():
            print(f"{'':>8}   k8s read  {key}: {value}")
        for key, value in r["keyvault_requests_by_route_per_certificate"].items():
            print(f"{'':>8}   KV  {key}: {value}")
        for line in (r.get("profile") or {}).get("table", []):
            print(f"{'':>8}   {line}")
        for line in r.get("tracemalloc", []):
            print(f"{'':>8}   {line}")
    if idle is not None:
        print(
            f"idle {idle['seconds']} s: k8s {idle['k8s_requests']} KV {idle['keyvault_requests']}"
            f" CPU s {idle['cpu_seconds']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, action="append", help="certificates (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--idle", type=float, default=0.0, help="then idle S seconds, measured")
    parser.add_argument("--py-spy", type=Path, help="profile the last run into this file")
    parser.add_argument("--tracemalloc", type=Path, help="memory the last run left, by line")
    parser.add_argument(
        "--creates-per-10s",
        type=int,
        default=20,
        help="the operator's create limit per vault (Key Vault's published one is 20)",
    )
    args = parser.parse_args()
    counts = args.count or [100]
    results: list[dict[str, Any]] = []
    idle = None
    with ExitStack() as stack:
        traced = args.tracemalloc
        if traced is not None:
            traced.parent.mkdir(parents=True, exist_ok=True)
        run = stack.enter_context(machine(stack, args.creates_per_10s, traced))
        for position, count in enumerate(counts):
            last = position == len(counts) - 1
            profile = args.py_spy if last else None
            results.append(run.once(count, args.timeout, profile, traced if last else None))
            if not run.operator.alive():
                print(run.operator.log(), file=sys.stderr)
                return 1
        if args.idle:
            idle = run.idle(args.idle)
    print_table(results, idle)
    document = {
        "benchmark": "operator",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": platform.platform(),
        "creates_per_10s": args.creates_per_10s,
        "results": results,
        "idle": idle,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2))
    HISTORY.parent.mkdir(parents=True, exist_ok=True)
    with HISTORY.open("a") as handle:
        handle.write(json.dumps(document) + "\n")
    return 0 if all(r["ready"] == r["count"] for r in results) else 1


def _commit() -> str:
    found = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
