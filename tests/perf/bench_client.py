"""Micro-benchmark of the operator's Key Vault client over real HTTPS (issue #17).

    .venv/bin/python -m tests.perf.bench_client [--requests 2000] [--concurrency 32]
        [--certificates 4] [--rounds 5] [--pin] [--in-flight N] [--out client.json]
        [--loop asyncio|uvloop] [--py-spy profile.txt] [--label TEXT]

Starts a local vault (profile service) as a subprocess, issues `--certificates` Self EC
certificates through the operator's `KeyVaultClient` (trusting the vault's CA, as the operator
does), then runs `--rounds` rounds of `--requests` calls each with `--concurrency` callers,
alternating `get_pending_operation` and `get_certificate` over those certificates. The client's
rate limiter is lifted so the client's own cost, not its pacing, is measured.

Per round: CPU seconds of this process (`time.process_time()`: user + system of every thread
here; the vault is another process and is not counted), CPU microseconds per request, wall
seconds and requests/s. The table prints every round, the median and the lowest CPU per request
(the least disturbed round on a shared machine); `--out` writes the same as JSON. With
`--py-spy FILE`, py-spy samples this process (200 Hz, non-blocking) during the rounds only,
writes collapsed stacks to FILE and prints the top frames (tests/perf/profile.py).

The machine is shared: run one benchmark at a time, and compare medians of several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from kvcert.keyvault import (
    CertificatePolicySpec,
    KeyVaultClient,
    RetryPolicy,
    StaticToken,
    VaultRateLimiter,
    session,
)
from tests.perf.profile import top_frames
from tests.support.vault import LocalVault

WARM_UP = 200
"""Calls before the first round: connections opened, the challenge answered, caches warm."""


async def issue(client: KeyVaultClient, count: int, within: float = 60.0) -> list[str]:
    """`count` Self EC P-256 certificates, each polled until its operation completed (at most
    `within` seconds in all, else TimeoutError)."""
    names = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    policy = CertificatePolicySpec(subject="CN=bench.example.com", key_type="EC", key_curve="P-256")
    for name in names:
        await client.create_certificate(name, policy)
    deadline = time.monotonic() + within
    for name in names:
        while (await client.get_pending_operation(name)).status != "completed":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not complete within {within} s")
            await asyncio.sleep(0.05)  # poll interval while waiting for a condition
    return names


async def calls(client: KeyVaultClient, names: list[str], count: int, concurrency: int) -> None:
    """`count` reads, `concurrency` at a time: even ones GET pending, odd ones GET certificate."""
    queue = iter(range(count))

    async def caller() -> None:
        for index in queue:
            name = names[index % len(names)]
            if index % 2:
                await client.get_certificate(name)
            else:
                await client.get_pending_operation(name)

    await asyncio.gather(*(caller() for _ in range(concurrency)))


async def measure_round(
    client: KeyVaultClient, names: list[str], count: int, concurrency: int
) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    await calls(client, names, count, concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "requests": count,
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_request": round(cpu * 1e6 / count, 1),
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(count / wall, 1),
    }


async def bench(vault: LocalVault, args: argparse.Namespace) -> dict[str, Any]:
    if args.in_flight:
        session.MAX_IN_FLIGHT = args.in_flight  # read when the client is built
    client = KeyVaultClient(
        vault.url,
        StaticToken(vault.token),
        ca_bundle_pem=vault.ca_path.read_text(),
        verify_challenge_resource=False,  # 127.0.0.1 is an IP address
        retry=RetryPolicy(max_attempts=1),  # a failure is a benchmark error, not a retry
        rate_limiter=VaultRateLimiter(creates_per_10s=10**6, others_per_10s=10**9),
    )
    async with client:
        names = await issue(client, args.certificates)
        await calls(client, names, WARM_UP, args.concurrency)
        sampler = _py_spy(args.py_spy) if args.py_spy else None
        rounds = [
            await measure_round(client, names, args.requests, args.concurrency)
            for _ in range(args.rounds)
        ]
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=60)
    result: dict[str, Any] = {
        "rounds": rounds,
        "median": {
            key: statistics.median(r[key] for r in rounds)
            for key in ("cpu_us_per_request", "requests_per_second", "wall_seconds")
        },
        "min_cpu_us_per_request": min(r["cpu_us_per_request"] for r in rounds),
    }
    if args.py_spy:
        result["profile"] = {"file": str(args.py_spy), **top_frames(args.py_spy)}
    return result


def _py_spy(out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (200 Hz, collapsed stacks, non-blocking) until SIGINT."""
    spy = Path(sys.executable).with_name("py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(spy), "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw"]
    command += ["--nonblocking", "--output", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches before the first round (a start-up, not an outcome)
    return process


def print_table(result: dict[str, Any]) -> None:
    head = ("round", "requests", "CPU s", "CPU us/req", "wall s", "req/s")
    print(" ".join(f"{h:>10}" for h in head))
    for number, r in enumerate(result["rounds"], 1):
        cells = (
            number,
            r["requests"],
            r["cpu_seconds"],
            r["cpu_us_per_request"],
            r["wall_seconds"],
            r["requests_per_second"],
        )
        print(" ".join(f"{c!s:>10}" for c in cells))
    median = result["median"]
    cells = (
        "median",
        "",
        "",
        median["cpu_us_per_request"],
        median["wall_seconds"],
        median["requests_per_second"],
    )
    print(" ".join(f"{c!s:>10}" for c in cells))
    print(" ".join(f"{c!s:>10}" for c in ("min", "", "", result["min_cpu_us_per_request"])))
    for line in (result.get("profile") or {}).get("table", []):
        print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per round")
    parser.add_argument("--concurrency", type=int, default=32, help="callers at once")
    parser.add_argument("--certificates", type=int, default=4, help="certificates read")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--py-spy", type=Path, help="profile the rounds into this file")
    parser.add_argument(
        "--pin", action="store_true", help="this process on CPU 0, the vault on CPU 1 (less noise)"
    )
    parser.add_argument(
        "--in-flight", type=int, help="override the session's MAX_IN_FLIGHT (pool size) for a try"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--label", default="", help="a note stored in the JSON (e.g. the step)")
    args = parser.parse_args()
    with LocalVault.start(profile="service") as vault:
        if args.pin:
            assert vault.process is not None
            os.sched_setaffinity(vault.process.pid, {1})
            os.sched_setaffinity(0, {0})
        if args.loop == "uvloop":
            result = uvloop.run(bench(vault, args))  # the operator's loop (issue #17)
        else:
            result = asyncio.run(bench(vault, args))
    print_table(result)
    document = {
        "benchmark": "client",
        "label": args.label,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "certificates": args.certificates,
        "in_flight": session.MAX_IN_FLIGHT,
        "loop": args.loop,
        **result,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
