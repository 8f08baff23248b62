"""The reconcile path's Kubernetes client (kubernetes_asyncio): merge patches, no per-request
proxy or netrc lookups, the operator's user agent, and errors as the synchronous client's."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from kvcert.runtime import kube, kubecalls, kubeconfig

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


async def test_the_client_ignores_the_proxy_environment_and_says_who_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    api = await kubeconfig.load_async_api_client(str(path))
    try:
        session = api.rest_client.pool_manager
        assert session.trust_env is False  # no proxy/netrc lookup in a thread per request
        assert api.user_agent == kubeconfig.USER_AGENT
        assert api.configuration.connection_pool_maxsize == kubeconfig.POOL_SIZE
    finally:
        await api.close()


class _Response:
    """What kubernetes_asyncio returns with _preload_content=False: aiohttp's response."""

    def __init__(self, status: int, reason: str, content: bytes) -> None:
        self.status, self.reason, self._content = status, reason, content

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._content


@pytest.mark.parametrize(
    ("status", "content", "outcome"),
    [
        pytest.param(200, b'{"metadata": {"resourceVersion": "8"}}', "8", id="answered"),
        pytest.param(409, b'{"message": "the object has been modified"}', 409, id="conflict"),
        pytest.param(404, b"", 404, id="gone"),
    ],
)
async def test_status_patches_are_merge_patches_read_as_json(
    status: int, content: bytes, outcome: object
) -> None:
    calls: list[dict[str, object]] = []
    seen: list[tuple[str, str, str]] = []

    class _Custom:
        async def patch_namespaced_custom_object_status(
            self, *args: object, **kwargs: object
        ) -> _Response:
            calls.append(kwargs)
            return _Response(status, "Reason", content)

    client = kube.Kube.__new__(kube.Kube)
    client._custom = _Custom()  # type: ignore[assignment]
    client._observer = lambda *call: seen.append(call)
    if isinstance(outcome, int):
        with pytest.raises(ApiException) as raised:
            await client.patch_certificate_status("ns", "web", {"a": 1}, resource_version="7")
        assert raised.value.status == outcome
        assert raised.value.body is None  # never the answer's text: it can echo what was sent
    else:
        body = await client.patch_certificate_status("ns", "web", {"a": 1}, resource_version="7")
        assert body["metadata"]["resourceVersion"] == outcome
    assert calls == [
        {
            "_preload_content": False,
            "_content_type": "application/merge-patch+json",
            "_request_timeout": kubecalls.REQUEST_TIMEOUT,
        }
    ]
    assert seen == [("patch", "certificates/status", str(status))]
