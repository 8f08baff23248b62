"""Kubernetes faults for integration tests (issue #18 §3): a control plane whose kube-apiserver
can be stopped and started again on the same etcd, an etcd that can be written to and compacted
behind the API server's back (so that a resumed watch is answered `410 Gone`), and a kubeconfig
for a ServiceAccount's token (so that RBAC applies to the operator; the admin token is in
`system:masters`, which RBAC never refuses).

    with FaultyControlPlane(binaries=binaries.ensure(), directory=tmp) as plane:
        with plane.apiserver_down():          # every connection refused meanwhile
            plane.expire_watches()            # etcd moves on and is compacted
        ...                                   # the API server is Ready again here

kvcert.devcluster.controlplane is not changed: this subclass keeps its own processes' list in
order (etcd first, the API server after it, so that `stop()` still stops the API server first).
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from kvcert.devcluster.controlplane import ControlPlane

APISERVER = "kube-apiserver"
BUMP_PREFIX = "/kvcert-tests/bump/"
"""etcd keys written by `expire_watches`: outside /registry, so the API server never reads them."""
GRACE = 2.0
"""Seconds kube-apiserver gets after SIGTERM before SIGKILL. Its graceful shutdown stops
accepting connections at once but keeps the open watches: with the operator's watches open
(timeoutSeconds=300) it had not exited 30 s after SIGTERM here. So a stop is a few seconds of
refused requests with the watches still up, then a crash that closes every connection."""


@dataclass
class FaultyControlPlane(ControlPlane):
    """ControlPlane plus `stop_apiserver`, `start_apiserver` (the same arguments, port, etcd and
    certificates; its log appended to), and etcd's revision, writes and compaction through its
    JSON gateway (`POST /v3/kv/...`)."""

    def _index(self, name: str) -> int:
        for index, (found, _, _) in enumerate(self._processes):
            if found == name:
                return index
        raise LookupError(f"no {name} process")

    @property
    def apiserver(self) -> subprocess.Popen[bytes]:
        return self._processes[self._index(APISERVER)][1]

    def stop_apiserver(self, grace: float = GRACE) -> float:
        """SIGTERM kube-apiserver, SIGKILL after `grace` seconds, and wait for it to exit; its
        port then refuses connections. Returns the seconds the stop took."""
        began = time.monotonic()
        process = self.apiserver
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return time.monotonic() - began

    def start_apiserver(self) -> float:
        """Start kube-apiserver again with the arguments it had, and wait until /readyz answers
        200 (ControlPlaneError after `startup_timeout`). Returns the seconds the start took."""
        began = time.monotonic()
        index = self._index(APISERVER)
        _, old, log = self._processes[index]
        if old.poll() is None:
            raise RuntimeError("kube-apiserver is still running: stop it first")
        log.close()
        appended = (self.directory / f"{APISERVER}.log").open("ab")
        process = subprocess.Popen(
            old.args, stdout=appended, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._processes[index] = (APISERVER, process, appended)
        self._wait_ready()
        return time.monotonic() - began

    @contextlib.contextmanager
    def apiserver_down(self, grace: float = GRACE) -> Iterator[None]:
        """kube-apiserver stopped (`stop_apiserver(grace)`) for the duration of the block,
        then started and Ready."""
        self.stop_apiserver(grace)
        try:
            yield
        finally:
            self.start_apiserver()

    # etcd ------------------------------------------------------------------------------------
    @property
    def etcd_url(self) -> str:
        _, process, _ = self._processes[self._index("etcd")]
        flag = "--listen-client-urls="
        found = [str(a) for a in process.args if str(a).startswith(flag)]  # type: ignore[union-attr]
        return found[0].removeprefix(flag)

    def _etcd(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.etcd_url}/v3/{path}", json=body, timeout=10)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def etcd_revision(self) -> int:
        """etcd's current revision: the newest resourceVersion anything can have."""
        key = base64.b64encode(BUMP_PREFIX.encode()).decode()
        return int(self._etcd("kv/range", {"key": key})["header"]["revision"])

    def expire_watches(self, writes: int = 3) -> int:
        """Make every resourceVersion handed out so far too old to watch from: `writes` puts
        outside /registry move etcd's revision on, then etcd is compacted at that revision
        (physically). With the API server stopped meanwhile, its watch cache starts above
        every client's last resourceVersion and etcd has forgotten what came before: a resumed
        watch is answered 410 Gone (`too old resource version`), whichever answers it. Returns
        the compacted revision."""
        for number in range(writes):
            key = base64.b64encode(f"{BUMP_PREFIX}{number}".encode()).decode()
            value = base64.b64encode(str(time.time()).encode()).decode()
            self._etcd("kv/put", {"key": key, "value": value})
        revision = self.etcd_revision()
        self._etcd("kv/compaction", {"revision": str(revision), "physical": True})
        return revision


def token_kubeconfig(plane: ControlPlane, token: str, path: Path, user: str) -> Path:
    """A kubeconfig for `plane` that authenticates with a bearer `token` (mode 0600)."""
    config = yaml.safe_load(plane.kubeconfig.read_text())
    config["users"] = [{"name": user, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = user
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def service_account_token(
    api: client.ApiClient, namespace: str, name: str, seconds: int = 7200
) -> str:
    """A bound token of the ServiceAccount `namespace/name` (TokenRequest, created if
    missing), for the API server's default audience, valid `seconds`."""
    core = client.CoreV1Api(api)
    with contextlib.suppress(client.ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    with contextlib.suppress(client.ApiException):
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    answer = core.create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)
