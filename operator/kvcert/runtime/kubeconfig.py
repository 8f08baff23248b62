"""The operator's Kubernetes clients: in-cluster config in a pod, else the kubeconfig.

Two clients: kubernetes_asyncio for the reconcile path (kvcert.runtime.kube.Kube, Events) and
the synchronous official client for what runs in threads of its own (the source Secret watch,
leader election). Both identify as USER_AGENT and keep POOL_SIZE connections.
"""

from __future__ import annotations

import os
from typing import cast

from kubernetes import client, config
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio import config as async_config

from kvcert import __version__

USER_AGENT = f"kvcert-operator/{__version__}"
"""What the API server's audit log shows for the operator's own requests (kopf's say kopf/)."""


POOL_SIZE = 32
"""Kubernetes calls in flight at once: the worker threads (handlers.configure) and the client's
connection pool, sized alike. A pool smaller than the threads (the client's default is 5 per
core) drops a connection after each call beyond it, and the next call pays a TLS handshake."""


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config inside a pod, else KUBECONFIG / ~/.kube/config; user agent USER_AGENT;
    a connection pool of POOL_SIZE."""
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api = client.ApiClient(configuration)
    else:
        # The client reads KUBECONFIG once, when it is imported; read it now instead.
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        api = cast(
            client.ApiClient,
            config.new_client_from_config(config_file=path, client_configuration=configuration),  # type: ignore[no-untyped-call]
        )
    api.user_agent = USER_AGENT
    return api


async def load_async_api_client(kubeconfig: str | None = None) -> async_client.ApiClient:
    """The reconcile path's client (kubernetes_asyncio), configured as `load_api_client`;
    call on the event loop that will use it, and `await api.close()` when done."""
    configuration = async_client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        async_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        await async_config.load_kube_config(config_file=path, client_configuration=configuration)
    api = async_client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    ignore_proxy_environment(api)
    return api


def ignore_proxy_environment(api: async_client.ApiClient) -> None:
    """Stop aiohttp reading HTTP(S)_PROXY and ~/.netrc for every request.

    kubernetes_asyncio opens its aiohttp session with `trust_env=True`, and aiohttp then looks
    up the proxy environment and the netrc file in a worker thread on *each* request: in the
    profile of a 1,000-certificate run, that thread hop was the largest single cost of a
    Kubernetes call (issue #17). The API server is reached as the kubeconfig says (its `proxy-url`
    is still honoured by kubernetes_asyncio itself); the environment's proxy is for Key Vault.
    aiohttp has no public setter, hence the attribute (pinned by
    tests/unit/runtime/test_kube_client.py)."""
    session = api.rest_client.pool_manager
    session._trust_env = False
