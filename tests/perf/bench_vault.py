"""Benchmark of the local vault over real HTTPS (not part of pytest's testpaths).

    .venv/bin/python tests/perf/bench_vault.py [--out results.json] [--concurrency 4]

Starts a vault subprocess, then measures requests/s for
  - GET /certificates/{n}/pending (an Unknown-issuer operation, the operator's poll),
  - Self creates with EC P-256 keys and with RSA 2048 keys (202 throughput, and the time until
    every one of them is `completed`, i.e. issued),
prints a table and writes the numbers as JSON. Request counts come from `GET /_kvcert/stats`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.vault import LocalVault

API = "?api-version=7.5"


async def _run(count: int, concurrency: int, call: Any) -> float:
    """Run `call(i)` for i in range(count) with bounded concurrency; return elapsed seconds."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await call(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def bench_pending(client: httpx.AsyncClient, count: int, concurrency: int) -> dict[str, Any]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    body = {
        "policy": {
            "x509_props": {"subject": "CN=bench"},
            "issuer": {"name": "Unknown"},
            "key_props": {"kty": "EC"},
        }
    }
    assert (await client.post(f"/certificates/{name}/create{API}", json=body)).status_code == 202

    async def call(_i: int) -> None:
        response = await client.get(f"/certificates/{name}/pending{API}")
        assert response.status_code == 200

    await _run(min(200, count), concurrency, call)  # warm-up
    elapsed = await _run(count, concurrency, call)
    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1),
    }


async def bench_creates(
    client: httpx.AsyncClient, count: int, concurrency: int, key_props: dict[str, Any]
) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    body = {
        "policy": {
            "x509_props": {"subject": "CN=bench"},
            "issuer": {"name": "Self"},
            "key_props": key_props,
        }
    }

    async def call(i: int) -> None:
        response = await client.post(f"/certificates/{prefix}-{i}/create{API}", json=body)
        assert response.status_code == 202, response.text

    start = time.perf_counter()
    elapsed = await _run(count, concurrency, call)

    async def completed(i: int) -> None:
        while True:
            op = (await client.get(f"/certificates/{prefix}-{i}/pending{API}")).json()
            if op["status"] == "completed":
                return
            await asyncio.sleep(0.01)  # poll until issued

    await _run(count, concurrency, completed)
    issued = time.perf_counter() - start
    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1),
        "issued_per_second": round(count / issued, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with LocalVault.start(profile="service") as vault:
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(
            base_url=vault.url,
            headers=vault.auth_headers(),
            verify=vault.ssl_context(),
            limits=limits,
            timeout=60,
        ) as client:
            results = {
                "GET pending": await bench_pending(client, args.reads, args.concurrency),
                "create Self EC P-256": await bench_creates(
                    client, args.creates, args.concurrency, {"kty": "EC", "crv": "P-256"}
                ),
                "create Self RSA 2048": await bench_creates(
                    client, args.rsa_creates, args.concurrency, {"kty": "RSA", "key_size": 2048}
                ),
            }
            stats = (await client.get("/_kvcert/stats")).json()
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "concurrency": args.concurrency,
        "results": results,
        "server_stats": stats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--rsa-creates", type=int, default=100)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(f"{'benchmark':<24}{'requests':>10}{'seconds':>10}{'req/s':>10}{'issued/s':>10}")
    for label, row in report["results"].items():
        issued = row.get("issued_per_second", "")
        print(
            f"{label:<24}{row['requests']:>10}{row['seconds']:>10}{row['per_second']:>10}"
            f"{issued:>10}"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
