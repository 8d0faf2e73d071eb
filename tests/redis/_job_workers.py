"""Worker processes of a batch job (the real ``pynector batch`` CLI) and a server that counts them.

:class:`CountingServer` answers ``/r/{id}`` and records, by its own clock, the
arrival, the id and the ``X-Worker`` header of every request; ``/hold/...``
requests wait until :meth:`CountingServer.release`. :class:`Worker` runs
``python -m pynector batch ... --job NAME`` as an OS process and reads its
standard error line by line, so a test waits for a line, never for a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from tests.core._arrivals import GatedServer, read_request, reply

__all__ = ["CountingServer", "Worker", "read_results", "write_requests"]

ROOT = Path(__file__).resolve().parents[2]


def write_requests(path: Path, count: int, prefix: str = "/r") -> list[str]:
    """Write ``count`` request lines (ids ``r0``, ``r1``, ...) to ``path``; return the ids."""
    ids = [f"r{n}" for n in range(count)]
    with open(path, "w") as file:
        for request_id in ids:
            file.write(json.dumps({"id": request_id, "path": f"{prefix}/{request_id}"}) + "\n")
    return ids


def read_results(path: Path) -> list[dict[str, Any]]:
    """The result lines of a file (none when it does not exist)."""
    if not path.exists():
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


class CountingServer(GatedServer):
    """Count every request it receives: when, which id, from which worker."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []  # (id, worker), in arrival order
        self.held = 0
        self._changed = threading.Condition()

    def by_worker(self) -> Counter[str]:
        """How many requests each worker sent."""
        with self._changed:
            return Counter(worker for _id, worker in self.sent)

    def wait_for(self, test: object, what: str, timeout: float = 60.0) -> None:
        """Block until ``test()`` is true (checked at each arrival), else fail after ``timeout``."""
        assert callable(test)
        with self._changed:
            if not self._changed.wait_for(test, timeout):
                raise AssertionError(f"{what}: not within {timeout:g} s ({len(self.sent)} sent)")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gate = self._gate()
        while True:
            head = await read_request(reader)
            now = time.monotonic()
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            worker = ""
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"x-worker:"):
                    worker = line.split(b":", 1)[1].strip().decode()
            with self._changed:
                self.arrivals.append(now)
                self.sent.append((target.rsplit("/", 1)[-1], worker))
                if target.startswith("/hold/"):
                    self.held += 1
                self._changed.notify_all()
            if target.startswith("/hold/"):
                await gate.wait()
            writer.write(reply(b"200 OK", b'{"ok": true}'))
            await writer.drain()


class Worker:
    """One ``pynector batch`` process working a job; its stderr is read as it comes."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pynector", "batch", *args, "--header", f"X-Worker: {name}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYNECTOR_PLUGINS": ""},
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()

    def wait_line(self, text: str, timeout: float = 60.0) -> None:
        """Block until a line containing ``text`` was written (fail after ``timeout``)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self.lines), timeout
            )
        assert found, f"{self.name} wrote no line with {text!r}:\n{''.join(self.lines)}"

    def finish(self, timeout: float = 90.0) -> int:
        """Wait for the process to exit; its exit status."""
        status = self.process.wait(timeout)
        for thread in self._threads:
            thread.join(10)
        return status

    @property
    def output(self) -> str:
        """Everything it wrote to stdout and stderr."""
        with self._changed:
            return "".join(self.lines)

    def kill(self) -> None:
        """Stop it at once if it still runs (SIGKILL: no goodbye); close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for thread in self._threads:
            thread.join(10)
