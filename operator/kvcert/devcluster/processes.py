"""The local vault and the operator as child processes of `kvcert dev up`."""

from __future__ import annotations

import contextlib
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from kvcert.devcluster.controlplane import free_port


@dataclass(frozen=True)
class RunningVault:
    url: str
    token: str
    ca_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_path)),
            timeout=30,
        )


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def local_vault(directory: Path, ca_delay: float) -> Iterator[RunningVault]:
    """`kvcert vault serve` on a free loopback port, its state under directory/vault."""
    port, token = free_port(), secrets.token_hex(16)
    data_dir = directory / "vault"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "kvcert.vault", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--token", token, "--ca-delay", str(ca_delay)]
    process = _spawn(command, directory / "vault.log")
    vault = RunningVault(f"https://127.0.0.1:{port}", token, data_dir / "tls" / "ca.crt")
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the local vault exited; see {directory / 'vault.log'}")
            if vault.ca_path.exists():
                with contextlib.suppress(httpx.HTTPError), vault.client() as client:
                    if client.get("/_kvcert/health").status_code == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local vault did not answer; see {directory / 'vault.log'}")
            time.sleep(0.1)
        yield vault
    finally:
        _stop(process)


@contextlib.contextmanager
def operator(kubeconfig: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kvcert operator run` against the given cluster."""
    command = [sys.executable, "-m", "kvcert.cli", "operator", "run"]
    process = _spawn([*command, "--kubeconfig", str(kubeconfig)], log_path)
    try:
        yield process
    finally:
        _stop(process)
