"""The operator's clock: the system time plus a test offset read from KVCERT_CLOCK_FILE."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvcert.runtime.clock import Clock, read_offset
from kvcert.runtime.settings import OperatorSettings
from tests.support.operator_process import OperatorProcess


def _near(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) < 2


def test_without_a_file_the_clock_is_the_system_clock_in_utc():
    clock = Clock()
    now = clock.now()
    assert now.tzinfo is UTC
    assert _near(now, datetime.now(UTC))
    assert clock.refresh() is False


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        pytest.param(None, 0.0, id="a missing file is no offset"),
        pytest.param("", 0.0, id="an empty file is no offset"),
        pytest.param("3600\n", 3600.0, id="whole seconds"),
        pytest.param("1.5", 1.5, id="a float"),
        pytest.param("-60", -60.0, id="backwards"),
    ],
)
def test_the_offset_is_the_number_of_seconds_in_the_file(tmp_path: Path, text, offset):
    path = tmp_path / "clock"
    if text is not None:
        path.write_text(text)
    assert read_offset(path) == offset
    clock = Clock(path)
    assert clock.offset == offset
    assert _near(clock.now(), datetime.now(UTC) + timedelta(seconds=offset))


def test_a_changed_file_is_noticed_once_and_garbage_keeps_the_last_offset(tmp_path: Path):
    path = tmp_path / "clock"
    clock = Clock(path)
    path.write_text("86400")
    assert clock.refresh() is True
    assert clock.offset == 86400
    assert clock.refresh() is False  # unchanged since the last look
    path.write_text("not a number")
    assert clock.refresh() is False
    assert clock.offset == 86400


async def test_follow_calls_back_after_the_file_changes(tmp_path: Path):
    path = tmp_path / "clock"
    clock = Clock(path)
    changed = asyncio.Event()
    task = asyncio.create_task(clock.follow(changed.set, interval=0.01))
    try:
        await asyncio.sleep(0.05)
        assert not changed.is_set()
        (tmp_path / "next").write_text("30")
        os.replace(tmp_path / "next", path)
        await asyncio.wait_for(changed.wait(), 2)
        assert clock.offset == 30
    finally:
        task.cancel()


async def test_follow_without_a_file_returns_at_once():
    await asyncio.wait_for(Clock().follow(lambda: None), 1)


def test_the_setting_is_absent_by_default_and_read_from_the_environment():
    assert OperatorSettings.load(environ={}).clock_file is None
    loaded = OperatorSettings.load(environ={"KVCERT_CLOCK_FILE": "/tmp/c"})
    assert loaded.clock_file == Path("/tmp/c")


def test_the_test_harness_advances_the_operators_clock_through_the_file(tmp_path: Path):
    path = tmp_path / "clock"
    process = OperatorProcess(tmp_path / "kubeconfig", clock_file=path)
    assert process.env["KVCERT_CLOCK_FILE"] == str(path)
    clock = Clock(path)
    assert process.advance_clock(3600) == 3600
    assert process.advance_clock(0.5) == 3600.5
    assert clock.refresh() is True
    assert clock.offset == 3600.5
    assert [p.name for p in tmp_path.iterdir()] == ["clock"]  # no temporary file left behind
    assert "KVCERT_CLOCK_FILE" not in OperatorProcess(tmp_path / "kubeconfig").env
