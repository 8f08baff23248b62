"""An HTTPS pass-through in front of the local vault that can make the issuer act first.

Some answers only happen in a race: Key Vault refuses a cancellation when the provider finished
between the operator's read and its PATCH. The proxy makes that race deterministic: with
`complete_before_cancel`, it completes the operation (management API) just before it forwards
a cancellation request. Everything else passes through unchanged.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.vault import LocalVault, free_port

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class VaultProxy:
    def __init__(self, vault: LocalVault, *, complete_before_cancel: bool = False) -> None:
        self.vault = vault
        self.complete_before_cancel = complete_before_cancel
        self.port = free_port()
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=_METHODS)])
        tls = vault.data_dir / "tls"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            ssl_certfile=str(tls / "server.crt"),
            ssl_keyfile=str(tls / "server.key"),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> VaultProxy:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the vault proxy did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.body()
        async with httpx.AsyncClient(
            base_url=self.vault.url, verify=self.vault.ssl_context(), timeout=30
        ) as upstream:
            path = request.url.path
            if (
                self.complete_before_cancel
                and request.method == "PATCH"
                and path.endswith("/pending")
                and "authorization" in request.headers
            ):
                await upstream.post(f"/_kvcert{path}/complete", headers=self.vault.auth_headers())
            answer = await upstream.request(
                request.method,
                path,
                params=request.query_params.multi_items(),
                headers=headers,
                content=body,
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        return Response(answer.content, answer.status_code, kept)


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
