"""Crash at every write (issue #18 §1): nothing lost, nothing created twice.

For every crash point of kvcert.runtime.crashpoints, plus the second status write (`#2`, the
one after the Secret's), in both vault profiles, an operator started with
`KVCERT_CRASH_AT=<point>` drives one Certificate until it exits there (code 86); then an
operator WITHOUT the setting is started over every namespace, and each Certificate must end as if
nothing had happened (crashlab.check):
- Ready (Issued); the output Secret's leaf matches its key, the version Key Vault holds and
  status.certificate (x5t, version); the leaf merged or imported is the one the test gave;
- one create (or one import) per Certificate and one merge per chain, counted per name from
  the operators' Key Vault request logs, in total by each vault (`/_kvcert/stats`), and as one
  version in Key Vault;
- no pending operation left in progress, no certificate in Key Vault that no Certificate holds;
- at most MAX_EVENTS_PER_REASON events per reason;
- `finalizer`: the Certificate gone and its Key Vault certificate deleted (soft-deleted).

The session `operator` watches every namespace of the session API server, so this module has a
lab of its own (as timetravel.Lab and test_leader.py do): a control plane and a LocalVault per
profile. Each case has a namespace with a KeyVault `main` and a crashing operator of its own
(`--namespace`), PARALLEL at a time. The restart is one operator over all namespaces:
restarting after every kind of crash at once is the harder test, and costs one start, not 32.

The table `point | profile | outcome` is printed (`pytest -s` or `-rA`), written to
.bench/crash-table.json and repeated in the terminal summary (without pytest-xdist).
"""

from __future__ import annotations

import contextlib
import json
import resource
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kvcert.runtime import crashpoints
from tests.integration.operator.crashlab import GONE, Case, Drive, Lab, Row, check, crash, recover
from tests.integration.operator.harness import CREATES, MERGES, VaultOps, own_control_plane
from tests.integration.operator.timetravel import external_cluster
from tests.support.vault import LocalVault

pytestmark = [external_cluster, pytest.mark.xdist_group("test_crash_points")]

PROFILES = ("documented", "service")
POINTS = (*crashpoints.POINTS, "before:status#2", "after:status#2")
PARALLEL = 4
"""Crashing operators at a time: a start costs about 2 s of CPU, the rest is waiting."""
IMPORTS = "POST /certificates/{name}/import"
TABLE_FILE = Path(__file__).resolve().parents[3] / ".bench" / "crash-table.json"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A control plane with the CRDs and one LocalVault per profile; all stopped afterwards."""
    directory = tmp_path_factory.mktemp("crash-points")
    with contextlib.ExitStack() as stack:
        plane, api = own_control_plane(stack, directory / "cp")
        vaults, ops = {}, {}
        for profile in PROFILES:
            vaults[profile] = stack.enter_context(LocalVault.start(profile=profile, ca_delay=600))
            ops[profile] = VaultOps(vaults[profile])
            stack.callback(ops[profile].close)
        yield Lab(api, plane.kubeconfig, directory, vaults, ops)


@dataclass
class Campaign:
    rows: dict[Case, Row]
    restart_log: str
    restart_alive: bool
    seconds: dict[str, float]
    """Wall seconds of the crashes and of the restart with the checks; CPU of the operators."""


@pytest.fixture(scope="module")
def campaign(lab: Lab, request: pytest.FixtureRequest) -> Campaign:
    """Every case crashed (PARALLEL at a time), one restart, every end state checked."""
    started = time.monotonic()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    drives = [Drive(lab, Case(point, profile)) for point in POINTS for profile in PROFILES]
    rows = {drive.case: Row(drive.case) for drive in drives}

    def one(drive: Drive) -> None:
        try:
            crash(lab, drive, rows[drive.case])
        except BaseException as error:  # pytest.fail and errors alike go in the row
            rows[drive.case].problems.append(f"driving it failed: {error!r}")

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        list(pool.map(one, drives))
    crashed = time.monotonic()
    log, alive = recover(lab, drives, rows)
    for drive in drives:
        check(lab, drive, rows[drive.case])
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: the operators
    seconds = {
        "crashes": crashed - started,
        "restart": time.monotonic() - crashed,
        "operator CPU": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime,
    }
    result = Campaign(rows, log, alive, seconds)
    publish(result, request.config)
    return result


def publish(result: Campaign, config: pytest.Config) -> None:
    """Print the table, write it as JSON, and repeat it in the terminal summary."""
    took = ", ".join(f"{what} {value:.1f} s" for what, value in result.seconds.items())
    lines = [f"crash table: {len(result.rows)} cases; {took}", "point | profile | outcome"]
    lines += [f"{c.point} | {c.profile} | {row.outcome}" for c, row in result.rows.items()]
    text = "\n".join(lines)
    print("\n" + text)
    rows = [
        {
            "point": case.point,
            "profile": case.profile,
            "kind": case.kind,
            "exit": row.exit_code,
            "crashSeconds": round(row.crash_seconds, 1),
            "atCrash": row.at_crash,
            "requests": dict(row.requests),
            "events": dict(row.events),
            "problems": row.problems,
            "untold": row.unannounced(),
        }
        for case, row in result.rows.items()
    ]
    TABLE_FILE.parent.mkdir(exist_ok=True)
    TABLE_FILE.write_text(json.dumps({"seconds": result.seconds, "rows": rows}, indent=1) + "\n")

    class Summary:
        @pytest.hookimpl(trylast=True)
        def pytest_terminal_summary(self, terminalreporter: Any) -> None:
            terminalreporter.section("crash table (issue #18 §1)")
            terminalreporter.write_line(text)

    config.pluginmanager.register(Summary(), "kvcert-crash-table")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_the_point_loses_nothing_and_creates_nothing_twice(
    campaign: Campaign, point: str, profile: str
) -> None:
    row = campaign.rows[Case(point, profile)]
    assert row.exit_code == crashpoints.CRASH_EXIT_CODE, row.outcome + "\n" + row.log_tail
    assert not row.problems, row.outcome + "\n" + row.log_tail


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("point", POINTS)
def test_what_kvcert_did_in_key_vault_is_told_after_the_restart(
    campaign: Campaign, point: str, profile: str
) -> None:
    """A create is told by Created or Adopted, an import by Imported or Adopted, a merge by
    Merged and status.operation.merge.result: Merged, whichever process did it."""
    row = campaign.rows[Case(point, profile)]
    assert row.unannounced() is None, row.outcome


@pytest.mark.parametrize("profile", PROFILES)
def test_the_vault_counts_one_create_import_and_merge_per_certificate(
    campaign: Campaign, lab: Lab, profile: str
) -> None:
    cases = [case for case in campaign.rows if case.profile == profile]
    kinds = Counter(case.kind for case in cases)
    stats = lab.ops[profile].stats()
    assert stats.get(CREATES, 0) == len(cases) - kinds["import"]
    assert stats.get(IMPORTS, 0) == kinds["import"]
    assert stats.get(MERGES, 0) == kinds["manual"]
    assert held_names(lab.ops[profile]) == {c.name for c in cases if c.kind not in GONE}


def held_names(ops: VaultOps) -> set[str]:
    """Every certificate name in the vault, pending ones included (25: Key Vault's page)."""
    listed = ops.ok("GET", "/certificates?includePending=true&maxresults=25")
    assert listed.get("nextLink") is None, "more certificates than one page"
    return {item["id"].rstrip("/").rsplit("/", 1)[-1] for item in listed.get("value", [])}


def test_the_restarted_operator_stayed_up_and_raised_nothing(campaign: Campaign) -> None:
    assert campaign.restart_alive, campaign.restart_log[-4000:]
    for needle in ("reconcile failed", "reconcile did not settle", "Traceback"):
        assert needle not in campaign.restart_log, needle
