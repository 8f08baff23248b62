"""The operator's log: text for people, or one JSON object per line for log pipelines.

What is logged at INFO is one line per meaningful transition, the same as the Events the
operator posts (`kvcert.events`, with namespace/name, reason and request id), never one line
per watch event: kopf's per-object INFO lines ("Handler 'certificate_event' succeeded.", on
the `kopf.objects` logger) become DEBUG lines, shown only with `--log-level debug`.

JSON lines carry `time` (RFC 3339, UTC, milliseconds), `level`, `logger` and `message`, plus
`namespace`, `name`, `reason` and `requestId` when the record knows them: from `extra=` (see
`fields`) or from the `k8s_ref` kopf attaches to its per-object records.

Both formats redact, as a last line of defence, what must never be in a log whoever logged it
(kvcert, kopf or a library, in a message or a traceback): PEM blocks, bearer and PoP
credentials and JWTs (kvcert.keyvault.errors.redact, without its field rule). Lines without a
hint of one (`-----`, `eyJ`, bearer, PoP) cost one regular-expression search.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = (
    "kubernetes.client.rest",
    "kubernetes_asyncio",
    "aiohttp",
    "urllib3",
    "httpx",
    "httpcore",
    "azure",
)
"""Libraries that log every HTTP call at INFO or DEBUG: WARNING and up, always (even with
--verbose: kubernetes_asyncio logs each response body at DEBUG, Secrets' keys included)."""
PER_OBJECT = "kopf.objects"
"""kopf's per-object logger: one INFO line per handled watch event."""
_EXTRA_KEYS = {
    "k8s_namespace": "namespace",
    "k8s_name": "name",
    "reason": "reason",
    "request_id": "requestId",
}


_HINT = re.compile(r"-----|eyJ|(?i:bearer|\bpop\b)")


def safe(text: str) -> str:
    """`text` with PEM blocks, bearer and PoP credentials and JWTs redacted."""
    if not _HINT.search(text):
        return text
    # Imported here: every `kvcert` command imports this module (the CLI registers the
    # operator's options), and the Key Vault client package costs a second to import.
    from kvcert.keyvault.errors import redact  # noqa: PLC0415

    return redact(text, fields=False)


def fields(
    namespace: str | None = None,
    name: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """`extra=` for a record about one object (LogRecord reserves `name`, hence `k8s_name`)."""
    given = {
        "k8s_namespace": namespace,
        "k8s_name": name,
        "reason": reason,
        "request_id": request_id,
    }
    return {key: value for key, value in given.items() if value}


class TextFormatter(logging.Formatter):
    """logging's own format (TEXT_FORMAT), the whole text, traceback included, made `safe`."""

    def format(self, record: logging.LogRecord) -> str:
        return safe(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped); message,
    exception and stack made `safe`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": safe(record.getMessage()),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            for key in ("namespace", "name"):
                if ref.get(key):
                    line[key] = str(ref[key])
        for attribute, key in _EXTRA_KEYS.items():
            value = getattr(record, attribute, None)
            if value:
                line[key] = str(value)
        if record.exc_info:
            line["exception"] = safe(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = safe(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class PerObjectToDebug(logging.Filter):
    """kopf's per-object INFO records become DEBUG records (dropped unless debugging): kopf
    says "Handler ... succeeded." once per watch event, which is noise at INFO. Its warnings
    and errors pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(PER_OBJECT).isEnabledFor(logging.DEBUG)


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Set up the root logger once, before kopf starts; `level` is debug/info/warning/error."""
    numeric = getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, numeric))
    per_object = logging.getLogger(PER_OBJECT)
    if not any(isinstance(item, PerObjectToDebug) for item in per_object.filters):
        per_object.addFilter(PerObjectToDebug())
