"""TEST-ONLY crash points (kvcert.runtime.crashpoints, issue #18 §1): what KVCERT_CRASH_AT
accepts, how OperatorSettings reads it, and when an armed point exits the process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kvcert.runtime import crashpoints
from kvcert.runtime.settings import OperatorSettings


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        pytest.param(None, None, id="unset is disarmed"),
        pytest.param("", None, id="empty is disarmed"),
        pytest.param("before:intent", ("before:intent", 1), id="a point alone is its first reach"),
        pytest.param("after:finalizer", ("after:finalizer", 1), id="the last write's point"),
        pytest.param("after:status#2", ("after:status", 2), id="#N is the N-th reach"),
        pytest.param("before:merge#1", ("before:merge", 1), id="#1 is the same as no count"),
        pytest.param("after:secret#12", ("after:secret", 12), id="a count of two digits"),
    ],
)
def test_a_crash_point_is_parsed(value: str | None, parsed: tuple[str, int] | None) -> None:
    assert crashpoints.parse(value) == parsed


@pytest.mark.parametrize("point", crashpoints.POINTS)
def test_every_point_names_a_write_before_or_after(point: str) -> None:
    when, _, write = point.partition(":")
    assert when in ("before", "after")
    assert write in crashpoints.WRITES
    assert crashpoints.parse(point) == (point, 1)


def test_there_is_a_point_before_and_after_each_write() -> None:
    assert len(crashpoints.POINTS) == 2 * len(crashpoints.WRITES) == len(set(crashpoints.POINTS))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("create", "must be one of", id="a write without before or after"),
        pytest.param("during:create", "must be one of", id="a moment other than before/after"),
        pytest.param("before:delete", "must be one of", id="a write that has no point"),
        pytest.param("Before:create", "must be one of", id="case matters"),
        pytest.param(" before:create", "must be one of", id="no surrounding blanks"),
        pytest.param("before:create#0", "must be positive", id="a count of zero"),
        pytest.param("before:create#-1", "must be positive", id="a negative count"),
        pytest.param("before:create#two", "must be positive", id="a count that is not a number"),
        pytest.param("before:create#1.5", "must be positive", id="a fractional count"),
        pytest.param("before:create#1#2", "must be positive", id="two counts"),
        pytest.param("#2", "must be one of", id="a count without a point"),
        pytest.param(
            "before:create#\u00b2",
            "must be positive",
            id="a superscript digit",
        ),
    ],
)
def test_a_bad_crash_point_is_refused_naming_the_setting(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        crashpoints.parse(value)
    assert "KVCERT_CRASH_AT" in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "crash_at"),
    [
        pytest.param({}, None, id="absent by default"),
        pytest.param({"KVCERT_CRASH_AT": ""}, None, id="empty is absent"),
        pytest.param({"KVCERT_CRASH_AT": "after:create"}, ("after:create", 1), id="a point"),
        pytest.param({"KVCERT_CRASH_AT": "before:status#3"}, ("before:status", 3), id="#N"),
    ],
)
def test_operator_settings_read_kvcert_crash_at_once(
    environ: dict[str, str], crash_at: tuple[str, int] | None
) -> None:
    assert OperatorSettings.load(environ=environ).crash_at == crash_at


def test_operator_settings_default_to_no_crash_point() -> None:
    assert OperatorSettings().crash_at is None


@pytest.mark.parametrize("value", ["after:nothing", "after:create#0"])
def test_operator_settings_refuse_a_bad_kvcert_crash_at(value: str) -> None:
    with pytest.raises(ValueError, match="KVCERT_CRASH_AT"):
        OperatorSettings.load(environ={"KVCERT_CRASH_AT": value})


class Exited(Exception):
    """What the patched os._exit raises instead of ending the test process."""


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """os._exit replaced by a recorder that raises Exited; the crash point disarmed after."""
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    yield codes
    crashpoints.arm(None)


def test_a_disarmed_process_never_exits(exits: list[int]) -> None:
    crashpoints.arm(None)
    for point in crashpoints.POINTS:
        crashpoints.reached(point)
    assert exits == []


def test_an_armed_point_exits_with_the_crash_code_on_its_first_reach(exits: list[int]) -> None:
    crashpoints.arm(("after:create", 1))
    crashpoints.reached("before:create")  # another point: nothing
    with pytest.raises(Exited):
        crashpoints.reached("after:create")
    assert exits == [crashpoints.CRASH_EXIT_CODE] == [86]


def test_an_armed_count_exits_on_the_n_th_reach_only(exits: list[int]) -> None:
    crashpoints.arm(("before:status", 3))
    crashpoints.reached("before:status")
    crashpoints.reached("after:status")  # another point does not count
    crashpoints.reached("before:status")
    assert exits == []
    with pytest.raises(Exited):
        crashpoints.reached("before:status")
    assert exits == [86]


def test_arming_says_so_in_the_log(exits: list[int], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="kvcert.crashpoints"):
        crashpoints.arm(("before:secret", 2))
    assert "TEST-ONLY crash point armed: before:secret (reach 2)" in caplog.text
