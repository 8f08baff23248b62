"""crds/ must be exactly what `kvcert.api.crdgen` generates from the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvcert.api import crdgen

ROOT = Path(__file__).resolve().parents[3]
RENDERED = crdgen.render_all()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_crds_on_disk_are_fresh(name: str) -> None:
    path = ROOT / "crds" / name
    on_disk = path.read_text(encoding="utf-8") if path.exists() else ""
    assert on_disk == RENDERED[name], f"crds/{name} differs from the models: run `make crds`"


def test_no_stray_crd_files() -> None:
    on_disk = {path.name for path in (ROOT / "crds").glob("kvcert.io_*.yaml")}
    assert on_disk == set(RENDERED), "crds/ holds files crdgen does not make: run `make crds`"
