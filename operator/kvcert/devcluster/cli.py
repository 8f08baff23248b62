"""`kvcert dev up`: the local control plane for humans, the same one the tests use."""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane


def register(commands: Any) -> None:
    dev = commands.add_parser("dev", help="local development environment")
    sub = dev.add_subparsers(dest="dev_command", required=True)
    up = sub.add_parser("up", help="start a local etcd + kube-apiserver and wait")
    up.add_argument("--dir", type=Path, help="state directory (default: a new temp dir)")
    up.add_argument("--bin-dir", type=Path, help="control plane binaries (default: cache)")
    up.add_argument("--port", type=int, default=0, help="kube-apiserver port (default: free)")
    up.add_argument(
        "--once", action="store_true", help="start, show the cluster, stop (a smoke check)"
    )
    up.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    found = binaries.ensure(args.bin_dir)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="kvcert-dev-"))
    with ControlPlane(binaries=found, directory=directory, api_port=args.port) as plane:
        kubectl = [str(found.kubectl), f"--kubeconfig={plane.kubeconfig}"]
        subprocess.run([*kubectl, "version"], check=True)  # noqa: S603
        subprocess.run([*kubectl, "get", "namespaces"], check=True)  # noqa: S603
        print(
            f"\nThe local control plane is up at {plane.url}.\n"
            f"Point kubectl at it with:\n\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"  export PATH={found.kubectl.parent}:$PATH\n"
            f"  kubectl get namespaces\n",
            flush=True,
        )
        if not args.once:
            print("Press Ctrl-C to stop it.", flush=True)
            _wait_for_signal()
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
