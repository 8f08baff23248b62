"""Run the local Key Vault (`kvcert vault serve`) as a real subprocess for integration tests.

    with LocalVault.start(profile="service") as vault:
        httpx.get(f"{vault.url}/certificates?api-version=7.5",
                  headers=vault.auth_headers(), verify=vault.ca_path)

The process listens on a free loopback port with its state in a temporary directory (or one you
pass, to survive `restart()`); `start()` returns once the vault answers HTTPS, polling with a
timeout rather than sleeping a fixed time. `kill()` is a real SIGKILL (crash tests); `stop()` is
a graceful SIGTERM. The operator's integration tests reuse this module: keep its API stable.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from azure.core.credentials import AccessToken, AccessTokenInfo

STARTUP_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just reported free (closed again at once; a tiny reuse race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalVault:
    """A running `kvcert vault serve` process and what clients need to reach it."""

    data_dir: Path
    port: int
    token: str
    profile: str = "documented"
    host: str = "127.0.0.1"
    hostnames: tuple[str, ...] = ()
    ca_delay: float = 20.0
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    # construction --------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        *,
        profile: str = "documented",
        token: str | None = None,
        data_dir: Path | None = None,
        hostnames: tuple[str, ...] = (),
        ca_delay: float = 20.0,
        timeout: float = STARTUP_TIMEOUT,
    ) -> LocalVault:
        """Start a vault and wait until it answers; `data_dir=None` uses a temporary directory."""
        tmp = None
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="kvcert-vault-")
            data_dir = Path(tmp.name)
        vault = cls(
            data_dir=data_dir,
            port=free_port(),
            token=token or secrets.token_hex(16),
            profile=profile,
            hostnames=hostnames,
            ca_delay=ca_delay,
            _tmp=tmp,
        )
        vault._spawn(timeout)
        return vault

    def _command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "kvcert.vault",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--token",
            self.token,
            "--profile",
            self.profile,
            "--ca-delay",
            str(self.ca_delay),
        ]
        for name in self.hostnames:
            cmd += ["--hostname", name]
        return cmd

    def _spawn(self, timeout: float) -> None:
        log = (self.data_dir / "server.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Poll the management health endpoint until it answers 200 (or fail with the log)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"vault exited with {self.process.returncode}:\n{self.log()}")
            try:
                response = httpx.get(
                    f"{self.url}/_kvcert/health",
                    headers=self.auth_headers(),
                    verify=self.ssl_context(),
                    timeout=2.0,
                )
                if response.status_code == 200:
                    return
            except (httpx.HTTPError, OSError) as exc:
                last = exc
            time.sleep(0.05)  # poll interval while waiting for a condition, not an outcome
        raise TimeoutError(f"vault did not answer within {timeout}s ({last!r}):\n{self.log()}")

    # what clients need ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def url_for(self, hostname: str) -> str:
        """The vault's URL through another name (which must resolve to `host` for the client)."""
        return f"https://{hostname}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only the vault's CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: object) -> httpx.Client:
        """An authenticated httpx client trusting the vault's CA."""
        return httpx.Client(
            base_url=self.url,
            headers=self.auth_headers(),
            verify=self.ssl_context(),
            timeout=30.0,
            **kwargs,  # type: ignore[arg-type]
        )

    # the vault's clock and lifetime actions (management API) --------------------------------
    def _management(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.client() as client:
            response = client.request(method, f"/_kvcert/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def advance_clock(self, seconds: float) -> dict[str, float]:
        """Move the vault's clock forward by `seconds`; what became due (operation outcomes,
        lifetime actions) is applied before this returns. `{"now": ..., "offset": ...}`."""
        moved: dict[str, float] = self._management(
            "POST", "clock", json={"advanceSeconds": seconds}
        )
        return moved

    def clock(self) -> dict[str, float]:
        """The vault's time, `{"now": unix seconds, "offset": seconds ahead of the host}`."""
        now: dict[str, float] = self._management("GET", "clock")
        return now

    def notifications(self, certificate: str | None = None) -> list[dict[str, Any]]:
        """The EmailContacts notifications lifetime actions recorded, oldest first."""
        params = {"certificate": certificate} if certificate else None
        value: list[dict[str, Any]] = self._management("GET", "notifications", params=params)[
            "value"
        ]
        return value

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # lifecycle -----------------------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up (crash simulation)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, *, kill: bool = False, timeout: float = STARTUP_TIMEOUT) -> None:
        """Stop (or kill) and start again on the same port, data directory and token."""
        if kill:
            self.kill()
        else:
            self.stop()
        self._spawn(timeout)

    def close(self) -> None:
        """Stop the process and remove the temporary data directory, if we made it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalVault:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class StaticTokenCredential:
    """An azure-core token credential for the local vault: always `token`, valid for an hour.

    Pass it to the unmodified SDK, e.g. `CertificateClient(vault.url,
    StaticTokenCredential(vault.token), connection_verify=str(vault.ca_path),
    verify_challenge_resource=False)` (the last because 127.0.0.1 is an IP address).
    """

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *_scopes: str, **_kw: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *_scopes: str, **_kw: Any) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)
