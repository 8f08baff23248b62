"""Kubernetes Events on Certificates: the same reason strings as the conditions.

Messages are built from scrubbed parts (kvcert.keyvault.errors); as a last line of defence
they are made `logs.safe` (no PEM block, bearer or PoP credential, or JWT) and cut at
MESSAGE_LIMIT characters before they are posted and logged."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kvcert.runtime import logs
from kvcert.runtime.kube import GROUP, VERSION
from kvcert.runtime.kubecalls import REQUEST_TIMEOUT, KubeObserver

log = logging.getLogger("kvcert.events")
COMPONENT = "kvcert"
MESSAGE_LIMIT = 1000


class EventRecorder:
    """Posts core/v1 Events (kubernetes_asyncio, on the event loop: kvcert.runtime.kube); a
    failure to post is logged, never fatal to a reconcile."""

    def __init__(self, api: client.ApiClient, observer: KubeObserver | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self._observer = observer

    async def emit(
        self,
        body: Mapping[str, Any],
        event_type: str,
        reason: str,
        message: str,
        kind: str,
        *,
        request_id: str | None = None,
    ) -> None:
        """Post the Event, and log it: the operator's one log line per transition (INFO for
        Normal, WARNING for Warning), with the request id given or recorded in status."""
        meta = body.get("metadata", {})
        message = logs.safe(message)[:MESSAGE_LIMIT]
        namespace = meta.get("namespace") or "default"
        request_id = request_id or ((body.get("status") or {}).get("operation") or {}).get(
            "requestId"
        )
        log.log(
            logging.INFO if event_type == "Normal" else logging.WARNING,
            "%s %s/%s: %s: %s%s",
            kind,
            meta.get("namespace") or "-",
            meta.get("name"),
            reason,
            message,
            f" (request {request_id})" if request_id else "",
            extra=logs.fields(meta.get("namespace"), meta.get("name"), reason, request_id),
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A plain core/v1 Event as JSON: no generated model to build and walk (issue #17).
        event: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            # The answer is not needed: read raw, not turned into a model (issue #17).
            response: Any = await self._core.create_namespaced_event(
                namespace, event, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            async with response:
                await response.read()
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=response.reason)
        except ApiException as error:
            self._observe(str(error.status or "error"))
            log.warning(
                "could not post event %s on %s: HTTP %s", reason, meta.get("name"), error.status
            )
        except Exception:
            self._observe("error")
            raise
        else:
            self._observe("201")

    def _observe(self, code: str) -> None:
        if self._observer is not None:
            self._observer("create", "events", code)
