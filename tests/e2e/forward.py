"""A TCP forwarder from this machine's loopback into the test cluster's network namespace.

The listening socket is made in the caller's namespace; then the process enters the cluster's
namespace (setns), so every socket it connects from there on lives inside it. The tests thus
reach the API server and the local vault at 127.0.0.1:PORT with their usual Python clients,
while nothing inside the namespace is exposed beyond this machine's loopback.

usage: python -m tests.e2e.forward NETNS_PATH TARGET_HOST:PORT [TARGET_HOST:PORT ...]
Prints one line `LOCAL_PORT TARGET` per target once listening, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

CLONE_NEWNET = 0x40000000


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({path}): {os.strerror(error)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _handler(host: str, port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return handle


async def _serve(listeners: list[tuple[socket.socket, str, int]]) -> None:
    servers = [
        await asyncio.start_server(_handler(host, port), sock=sock)
        for sock, host, port in listeners
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    netns, targets = argv[0], argv[1:]
    listeners = []
    for target in targets:
        host, _, port = target.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        listeners.append((sock, host, int(port)))
    _setns(netns)  # from here on, new sockets are made inside the cluster's namespace
    for sock, host, port in listeners:
        print(sock.getsockname()[1], f"{host}:{port}", flush=True)
    asyncio.run(_serve(listeners))
    return 0


class Forwarder:
    """Runs this module as a child process; `ports[i]` on 127.0.0.1 reaches `targets[i]`."""

    def __init__(self, netns: str, targets: list[str], log_path: Path) -> None:
        self.netns_path = f"/run/netns/{netns}"
        self.targets = targets
        self.log_path = log_path
        self.ports: list[int] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.forward", self.netns_path, *self.targets],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self._process.stdout is not None
        deadline = time.monotonic() + 30
        while len(self.ports) < len(self.targets):
            line = self._process.stdout.readline()  # blocks until the child prints or exits
            if not line or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the forwarder did not start: {self.log_path.read_text()}")
            self.ports.append(int(line.split()[0]))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
