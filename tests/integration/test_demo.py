"""`make demo` stays true: `kvcert dev up --once` runs the whole local flow to Ready."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_brings_every_example_certificate_to_ready(tmp_path):
    command = [sys.executable, "-m", "kvcert.cli", "dev", "up", "--once", "--ca-delay", "3"]
    result = subprocess.run(
        [*command, "--dir", str(tmp_path / "demo"), "--timeout", "150"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all certificates are Ready" in result.stdout
    assert "kubernetes.io/tls" in result.stdout
    assert "CertificateIssuer mydigicert: Ready" in result.stdout
    assert "legacy-web" in result.stdout  # a certificate made outside kvcert, source: Existing
