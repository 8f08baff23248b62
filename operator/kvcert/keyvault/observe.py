"""What the Key Vault layer tells an observer about each HTTP exchange (for metrics).

The keyvault package knows nothing of Prometheus or of the operator: a caller that wants to count
requests passes a `RequestObserver` to KeyVaultClient, and VaultSession calls it once per HTTP
exchange (each retry and each challenge probe is an exchange of its own). What it is given is
safe to use as metric labels: the vault's host (no scheme, port or path), a route template with
no object names in it, and the status code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

OTHER_ROUTE = "other"
"""The operation name of a path none of the templates below matches."""
TRANSPORT_ERROR = "error"
"""The code of an exchange that got no HTTP answer (connection, TLS or timeout failure)."""

_CERTIFICATE_SUFFIXES = frozenset({"create", "pending", "import", "policy"})


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP exchange with a vault.

    - `host`: the vault URL's host name only, e.g. "myvault.vault.azure.net" or "127.0.0.1".
    - `operation`: METHOD plus route template, e.g. "GET /certificates/{name}/pending".
    - `code`: the HTTP status as text ("200", "429"), or TRANSPORT_ERROR.
    - `seconds`: wall time from sending the request to the end of the response body.
    """

    host: str
    operation: str
    code: str
    seconds: float


RequestObserver = Callable[[RequestRecord], None]
"""Called on the event loop after every exchange; must not block and must not raise."""


def vault_host(vault_url: str) -> str:
    """`https://name.vault.azure.net:443` -> `name.vault.azure.net` (lowercase, no port)."""
    return (urlsplit(vault_url).hostname or "").lower()


def route(method: str, path: str) -> str:
    """A stable operation name for a Key Vault request path: object names and versions become
    `{name}` and `{version}`, so the result is a small closed set (OTHER_ROUTE otherwise).

    >>> route("GET", "/certificates/web/pending")
    'GET /certificates/{name}/pending'
    >>> route("GET", "/secrets/web/0123abcd")
    'GET /secrets/{name}/{version}'
    """
    parts = path.strip("/").split("/")
    template = _template(parts, trailing_slash=path.endswith("/") and len(parts) == 2)
    return f"{method.upper()} {template}" if template else OTHER_ROUTE


def _template(parts: list[str], *, trailing_slash: bool) -> str | None:
    head, rest = parts[0], parts[1:]
    if head == "certificates" and rest[:1] == ["issuers"] and len(rest) == 2:
        return "/certificates/issuers/{name}"
    if head == "deletedcertificates" and len(rest) == 2 and rest[1] == "recover":
        return "/deletedcertificates/{name}/recover"
    if head == "secrets" and len(rest) == 2:
        return "/secrets/{name}/{version}"
    if head != "certificates" or not rest or not rest[0]:
        return None
    if len(rest) == 1:
        return "/certificates/{name}/" if trailing_slash else "/certificates/{name}"
    if len(rest) == 2:
        if rest[1] in _CERTIFICATE_SUFFIXES:
            return f"/certificates/{{name}}/{rest[1]}"
        return "/certificates/{name}/{version}" if rest[1] else "/certificates/{name}/"
    if len(rest) == 3 and rest[1:] == ["pending", "merge"]:
        return "/certificates/{name}/pending/merge"
    return None
