"""`kvcert dev up`: the local control plane, the local vault and the operator, for humans.

It runs exactly what the tests run: the same control plane, the same vault, the operator as a
process of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from kvcert.devcluster import binaries, processes
from kvcert.devcluster.controlplane import ControlPlane


def register(commands: Any) -> None:
    dev = commands.add_parser("dev", help="local development environment")
    sub = dev.add_subparsers(dest="dev_command", required=True)
    up = sub.add_parser("up", help="run kvcert end to end locally and apply examples/")
    up.add_argument("--dir", type=Path, help="state directory (default: a new temp dir)")
    up.add_argument("--bin-dir", type=Path, help="control plane binaries (default: cache)")
    up.add_argument("--port", type=int, default=0, help="kube-apiserver port (default: free)")
    up.add_argument("--ca-delay", type=float, default=15.0, help="simulated CA delay, seconds")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Ready")
    up.add_argument(
        "--control-plane-only", action="store_true", help="start only etcd + kube-apiserver"
    )
    up.add_argument(
        "--once", action="store_true", help="exit when done (status 1 if not all Ready)"
    )
    up.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    found = binaries.ensure(args.bin_dir)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="kvcert-dev-"))
    with contextlib.ExitStack() as stack:
        plane = stack.enter_context(
            ControlPlane(binaries=found, directory=directory, api_port=args.port)
        )
        kubectl = [str(found.kubectl), f"--kubeconfig={plane.kubeconfig}"]
        subprocess.run([*kubectl, "version"], check=True)  # noqa: S603
        ready = True
        if not args.control_plane_only:
            ready = _run_demo(stack, plane, kubectl, directory, args)
        print(
            f"\nThe local control plane is up at {plane.url} (state in {directory}).\n"
            f"Point kubectl at it with:\n\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"  export PATH={found.kubectl.parent}:$PATH\n"
            f"  kubectl get kvcerts -A\n",
            flush=True,
        )
        if not args.once:
            print("Press Ctrl-C to stop everything.", flush=True)
            _wait_for_signal()
        return 0 if ready else 1
    return 1


def _run_demo(
    stack: contextlib.ExitStack,
    plane: ControlPlane,
    kubectl: list[str],
    directory: Path,
    args: argparse.Namespace,
) -> bool:
    from kvcert.devcluster import demo  # noqa: PLC0415 - the kubernetes client is slow to import

    demo.install_crds(kubectl)
    vault = stack.enter_context(processes.local_vault(directory, args.ca_delay))
    print(f"local Key Vault at {vault.url} (CA: {vault.ca_path})", flush=True)
    api = stack.enter_context(demo.api_client(plane.kubeconfig))
    demo.create_vault_resource(api, vault)
    stack.enter_context(processes.operator(plane.kubeconfig, directory / "operator.log"))
    print(f"operator running (log: {directory / 'operator.log'})", flush=True)
    demo.create_issuer(api)
    demo.create_outside_certificate(vault)
    for example in demo.examples():
        subprocess.run([*kubectl, "apply", "-n", demo.NAMESPACE, "-f", str(example)], check=True)  # noqa: S603
    demo.sign_manual_request(api)
    ready = demo.watch_until_ready(kubectl, api, args.timeout)
    print(
        "all certificates are Ready" if ready else "not all certificates became Ready in time",
        flush=True,
    )
    subprocess.run([*kubectl, "get", "secrets", "-n", demo.NAMESPACE], check=False)  # noqa: S603
    return ready


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
