"""The host side of the end-to-end cluster: its sandbox, processes and mounts.

Everything here acts by name or by PID on what one `NodeCluster` made: its network namespace and
cgroup root `kvcert-e2e-<pid>`, the processes started inside them (and their children, such as
containerd's shims and the containers they run), and the mounts under its work directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")

NETNS_PREFIX = "kvcert-e2e-"
NETNS_DIR = Path("/run/netns")
# workdir of each live namespace, so that the next run can clean up after a crashed one
STATE_DIR = Path("/run/kvcert-e2e")
CNI_DIR = Path("/usr/lib/cni")
CGROUP_DIR = Path("/sys/fs/cgroup")
TOOLS = (
    "ip",
    "nsenter",
    "umount",
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "ctr",
    "iptables",
)
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
# ip, iptables and runc live in sbin, which a non-login root shell may not have in PATH
PATH = os.pathsep.join(
    dict.fromkeys([*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin"])
)


class ClusterError(RuntimeError):
    """The end-to-end cluster could not start (or stop); the message says why and where."""


class CommandError(subprocess.CalledProcessError):
    """A command failed; unlike CalledProcessError, str() includes its stderr."""

    def __str__(self) -> str:
        err = self.stderr if isinstance(self.stderr, str) else ""
        return f"{super().__str__()}\n{err.strip()[-3000:]}"


def require_environment() -> None:
    """Fail clearly when not root or a tool the cluster needs is missing."""
    if os.geteuid() != 0:
        raise ClusterError("the end-to-end cluster needs root (network namespaces, mounts)")
    missing = [tool for tool in TOOLS if shutil.which(tool, path=PATH) is None]
    missing += [f"{CNI_DIR}/{p}" for p in CNI_PLUGINS if not os.access(CNI_DIR / p, os.X_OK)]
    if missing:
        raise ClusterError(
            f"missing: {', '.join(missing)}; `bash hack/e2e-deps.sh` installs them"
            " (containerd runc containernetworking-plugins iptables iproute2 util-linux)"
        )


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll predicate() until it returns something truthy; ClusterError naming `what` if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def run(argv: list[str], *, check: bool = True, timeout: float = 60) -> str:
    """Run a host command; its stdout, or CommandError with stderr when check fails."""
    env = {**os.environ, "PATH": PATH}
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if check and done.returncode != 0:
        raise CommandError(done.returncode, argv, done.stdout, done.stderr)
    return done.stdout


# --- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    """A long-running process the cluster started; stopped by PID."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)
    component: bool = False  # part of the cluster: its exit fails NodeCluster.wait_for

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; idempotent."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    component: bool = False,
) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    try:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    except BaseException:
        log.close()
        raise
    return Proc(name, process, log_path, log, component)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def with_descendants(pids: Iterable[int]) -> list[int]:
    tree, found, todo = _children(), [], list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(tree.get(pid, []))
    return found


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGESIZE"
            )
        except (OSError, IndexError, ValueError):
            continue
    return total


def pid_alive(pid: int) -> bool:
    """Whether pid runs (a zombie, reaped late by some init, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- the sandbox: a network namespace and a cgroup root of the cluster's own -----------------
#
# The kubelet's pods go under the cgroup /<name>/kubepods (cgroupRoot), not /kubepods: a kubelet
# removes the pod cgroups it does not know under its root, so two clusters on one machine (two
# pytest sessions) must not share it, and a crashed run's containers can be found and killed.


def netns_pids(name: str) -> list[int]:
    if not (NETNS_DIR / name).exists():
        return []
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(word) for word in out.split() if word.isdigit()]


def _cgroup_hierarchies() -> list[Path]:
    if (CGROUP_DIR / "cgroup.procs").exists():  # cgroup v2 only
        return [CGROUP_DIR]
    return sorted(d for d in CGROUP_DIR.iterdir() if (d / "cgroup.procs").exists())


def cgroup_pids(name: str) -> list[int]:
    pids: set[int] = set()
    for hierarchy in _cgroup_hierarchies():
        for procs in (hierarchy / name).rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(word) for word in procs.read_text().split())
    return sorted(pids)


def _make_cgroups(name: str) -> None:
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / name
        group.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset starts empty: inherit
            if (group / knob).exists() and not (group / knob).read_text().strip():
                (group / knob).write_text((hierarchy / knob).read_text())


def _remove_cgroups(name: str) -> None:
    def removed() -> bool:
        kill_all(cgroup_pids(name))
        for hierarchy in _cgroup_hierarchies():
            if (hierarchy / name).exists():
                for directory, _, _ in os.walk(hierarchy / name, topdown=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
        return not any((h / name).exists() for h in _cgroup_hierarchies())

    wait_for(removed, 15, f"cgroup {name} to empty")


def create_sandbox(name: str, workdir: Path, node_ip: str, gateway: str) -> None:
    """The cgroup root, and a netns with lo up and a veth pair node0/node0p with the node IP."""
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / name).write_text(str(workdir))
    _make_cgroups(name)
    run(["ip", "netns", "add", name])
    ip = ["ip", "-n", name]
    run([*ip, "link", "set", "lo", "up"])
    run([*ip, "link", "add", "node0", "type", "veth", "peer", "name", "node0p"])
    run([*ip, "addr", "add", f"{node_ip}/24", "dev", "node0"])
    run([*ip, "link", "set", "node0p", "up"])
    run([*ip, "link", "set", "node0", "up"])
    run([*ip, "route", "add", "default", "via", gateway, "dev", "node0", "onlink"])


def delete_sandbox(name: str, workdir: Path | None) -> None:
    """Kill what still runs in the netns or the cgroup (and children), unmount, delete both."""
    kill_all(with_descendants([*netns_pids(name), *cgroup_pids(name)]))
    if workdir is not None:
        unmount_under(workdir)
    _remove_cgroups(name)
    if (NETNS_DIR / name).exists():
        run(["ip", "netns", "delete", name])
    (STATE_DIR / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        STATE_DIR.rmdir()  # when no other cluster runs


def delete_stale_sandboxes() -> list[str]:
    """Delete the kvcert-e2e-<pid> sandboxes whose pid is gone (runs that crashed)."""
    deleted = []
    names = {p.name for p in NETNS_DIR.glob(f"{NETNS_PREFIX}*")}
    names |= {p.name for p in STATE_DIR.glob(f"{NETNS_PREFIX}*")}
    for hierarchy in _cgroup_hierarchies():
        names |= {p.name for p in hierarchy.glob(f"{NETNS_PREFIX}*")}
    for name in sorted(names):
        match = re.fullmatch(rf"{NETNS_PREFIX}(\d+)", name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        state = STATE_DIR / name
        workdir = Path(state.read_text()) if state.exists() else None
        delete_sandbox(name, workdir)
        deleted.append(name)
    return deleted


# --- mounts ------------------------------------------------------------------------------


def _unescape(field_: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mounts_under(directory: Path) -> list[str]:
    root = str(directory)
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = _unescape(line.split()[1])
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return points


def unmount_under(directory: Path) -> None:
    """umount -l every mount under directory, deepest first, until none is left."""
    for _ in range(5):
        points = mounts_under(directory)
        if not points:
            return
        for point in sorted(set(points), key=lambda p: p.count("/"), reverse=True):
            run(["umount", "-l", point], check=False)
    left = mounts_under(directory)
    if left:
        raise ClusterError(f"mounts left under {directory}: {left[:5]}")
