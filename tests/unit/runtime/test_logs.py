"""The operator's log format (kvcert.runtime.logs): one JSON object per line with time, level,
logger, message and the object's namespace/name/reason/requestId; kopf's per-object lines only
at debug."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from kvcert.runtime import logs


def record(message: str, *args: object, level: int = logging.INFO, **extra: object) -> str:
    item = logging.LogRecord("kvcert.events", level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(item, key, value)
    return logs.JsonFormatter().format(item)


def test_a_line_is_one_json_object_with_the_basics() -> None:
    line = record("hello %s\nworld", "there")
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "hello there\nworld"
    assert parsed["level"] == "info"
    assert parsed["logger"] == "kvcert.events"
    assert parsed["time"].endswith("Z")
    assert "T" in parsed["time"]
    assert set(parsed) == {"time", "level", "logger", "message"}


def test_object_fields_from_extra() -> None:
    extra = logs.fields("team-a", "web", "Created", "a768")
    parsed = json.loads(record("created", **extra))
    assert parsed["namespace"] == "team-a"
    assert parsed["name"] == "web"
    assert parsed["reason"] == "Created"
    assert parsed["requestId"] == "a768"
    assert parsed["logger"] == "kvcert.events"  # `name` never shadows the logger


def test_fields_leaves_out_what_is_unknown() -> None:
    assert logs.fields("team-a", "web") == {"k8s_namespace": "team-a", "k8s_name": "web"}
    assert set(json.loads(record("x", **logs.fields(None, "v")))) >= {"name"}


def test_kopf_per_object_records_carry_their_object() -> None:
    ref = {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "Certificate",
        "name": "web",
        "namespace": "team-a",
        "uid": "u",
    }
    parsed = json.loads(record("Handler succeeded.", k8s_ref=ref))
    assert (parsed["namespace"], parsed["name"]) == ("team-a", "web")


def test_exceptions_are_kept_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        item = logging.LogRecord(
            "kvcert.reconcile", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    parsed = json.loads(logs.JsonFormatter().format(item))
    assert parsed["level"] == "error"
    assert "ValueError: boom" in parsed["exception"]


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    levels = {name: logging.getLogger(name).level for name in (logs.PER_OBJECT, *logs.NOISY)}
    filters = list(logging.getLogger(logs.PER_OBJECT).filters)
    yield
    logging.getLogger(logs.PER_OBJECT).filters[:] = filters
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restored")
@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_kopf_per_object_info_only_when_debugging(level: str, shown: bool) -> None:
    logs.configure(level, "json")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger(logs.PER_OBJECT).info("Handler 'certificate_event' succeeded.")
    logging.getLogger("kvcert.events").info("Created", extra=logs.fields("ns", "web", "Created"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    kopf_lines = [line for line in lines if line["logger"] == logs.PER_OBJECT]
    assert [line["level"] for line in kopf_lines] == (["debug"] if shown else [])
    assert {
        "message": "Created",
        "name": "web",
        "namespace": "ns",
        "reason": "Created",
    }.items() <= (next(line for line in lines if line["logger"] == "kvcert.events").items())
    logging.getLogger(logs.PER_OBJECT).warning("Patching failed")
    assert "Patching failed" in stream.getvalue()


@pytest.mark.usefixtures("restored")
def test_text_format_is_the_classic_line() -> None:
    logs.configure("info", "text")
    handler = logging.getLogger().handlers[0]
    assert handler.formatter is not None
    assert handler.formatter._fmt == logs.TEXT_FORMAT
