"""The chart's alert rules and dashboard, as rendered: `promtool check rules`, `promtool test
rules` on the unit tests in tests/integration/alerts/tests.yaml, and every kvcert_* metric they
name exists in kvcert.runtime.metrics. promtool comes from hack/promtool.sh (`make promtool`);
no API server is needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kvcert.devcluster.binaries import default_bin_dir
from kvcert.runtime.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "kvcert-operator"
UNIT_TESTS = Path(__file__).parent / "alerts" / "tests.yaml"
MONITORING = ("monitoring.coreos.com/v1/PrometheusRule", "monitoring.coreos.com/v1/ServiceMonitor")
ALERTS = {
    "KvcertCertificateExpiringNotRenewed",
    "KvcertCertificateNotReady",
    "KvcertCertificateOperationFailed",
    "KvcertKeyVaultThrottled",
    "KvcertNoLeader",
}
METRIC_NAME = re.compile(r"\bkvcert_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _tool(name: str, how: str) -> Path:
    path = default_bin_dir() / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} is missing at {path}: {how}")
    return path


def _render(*values: str) -> list[dict[str, Any]]:
    helm = _tool("helm", "build it with `bash hack/control-plane.sh --node`")
    args = [arg for api in MONITORING for arg in ("--api-versions", api)]
    args += [arg for value in values for arg in ("--set", value)]
    text = subprocess.run(
        [str(helm), "template", "kvcert", str(CHART), "--namespace", "kvcert-system", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [obj for obj in yaml.safe_load_all(text) if obj]


def _rules() -> dict[str, Any]:
    rules = [obj for obj in _render() if obj["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    spec: dict[str, Any] = rules[0]["spec"]
    return spec


def _known_metrics() -> set[str]:
    """Metric names as exposed (a counter's with `_total`), whether or not a series exists."""
    families = list(Metrics().registry.collect())
    return {f.name for f in families} | {f"{f.name}_total" for f in families if f.type == "counter"}


def _base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_the_alerts_pass_promtool_check_and_their_unit_tests(tmp_path: Path) -> None:
    promtool = _tool("promtool", "build it with `bash hack/promtool.sh` (`make promtool`)")
    spec = _rules()
    assert {rule["alert"] for group in spec["groups"] for rule in group["rules"]} == ALERTS
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    shutil.copy(UNIT_TESTS, tmp_path / "tests.yaml")
    for args in (("check", "rules", "rules.yaml"), ("test", "rules", "tests.yaml")):
        result = subprocess.run(
            [str(promtool), *args], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # Every alert has a unit test.
    tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert tested == ALERTS


def test_every_metric_the_rules_and_the_dashboard_name_exists() -> None:
    known = _known_metrics()
    spec = _rules()
    exprs = [rule["expr"] for group in spec["groups"] for rule in group["rules"]]
    dashboards = [
        obj for obj in _render("metrics.dashboard.enabled=true") if obj["kind"] == "ConfigMap"
    ]
    assert len(dashboards) == 1
    dashboard = json.loads(dashboards[0]["data"]["kvcert.json"])
    exprs += [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    exprs += [str(var.get("query", "")) for var in dashboard["templating"]["list"]]
    named = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert named, "no kvcert_* metric named"
    unknown = {name for name in named if name not in known and _base(name) not in known}
    assert not unknown, f"named but not exported: {sorted(unknown)}"
