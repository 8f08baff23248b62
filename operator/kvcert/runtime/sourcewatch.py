"""The watch on source Secrets labelled `kvcert.io/source: "true"` (mergeFrom, importFrom).

kopf has one watch per resource, and it is spent on the output Secrets (their own server-side
selector, in handlers.py); a label selector cannot OR two labels. So this is a second watch on
Secrets, with the server-side selector `kvcert.io/source=true`: the operator never receives a
Secret that is not labelled so (STYLE "Traps": a client-side filter still streams every Secret).
It asks for metadata only (`PartialObjectMetadata`, the API server's Accept-header conversion,
as client-go's metadata informers do): a source Secret's data (a PFX, a private key) never
reaches this code.

One thread per scope (each namespace of `--namespace`, else one cluster-wide): list, then watch
from the list's resourceVersion with bookmarks; a stream the server ends (`timeout_seconds`) is
resumed from the last resourceVersion; `410 Gone` re-lists; any other failure retries with
backoff (1 s doubling to 60 s). The official client is synchronous, hence threads rather than
the event loop (DESIGN §5: no blocking call on the loop); each change is handed to the loop with
`call_soon_threadsafe`. A change is an ADDED event after the first list, MODIFIED or DELETED,
or, after a re-list, a Secret that appeared, vanished or has another resourceVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from kvcert.runtime.kube import SOURCE_SELECTOR

log = logging.getLogger("kvcert.sources")

OnChange = Callable[[str, str], None]
"""`on_change(namespace, secret_name)`, called on the event loop."""

LIST_AS = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_AS = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
SERVER_TIMEOUT = 300
"""Seconds the API server keeps one watch request open (as kopf's own watches)."""
CONNECT_TIMEOUT = 10.0
BACKOFF_MAX = 60.0


class Gone(Exception):
    """The resourceVersion to watch from is too old (HTTP 410): list again."""


class _Stream(threading.Thread):
    """List and watch labelled Secrets in one scope (a namespace, or None: every namespace)."""

    def __init__(self, core: client.CoreV1Api, namespace: str | None, deliver: OnChange) -> None:
        super().__init__(name=f"kvcert-sources-{namespace or 'all'}", daemon=True)
        self.core = core
        self.namespace = namespace
        self.deliver = deliver
        self.stopped = threading.Event()
        self.listed = threading.Event()
        """Set once the first list has answered (tests and start-up logs)."""
        self.known: dict[tuple[str, str], str] = {}
        """(namespace, name) -> resourceVersion of every labelled Secret seen."""
        self._response: Any = None

    def stop(self) -> None:
        """Ask the thread to end; a blocked read is unblocked by shutting its socket down."""
        self.stopped.set()
        response = self._response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        backoff = 1.0
        version: str | None = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = 1.0
            except Gone:
                version = None
            except Exception as error:  # a watch must outlive any one failure
                if self.stopped.is_set():
                    break
                # Type and status only: a response body may echo what was asked.
                log.warning(
                    "source Secret watch (%s) failed: %s %s; retrying in %.0f s",
                    self.namespace or "all namespaces",
                    type(error).__name__,
                    getattr(error, "status", ""),
                    backoff,
                )
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _call(self, **kwargs: Any) -> Any:
        """One list or watch request, its response unread (urllib3's HTTPResponse, since
        `_preload_content=False`); raises Gone for a 410, ApiException for other failures."""
        kwargs.update(label_selector=SOURCE_SELECTOR, _preload_content=False)
        response: Any
        if self.namespace is None:
            response = self.core.list_secret_for_all_namespaces(**kwargs)
        else:
            response = self.core.list_namespaced_secret(self.namespace, **kwargs)
        self._response = response
        if response.status == 410:
            response.release_conn()
            raise Gone
        if not 200 <= response.status < 300:
            response.release_conn()
            raise client.exceptions.ApiException(status=response.status, reason=response.reason)
        return response

    def _list(self) -> str:
        """List the labelled Secrets; report what changed since the last list (none the first
        time); return the list's resourceVersion."""
        response = self._call(
            _headers={"Accept": LIST_AS}, _request_timeout=(CONNECT_TIMEOUT, 60.0)
        )
        try:
            listed = json.loads(response.data)
        finally:
            response.release_conn()
        current = {
            (meta["namespace"], meta["name"]): str(meta.get("resourceVersion", ""))
            for meta in (item.get("metadata", {}) for item in listed.get("items") or [])
        }
        if self.listed.is_set():
            for key in current.keys() | self.known.keys():
                if current.get(key) != self.known.get(key):
                    self.deliver(*key)
        self.known = current
        self.listed.set()
        return str(listed.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        """Watch from `version` until the server ends the stream; return the last version."""
        response = self._call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=SERVER_TIMEOUT,
            _headers={"Accept": WATCH_AS},
            _request_timeout=(CONNECT_TIMEOUT, SERVER_TIMEOUT + 30.0),
        )
        try:
            for event in _events(response):
                if self.stopped.is_set():
                    break
                version = self._handle(event, version)
        finally:
            response.release_conn()
        return version

    def _handle(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone
            raise client.exceptions.ApiException(status=obj.get("code"), reason=obj.get("reason"))
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or version)
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return version  # BOOKMARK: only the resourceVersion moves on
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if kind == "DELETED":
            self.known.pop(key, None)
        else:
            self.known[key] = version
        self.deliver(*key)
        return version


def _events(response: Any) -> Iterator[dict[str, Any]]:
    for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
        if line.strip():
            yield json.loads(line)


class SourceWatch:
    """The watches of every scope; `on_change` runs on the event loop that called `start`."""

    def __init__(
        self, api: client.ApiClient, namespaces: tuple[str, ...], on_change: OnChange
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._scopes: tuple[str | None, ...] = namespaces or (None,)
        self._on_change = on_change
        self.streams: list[_Stream] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def deliver(namespace: str, name: str) -> None:
            # RuntimeError: the loop is closing, the operator is stopping.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_change, namespace, name)

        self.streams = [_Stream(self._core, scope, deliver) for scope in self._scopes]
        for stream in self.streams:
            stream.start()

    async def close(self, grace: float = 5.0) -> None:
        """Stop every stream and wait (in a thread, at most `grace` s each) for it to end."""
        for stream in self.streams:
            stream.stop()
        for stream in self.streams:
            await asyncio.to_thread(stream.join, grace)
        self.streams = []
