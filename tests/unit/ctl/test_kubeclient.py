"""kvcert.ctl.kubeclient: which namespace the CLI works in (-n, else the context's, else
default), one-line errors for a bad kubeconfig or an unreachable server, and what the CLI's
modules import (never kopf; nothing heavy for `kvcert --help`)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kvcert.ctl import API_ERROR, USAGE, CtlError
from kvcert.ctl.kubeclient import Cluster


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """Two contexts on a server nothing listens on: `team` (namespace team-a, current) and
    `bare` (no namespace)."""
    server = f"https://127.0.0.1:{_closed_port()}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "team", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
            {"name": "bare", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "team",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("context", "namespace", "expected"),
    [
        (None, None, "team-a"),  # the current context's namespace
        (None, "mine", "mine"),  # -n wins
        ("bare", None, "default"),
        ("bare", "mine", "mine"),
        ("team", None, "team-a"),
    ],
)
def test_the_namespace_is_n_else_the_contexts_else_default(
    kubeconfig: Path, context: str | None, namespace: str | None, expected: str
) -> None:
    cluster = Cluster(str(kubeconfig), context, namespace)
    try:
        assert cluster.namespace == expected
    finally:
        cluster.close()


def test_an_unknown_context_is_one_line_with_the_fix(kubeconfig: Path) -> None:
    with pytest.raises(CtlError) as raised:
        Cluster(str(kubeconfig), "nope", None)
    assert raised.value.code == USAGE  # the user's configuration, not the API server
    assert str(raised.value).endswith("check --kubeconfig, KUBECONFIG and --context")
    assert "\n" not in str(raised.value)


def test_an_unreachable_api_server_is_one_line_with_the_fix(kubeconfig: Path) -> None:
    cluster = Cluster(str(kubeconfig), None, None)
    cluster.api.configuration.retries = 0
    try:
        with pytest.raises(CtlError) as raised:
            cluster.certificate("web")
    finally:
        cluster.close()
    assert raised.value.code == API_ERROR
    assert str(raised.value).startswith("cannot reach the API server (")
    assert str(raised.value).endswith("check --kubeconfig and --context")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_the_cli_never_loads_kopf() -> None:
    loaded = _modules_after("import kvcert.ctl.commands, kvcert.ctl.merge, kvcert.ctl.kubeclient")
    assert "kopf" not in loaded
    assert "kubernetes_asyncio" not in loaded  # kvcert.runtime.kube's client: a third of a second


def test_registering_the_commands_loads_nothing_heavy() -> None:
    loaded = _modules_after("import kvcert.ctl.parser")
    assert not {"kubernetes", "cryptography", "pydantic", "yaml"} & loaded
