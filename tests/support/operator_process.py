"""Run `kvcert operator run` as a real subprocess against a cluster, for integration tests.

A subprocess, not an in-process runner: the operator gets its own event loop and can be killed
for real (restart tests), exactly as it runs in a pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType


class OperatorProcess:
    """The operator, started against `kubeconfig`, with its log in a temporary file."""

    def __init__(
        self,
        kubeconfig: Path,
        *,
        env: dict[str, str] | None = None,
        verbose: bool = True,
        args: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.env = env or {}
        self.args = args
        self.verbose = verbose
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="kvcert-operator-")
        self.log_path = Path(self._log_dir.name) / "operator.log"

    def start(self) -> OperatorProcess:
        command = [
            sys.executable,
            "-m",
            "kvcert.cli",
            "operator",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
        ]
        if self.verbose:
            command.append("--verbose")
        command.extend(self.args)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no final writes (the crash case)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, *, kill: bool = False) -> None:
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 6000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-tail:]

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._log_dir.cleanup()
