"""A one-node Kubernetes cluster on a real kubelet + containerd, without Docker.

`NodeCluster` is the tested port of the pod-e2e prototype: inside a network namespace of its own
(`kvcert-e2e-<pid>`, node IP 10.250.0.10 on a veth) it starts containerd, etcd, kube-apiserver
(ServiceAccount admission, Node+RBAC authorization, NodeRestriction, PodSecurity, an audit log),
kube-controller-manager, kube-scheduler, kube-proxy and a kubelet, each by PID with its log
under `<workdir>/logs/`. Commands for the cluster run inside the namespace (`run`, `kubectl`,
`helm`); extra long-running processes join it with `spawn`. `stop()` takes everything down again
in reverse order and leaves no process, mount or namespace; it is safe after a partial start.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from kvcert.devcluster.binaries import default_bin_dir
from tests.e2e import host, nodeconfig
from tests.e2e.host import ClusterError, CommandError, Proc
from tests.e2e.nodeconfig import NODE_NAME

NODE_IP = "10.250.0.10"
GATEWAY = "10.250.0.1"
T = TypeVar("T")
_NODE_TOOLS = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "helm")


@dataclass(frozen=True)
class NodeBinaries:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    kubelet: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kube_proxy: Path
    helm: Path

    @classmethod
    def from_dir(cls, bin_dir: Path | None = None) -> NodeBinaries:
        """The binaries `bash hack/control-plane.sh --node` links into ~/.cache/kvcert/bin."""
        directory = bin_dir or default_bin_dir()
        names = ("etcd", "kube-apiserver", "kubectl", *_NODE_TOOLS)
        missing = [name for name in names if not os.access(directory / name, os.X_OK)]
        if missing:
            raise ClusterError(
                f"missing in {directory}: {', '.join(missing)}; "
                "build them with `bash hack/control-plane.sh --node`"
            )
        return cls(*(directory / name for name in names))


class NodeCluster:
    """A running one-node cluster; a context manager (start on enter, stop on exit)."""

    node_ip = NODE_IP
    node_name = NODE_NAME

    def __init__(
        self,
        workdir: Path,
        *,
        images: list[Path],
        pause_image: str,
        binaries: NodeBinaries | None = None,
        startup_timeout: float = 120,
        stop_timeout: float = 10,
    ) -> None:
        self.workdir = workdir.resolve()
        self.images = images
        self.pause_image = pause_image
        self.binaries = binaries or NodeBinaries.from_dir()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.netns = f"{host.NETNS_PREFIX}{os.getpid()}"
        self.kubeconfig = self.workdir / "pki" / "admin.kubeconfig"
        self.audit_log = self.workdir / "audit.log"
        self.socket = self.workdir / "containerd.sock"
        self.timings: dict[str, float] = {}
        self._procs: list[Proc] = []
        self._sandbox_made = False

    # --- the API for tests -------------------------------------------------------------

    @property
    def netns_path(self) -> Path:
        """/run/netns/NAME, for `nsenter --net=` or setns (tests/e2e/forward.py)."""
        return host.NETNS_DIR / self.netns

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace; CommandError (with stderr) if check fails."""
        argv = self._in_netns(argv)
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(env),
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            [str(self.binaries.kubectl), *args], check=check, input=input, timeout=timeout
        )

    def kubectl_json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl(*args, "-o", "json").stdout)
        return result

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.binaries.helm), *args], check=check, input=input, timeout=timeout)

    def ctr(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """`ctr -n k8s.io ARGS` against the cluster's containerd (e.g. `images tag`); stdout."""
        argv = ["ctr", "--address", str(self.socket), "-n", "k8s.io", *args]
        return host.run(argv, check=check, timeout=timeout)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start a long-running process inside the namespace, its output in logs/NAME.log.

        The handle stops it (`.stop()`), or stop() does, before the cluster's components.
        """
        proc = host.spawn(name, self._in_netns(argv), self._log(name), self._env(env))
        self._procs.append(proc)
        return proc

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 60, what: str = "it"
    ) -> T:
        """Poll predicate() until truthy; fails at once if a cluster component exited."""

        def check() -> T | None:
            self._check_alive()
            return predicate()

        return host.wait_for(check, timeout, what)

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log's events so far (JSON lines, stage ResponseComplete and later)."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def rss_bytes(self) -> int:
        """Resident memory of everything in the netns or the pods' cgroups, and children."""
        pids = [*host.netns_pids(self.netns), *host.cgroup_pids(self.netns)]
        return host.rss_bytes(set(host.with_descendants(pids)))

    # --- start ---------------------------------------------------------------------------

    def start(self) -> Self:
        host.require_environment()
        started = time.monotonic()
        try:
            self._start(started)
        except BaseException as error:
            try:
                self.stop()
            except ClusterError as cleanup:
                error.add_note(f"stopping after the failed start failed too: {cleanup}")
            raise
        return self

    def _start(self, started: float) -> None:
        def step(name: str) -> None:
            self.timings[name] = round(time.monotonic() - started, 2)

        host.delete_stale_sandboxes()
        if (host.NETNS_DIR / self.netns).exists() or (host.STATE_DIR / self.netns).exists():
            raise ClusterError(f"{self.netns} exists: one cluster per process at a time")
        for sub in ("logs", "cni", "ipam", "etcd", "kubelet", "pod-logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self._sandbox_made = True
        host.create_sandbox(self.netns, self.workdir, NODE_IP, GATEWAY)
        w, bins = self.workdir, self.binaries
        pki = nodeconfig.generate(w / "pki", NODE_IP)
        server = f"https://{NODE_IP}:6443"
        nodeconfig.write_kubeconfig(self.kubeconfig, server, pki.ca_cert, pki.admin_token)
        kubelet_kubeconfig = w / "pki" / "kubelet.kubeconfig"
        nodeconfig.write_kubeconfig(kubelet_kubeconfig, server, pki.ca_cert, pki.kubelet_token)
        config = nodeconfig.containerd_config(w, self.socket, self.pause_image)
        step("netns, pki, configs")

        self._start_proc("containerd", ["containerd", "--config", str(config)])
        self._start_proc("etcd", nodeconfig.etcd_args(bins.etcd, w))
        self._start_proc(
            "kube-apiserver",
            nodeconfig.apiserver_args(bins.kube_apiserver, w, pki, NODE_IP, self.audit_log),
        )
        self.wait_for(self._containerd_up, 30, "containerd")
        # the imports run while the rest starts; the kubelet needs the pause image only for pods
        imports = ThreadPoolExecutor(max_workers=1)
        imported = imports.submit(self._import_images)
        imports.shutdown(wait=False)
        self.wait_for(self._apiserver_ready, self.startup_timeout, "kube-apiserver /readyz")
        step("kube-apiserver ready")
        admin = self.kubeconfig
        self._start_proc(
            "kube-controller-manager",
            nodeconfig.controller_manager_args(bins.kube_controller_manager, admin, pki),
        )
        self._start_proc("kube-scheduler", nodeconfig.scheduler_args(bins.kube_scheduler, admin))
        self._start_proc("kube-proxy", nodeconfig.proxy_args(bins.kube_proxy, admin))
        self._start_proc(
            "kubelet",
            nodeconfig.kubelet_args(
                bins.kubelet, w, self.socket, pki, kubelet_kubeconfig, NODE_IP, f"/{self.netns}"
            ),
        )
        imported.result(timeout=600)
        step("images imported")
        self.wait_for(self._node_ready, self.startup_timeout, f"node {NODE_NAME} Ready")
        step("node Ready")

    def _import_images(self) -> None:
        for archive in self.images:
            self.ctr("images", "import", str(archive), timeout=300)
        if self.pause_image not in self.ctr("images", "ls", "-q").split():
            raise ClusterError(f"pause image {self.pause_image} not among the imported images")

    def _start_proc(self, name: str, argv: list[str]) -> None:
        argv, log, env = self._in_netns(argv), self._log(name), self._env()
        self._procs.append(host.spawn(name, argv, log, env, component=True))

    def _containerd_up(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            self.ctr("version", timeout=10)
        except (CommandError, subprocess.TimeoutExpired):
            return False
        return True

    def _apiserver_ready(self) -> bool:
        return self.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0

    def _node_ready(self) -> bool:
        done = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False, timeout=10)
        if done.returncode != 0:
            return False
        conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything by PID in reverse order, kill containers, unmount, drop the sandbox.

        The containers die right after the kubelet (which would restart them), so that no pod
        holds a watch that makes kube-apiserver's graceful shutdown wait.
        """
        started = time.monotonic()
        errors: list[str] = []
        tasks_killed = False
        for proc in reversed(self._procs):
            if proc.name == "containerd" and not tasks_killed:
                tasks_killed = self._kill_tasks(errors)
            proc.stop(self.stop_timeout)
            self.timings[f"stopped {proc.name}"] = round(time.monotonic() - started, 2)
            if proc.name == "kubelet":
                tasks_killed = self._kill_tasks(errors)
        self._procs.clear()
        if self._sandbox_made:
            try:
                host.delete_sandbox(self.netns, self.workdir)
            except (CommandError, ClusterError) as error:
                errors.append(str(error))
            self._sandbox_made = False
        else:
            host.unmount_under(self.workdir)
        self.timings["stop"] = round(time.monotonic() - started, 2)
        if errors:
            raise ClusterError("; ".join(errors))

    def _kill_tasks(self, errors: list[str]) -> bool:
        """SIGKILL every container, then delete the tasks so that their shims exit."""
        try:
            if not self._containerd_up():
                return False
            tasks = self.ctr("tasks", "ls", "-q").split()
            for task in tasks:
                self.ctr("tasks", "kill", "-s", "KILL", task, check=False)
            for task in tasks:

                def deleted(task: str = task) -> bool:
                    self.ctr("tasks", "delete", task, check=False)
                    return task not in self.ctr("tasks", "ls", "-q").split()

                host.wait_for(deleted, 15, f"containerd task {task} to stop")
        except (CommandError, subprocess.TimeoutExpired, ClusterError) as error:
            errors.append(f"killing containerd tasks: {error}")
        return True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- plumbing ------------------------------------------------------------------------

    def _in_netns(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.netns_path}", *argv]

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        helm = self.workdir / "helm"
        return {
            **os.environ,
            "PATH": host.PATH,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(helm / "cache"),
            "HELM_CONFIG_HOME": str(helm / "config"),
            "HELM_DATA_HOME": str(helm / "data"),
            **(extra or {}),
        }

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _check_alive(self) -> None:
        for proc in self._procs:
            if proc.component and not proc.alive():
                raise ClusterError(
                    f"{proc.name} exited with {proc.process.returncode}; {proc.log_path}:\n"
                    + proc.log(2500)
                )
