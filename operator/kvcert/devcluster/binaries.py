"""Where the control plane binaries are, and how to get them when they are not there yet."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.4"

_REPO_ROOT = Path(__file__).resolve().parents[3]
_BUILD_SCRIPT = _REPO_ROOT / "hack" / "control-plane.sh"


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path


def default_bin_dir() -> Path:
    override = os.environ.get("KVCERT_BIN_DIR")
    if override:
        return Path(override)
    cache = Path(os.environ.get("KVCERT_CACHE_DIR", Path.home() / ".cache" / "kvcert"))
    return cache / "bin"


def _present(bin_dir: Path) -> Binaries | None:
    found = Binaries(
        etcd=bin_dir / "etcd",
        kube_apiserver=bin_dir / "kube-apiserver",
        kubectl=bin_dir / "kubectl",
    )
    if all(os.access(path, os.X_OK) for path in (found.etcd, found.kube_apiserver, found.kubectl)):
        return found
    return None


def ensure(bin_dir: Path | None = None) -> Binaries:
    """Return the binaries, building them with hack/control-plane.sh on first use.

    The build takes minutes from a cold Go cache, so `make` runs it up front; this fallback
    keeps `pytest` usable on its own.
    """
    target = bin_dir or default_bin_dir()
    found = _present(target)
    if found is not None:
        return found
    bash = shutil.which("bash")
    if bash is None or not _BUILD_SCRIPT.exists():
        raise FileNotFoundError(
            f"control plane binaries missing in {target} and {_BUILD_SCRIPT} is not available"
        )
    subprocess.run([bash, str(_BUILD_SCRIPT), str(target)], check=True)  # noqa: S603
    found = _present(target)
    if found is None:
        raise FileNotFoundError(f"{_BUILD_SCRIPT} ran but {target} lacks the binaries")
    return found
