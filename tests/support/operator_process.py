"""Run `kvcert operator run` as a real subprocess against a cluster, for integration tests.

A subprocess, not an in-process runner: the operator gets its own event loop and can be killed
for real (restart tests), exactly as it runs in a pod.

With `clock_file`, the operator's clock (kvcert.runtime.clock, `KVCERT_CLOCK_FILE`, test-only)
is the system time plus the seconds in that file: `advance_clock(seconds)` moves it forward and
the operator re-evaluates its scheduled reconciles within ~0.2 s, instead of the test sleeping.
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
        clock_file: Path | None = None,
        module: str = "kvcert.cli",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.module = module
        self.env = dict(env or {})
        self.clock_file = clock_file
        if clock_file is not None:
            self.env["KVCERT_CLOCK_FILE"] = str(clock_file)
        self.args = args
        self.verbose = verbose
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="kvcert-operator-")
        self.log_path = Path(self._log_dir.name) / "operator.log"

    def start(self) -> OperatorProcess:
        command = [
            sys.executable,
            "-m",
            self.module,
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

    def clock_offset(self) -> float:
        """Seconds the operator's clock is ahead of the system clock (0 without a clock file)."""
        if self.clock_file is None or not self.clock_file.exists():
            return 0.0
        text = self.clock_file.read_text().strip()
        return float(text) if text else 0.0

    def advance_clock(self, seconds: float) -> float:
        """Move the operator's clock `seconds` forward (negative: back); returns the new offset.

        Written atomically (a temporary file renamed over the clock file), so the operator never
        reads half a number. Needs `clock_file`."""
        if self.clock_file is None:
            raise RuntimeError("advance_clock needs an OperatorProcess started with clock_file")
        offset = self.clock_offset() + seconds
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".clock-", dir=self.clock_file.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{offset!r}\n")
        os.replace(temporary, self.clock_file)
        return offset

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the process to end by itself (a crash point, a lost
        Lease); its exit code, or None if it is still running then (it is left running)."""
        if self.process is None:
            raise RuntimeError("wait_exit needs a started OperatorProcess")
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

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
