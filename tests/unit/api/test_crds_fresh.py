"""crds/ and the Helm chart's crds/ must be exactly what `kvcert.api.crdgen` generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvcert.api import crdgen

ROOT = Path(__file__).resolve().parents[3]
RENDERED = crdgen.render_all()
CRD_DIRS = ("crds", "helm/kvcert-operator/crds")


def test_default_outdirs_are_the_checked_ones() -> None:
    assert crdgen.DEFAULT_OUTDIRS == CRD_DIRS


@pytest.mark.parametrize("directory", CRD_DIRS)
@pytest.mark.parametrize("name", sorted(RENDERED))
def test_crds_on_disk_are_fresh(directory: str, name: str) -> None:
    path = ROOT / directory / name
    on_disk = path.read_text(encoding="utf-8") if path.exists() else ""
    assert on_disk == RENDERED[name], f"{directory}/{name} differs from the models: run `make crds`"


@pytest.mark.parametrize("directory", CRD_DIRS)
def test_no_stray_crd_files(directory: str) -> None:
    on_disk = {path.name for path in (ROOT / directory).glob("*.yaml")}
    assert on_disk == set(RENDERED), f"{directory}/ holds files crdgen does not make: make crds"


def test_main_writes_every_directory(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b" / "crds"
    assert crdgen.main([str(first), str(second)]) == 0
    for directory in (first, second):
        written = {path.name: path.read_text(encoding="utf-8") for path in directory.iterdir()}
        assert written == RENDERED
