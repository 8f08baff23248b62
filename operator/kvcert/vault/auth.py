"""Key Vault's challenge authentication (DESIGN §3.3), as pure ASGI middleware.

It answers before routing, body reading or validation, because the SDK's first request to a host
is bodiless and unauthenticated and expects exactly this 401 to learn where to get a token.
The challenge's `resource` is derived from the Host header so the SDK's default
`verify_challenge_resource=True` passes for multi-label host names.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from kvcert.vault.errors import NO_BEARER_MESSAGE, REJECTED_BEARER_MESSAGE

AUTHORITY = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_RESOURCE = "https://vault.azure.net"


def challenge_resource(host: str) -> str:
    """`kv.vault.local:8443` -> `https://vault.local:8443`; IPs and single labels -> Azure's."""
    hostname, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not hostname or not port.isdigit():
        hostname, port = host, ""
    bare = hostname.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return DEFAULT_RESOURCE
    labels = bare.split(".")
    if len(labels) < 2 or not all(labels):
        return DEFAULT_RESOURCE
    rest = ".".join(labels[1:])
    return f"https://{rest}:{port}" if port and port != "443" else f"https://{rest}"


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("bearer", "pop") and token.strip():
                return token.strip()
    return None


class ChallengeAuth:
    """Let through requests with an accepted bearer token; answer the rest with the challenge.

    `token=None` accepts any bearer token (the local vault without --token). `on_challenge` is
    called for every 401, for the request counters.
    """

    def __init__(self, app: ASGIApp, token: str | None, on_challenge: object = None) -> None:
        self.app = app
        self.token = token
        self.on_challenge = on_challenge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        token = bearer_token(headers)
        if token is not None and (
            self.token is None or hmac.compare_digest(token.encode(), self.token.encode())
        ):
            await self.app(scope, receive, send)
            return
        if callable(self.on_challenge):
            self.on_challenge()
        host = next((v.decode("latin-1") for k, v in headers if k == b"host"), "localhost")
        message = NO_BEARER_MESSAGE if token is None else REJECTED_BEARER_MESSAGE
        body = json.dumps(
            {"error": {"code": "Unauthorized", "message": message}}, separators=(",", ":")
        ).encode()
        challenge = f'Bearer authorization="{AUTHORITY}", resource="{challenge_resource(host)}"'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
