"""Start and stop etcd + kube-apiserver on free loopback ports.

The same code serves the pytest session fixture and `kvcert dev up`, so the demo runs on
exactly the control plane the tests prove.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import yaml

from kvcert.devcluster import pki
from kvcert.devcluster.binaries import Binaries

_SERVICE_RANGE = "10.96.0.0/24"


def free_port() -> int:
    """A loopback port that was free a moment ago (good enough for one machine's tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ControlPlaneError(RuntimeError):
    """The control plane did not start; the message points at its log files."""


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair in its own directory."""

    binaries: Binaries
    directory: Path
    startup_timeout: float = 60.0
    api_port: int = 0
    extra_args: tuple[str, ...] = ()
    """Appended to kube-apiserver's arguments (e.g. an audit policy and log for cost tests)."""
    kubeconfig: Path = field(init=False)
    _processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(
        default_factory=list, init=False
    )
    _pki: pki.ControlPlanePki | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def admin_token(self) -> str:
        assert self._pki is not None, "control plane not started"
        return self._pki.admin_token

    @property
    def ca_cert(self) -> Path:
        assert self._pki is not None, "control plane not started"
        return self._pki.ca_cert

    def start(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pki = pki.generate(self.directory / "pki")
        etcd_port, peer_port = free_port(), free_port()
        self.api_port = self.api_port or free_port()
        self._spawn("etcd", self._etcd_args(etcd_port, peer_port))
        self._wait_for_port(etcd_port, "etcd")
        tokens = self.directory / "tokens.csv"
        tokens.write_text(f'{self._pki.admin_token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        self._spawn("kube-apiserver", self._apiserver_args(etcd_port, tokens))
        self._wait_ready()
        self.kubeconfig = self._write_kubeconfig()
        return self

    def _etcd_args(self, port: int, peer_port: int) -> list[str]:
        client, peer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        return [
            str(self.binaries.etcd),
            "--name=default",
            f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _apiserver_args(self, etcd_port: int, tokens: Path) -> list[str]:
        assert self._pki is not None
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--secure-port={self.api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={self._pki.serving_cert}",
            f"--tls-private-key-file={self._pki.serving_key}",
            f"--client-ca-file={self._pki.ca_cert}",
            f"--token-auth-file={tokens}",
            f"--service-account-key-file={self._pki.service_account_key}",
            f"--service-account-signing-key-file={self._pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={_SERVICE_RANGE}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            f"--cert-dir={self.directory / 'apiserver-certs'}",
            "--v=0",
            *self.extra_args,
        ]

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own pinned binaries, no shell
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._processes.append((name, process, log))

    def _check_alive(self) -> None:
        for name, process, _ in self._processes:
            if process.poll() is not None:
                tail = (self.directory / f"{name}.log").read_text(errors="replace")[-2000:]
                raise ControlPlaneError(f"{name} exited with {process.returncode}:\n{tail}")

    def _wait_for_port(self, port: int, name: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return
            time.sleep(0.05)
        raise ControlPlaneError(f"{name} did not listen on {port} in {self.startup_timeout} s")

    def _wait_ready(self) -> None:
        assert self._pki is not None
        deadline = time.monotonic() + self.startup_timeout
        headers = {"Authorization": f"Bearer {self._pki.admin_token}"}
        last = "no answer"
        trust = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        with httpx.Client(verify=trust, headers=headers, timeout=2) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    response = client.get(f"{self.url}/readyz")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text[-300:]}"
                except httpx.TransportError as error:
                    last = repr(error)
                time.sleep(0.1)
        raise ControlPlaneError(f"kube-apiserver not ready in {self.startup_timeout} s: {last}")

    def _write_kubeconfig(self) -> Path:
        assert self._pki is not None
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kvcert-local",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self._pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self._pki.admin_token}}],
            "contexts": [
                {"name": "kvcert-local", "context": {"cluster": "kvcert-local", "user": "admin"}}
            ],
            "current-context": "kvcert-local",
        }
        path = self.directory / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        """Stop kube-apiserver before etcd so that neither logs a storm of reconnects."""
        for _, process, _ in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for _, _, log in self._processes:
            log.close()
        self._processes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
