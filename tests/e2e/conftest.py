"""End-to-end fixtures: one real one-node cluster (kubelet + containerd) per pytest session.

Needs root, the Debian packages of hack/e2e-deps.sh and the binaries of
`bash hack/control-plane.sh --node`. The images (the operator's and the pause image, as OCI
archives) come from hack/images.sh, which caches them: a warm run builds nothing, and neither
does this file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cluster import NodeCluster
from tests.e2e.host import mounts_under, require_environment

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
IMAGES_SCRIPT = REPO_ROOT / "hack" / "images.sh"
# hack/images.sh (minutes when cold) and the cluster start run in the first test's setup
E2E_TIMEOUT = 1200


@dataclass(frozen=True)
class E2EImages:
    """What hack/images.sh prints: the operator image and the pause image, as OCI archives."""

    image: str
    archive: Path
    pause_image: str
    pause_archive: Path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs on a real kubelet + containerd in a network namespace (root)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


def _run(argv: list[str], timeout: float = 1800) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="session")
def e2e_images() -> E2EImages:
    require_environment()  # root and the tools, before building anything
    data = json.loads(_run(["bash", str(IMAGES_SCRIPT)]).strip().splitlines()[-1])
    return E2EImages(
        image=data["image"],
        archive=Path(data["archive"]),
        pause_image=data["pause_image"],
        pause_archive=Path(data["pause_archive"]),
    )


@pytest.fixture(scope="session")
def operator_image(e2e_images: E2EImages) -> str:
    """The operator's image name (imported into the cluster's containerd)."""
    return e2e_images.image


@pytest.fixture(scope="session")
def node_cluster(
    e2e_images: E2EImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeCluster]:
    workdir = tmp_path_factory.mktemp("node-cluster")
    cluster = NodeCluster(
        workdir,
        images=[e2e_images.pause_archive, e2e_images.archive],
        pause_image=e2e_images.pause_image,
    )
    with cluster:
        yield cluster
    (workdir / "logs" / "timings.json").write_text(json.dumps(cluster.timings, indent=1))
    # the logs and the audit log stay; images and container layers (hundreds of MB) do not
    if not mounts_under(workdir):
        for bulky in ("containerd", "kubelet"):
            shutil.rmtree(workdir / bulky, ignore_errors=True)
