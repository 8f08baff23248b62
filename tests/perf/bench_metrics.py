"""Benchmark of the per-Certificate metrics (kvcert.runtime.metrics; not in pytest testpaths).

    .venv/bin/python tests/perf/bench_metrics.py [--out results.json] [--certificates 10000]

Feeds one `Metrics` object N synthetic issued Certificates (Ready True, validity, renewal time,
operation completed: the 11 series of the busiest state), each body built the way the watch
delivers it and dropped after `observe_certificate`, so whatever the metrics keep of it counts.
Reports:
  - heap bytes per Certificate: tracemalloc's traced size after the N calls minus before, / N;
  - RSS growth per Certificate: VmRSS of this process after minus before, / N (a first pass
    without tracemalloc, so its bookkeeping does not count);
  - microseconds per `observe_certificate` call;
  - seconds for one full exposition (`Metrics.exposition()`, what a scrape runs; best of 3)
    and its size in bytes;
prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from kvcert.runtime.metrics import Metrics


def body(i: int) -> dict[str, Any]:
    """An issued Certificate as the watch delivers it (fresh strings, as JSON decoding gives)."""
    name, namespace = f"web-{i:05d}", f"team-{i % 50:02d}"
    return {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "Certificate",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"6f1c2d3e-0000-4000-8000-{i:012d}",
            "generation": 1,
            "resourceVersion": str(100000 + i),
        },
        "spec": {
            "vaultRef": {"name": "kv"},
            "secretName": f"{name}-tls",
            "policy": {
                "issuer": {"name": "Self"},
                "subject": f"CN={name}.example.com",
                "validityMonths": 12,
                "key": {"type": "EC", "curve": "P-256", "exportable": True},
                "contentType": "application/x-pem-file",
            },
        },
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Issued",
                    "message": f"issued version {i:032x} into Secret {name}-tls",
                    "lastTransitionTime": "2026-11-22T22:44:30Z",
                    "observedGeneration": 1,
                }
            ],
            "certificate": {
                "version": f"{i:032x}",
                "notBefore": "2026-11-22T22:34:28Z",
                "notAfter": "2027-11-22T22:44:28Z",
            },
            "renewalTime": "2027-09-10T12:00:00Z",
            "operation": {"status": "completed", "requestId": f"r-{i}"},
        },
    }


def rss_bytes() -> int:
    """VmRSS of this process (Linux /proc), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(count: int) -> dict[str, Any]:
    gc.collect()
    metrics = Metrics()
    rss_before = rss_bytes()
    started = time.perf_counter()
    for i in range(count):
        metrics.observe_certificate(body(i))
    observe_seconds = time.perf_counter() - started
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        text = metrics.exposition()
        timings.append(time.perf_counter() - started)
    del metrics
    gc.collect()

    tracemalloc.start()
    metrics = Metrics()
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        metrics.observe_certificate(body(i))
    gc.collect()
    traced_after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "certificates": count,
        "heap_bytes_per_certificate": round((traced_after - traced_before) / count),
        "rss_bytes_per_certificate": round(rss_growth / count),
        "observe_microseconds": round(observe_seconds / count * 1e6, 1),
        "exposition_seconds": round(min(timings), 4),
        "exposition_bytes": len(text),
        "samples": sum(1 for line in text.splitlines() if not line.startswith(b"#")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--certificates", type=int, default=10_000)
    args = parser.parse_args()
    report = {"python": platform.python_version(), "results": run(args.certificates)}
    for label, value in report["results"].items():
        print(f"{label:<32}{value:>14}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
