"""Limits shared by real OS processes through one real Redis, counted by the server they call.

Each worker (``_worker.py``) is a Python process with its own RedisStore; the
loopback server timestamps every request as it arrives, so the bounds are
checked as a provider would count, across processes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._redis import RedisServer
from tests.core._arrivals import ArrivalServer, LoopbackServer, most_in_any_window

WORKER = Path(__file__).with_name("_worker.py")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])


class Worker:
    """One worker process: commands in on stdin, one answer line each on stdout."""

    def __init__(self, url: str, backend: str, key: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url, backend, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def wait_ready(self) -> None:
        assert self.read() == "ready"

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            self.process.wait(30)
            assert self.process.stderr is not None
            pytest.fail(f"the worker exited: {self.process.stderr.read()}")
        return line

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[list[Worker]]:
    """Worker processes started by the test; all closed afterwards."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def spawn(workers: list[Worker], url: str, backend: str, key: str, count: int) -> list[Worker]:
    new = [Worker(url, backend, key) for _ in range(count)]
    workers.extend(new)
    for worker in new:  # started together, then waited for: the imports overlap
        worker.wait_ready()
    return new


class TokenServer(LoopbackServer):
    """Answer 200 and record each request's arrival and its ``?tokens=`` count."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[tuple[float, int]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            now = time.monotonic()
            match = re.search(rb"tokens=(\d+)", head)
            self.tokens.append((now, int(match.group(1)) if match else 0))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()


def most_tokens_in_any_window(entries: list[tuple[float, int]], window: float) -> int:
    ordered = sorted(entries)
    most, first, total = 0, 0, 0
    for at, tokens in ordered:
        total += tokens
        while ordered[first][0] <= at - window:
            total -= ordered[first][1]
            first += 1
        most = max(most, total)
    return most


def target(server: LoopbackServer) -> str:
    return f"127.0.0.1:{server.port}"


def test_three_processes_share_one_paced_rate(
    redis_server: RedisServer, workers: list[Worker], backend: str
) -> None:
    rate, each = 50, 10
    key = f"pace-{uuid.uuid4().hex}"
    with ArrivalServer() as server:
        group = spawn(workers, redis_server.url, backend, key, 3)
        for worker in group:
            worker.send(f"pace {each} {rate} {target(server)}")
        assert [worker.read() for worker in group] == ["done"] * 3
        arrivals = server.arrivals
    assert len(arrivals) == 3 * each
    # The bound as the server counts: never more than the rate in any second.
    assert most_in_any_window(arrivals, 1.0) <= rate
    # Shared, not per process: 30 starts at 50/s take more than one second.
    assert max(arrivals) - min(arrivals) >= (3 * each - 1) / rate * 0.95


def test_a_pause_in_one_process_holds_back_another(
    redis_server: RedisServer, workers: list[Worker], backend: str
) -> None:
    key = f"pause-{uuid.uuid4().hex}"
    with ArrivalServer() as server:
        pauser, other = spawn(workers, redis_server.url, backend, key, 2)
        answer = pauser.ask("pause 0.8 40")
        paused_at = float(answer.split()[1])
        assert other.ask(f"pace 1 40 {target(server)}") == "done"
        (arrival,) = server.arrivals
    assert arrival >= paused_at + 0.8


def test_a_hint_in_one_process_slows_another(
    redis_server: RedisServer, workers: list[Worker], backend: str
) -> None:
    key = f"hint-{uuid.uuid4().hex}"
    with ArrivalServer() as server:
        hinter, other = spawn(workers, redis_server.url, backend, key, 2)
        # 4 more requests in the next 2 s: 0.5 s apart (plus the margin), not 40/s.
        assert hinter.ask("hint 4 2 40") == "hinted"
        assert other.ask(f"pace 3 40 {target(server)}") == "done"
        arrivals = sorted(server.arrivals)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.5


def test_a_token_budget_holds_across_processes_and_settles_give_back(
    redis_server: RedisServer, workers: list[Worker], backend: str
) -> None:
    limit, estimate, used, each = 300, 100, 20, 4
    key = f"tokens-{uuid.uuid4().hex}"
    with TokenServer() as server:
        group = spawn(workers, redis_server.url, backend, key, 3)
        for worker in group:
            worker.send(f"tokens {each} {limit} {estimate} {used} {target(server)}")
        assert [worker.read() for worker in group] == ["done"] * 3
        entries = server.tokens
    assert len(entries) == 3 * each
    assert most_tokens_in_any_window(entries, 1.0) <= limit
    # Without the settles, 3 calls of 100 fill a window: 12 calls would take
    # 4 windows. With them, a window admits many more calls.
    span = max(at for at, _ in entries) - min(at for at, _ in entries)
    assert span < 4.0
    assert most_in_any_window([at for at, _ in entries], 1.0) > limit // estimate


def test_leases_hold_across_processes_and_a_killed_holder_gives_them_back(
    redis_server: RedisServer, workers: list[Worker], backend: str
) -> None:
    key = f"leases-{uuid.uuid4().hex}"
    holder, other = spawn(workers, redis_server.url, backend, key, 2)
    assert holder.ask("lease 2 0.6") == "leased"
    assert holder.ask("lease 2 0.6") == "leased"
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait(10)
    started = time.monotonic()
    # Both slots are held by a dead process until their ttl: the other waits for it.
    assert other.ask("lease 2 30") == "leased"
    waited = time.monotonic() - started
    assert 0.3 <= waited < 5.0
    assert other.ask("lease 2 30") == "leased"
