"""Clients that share their limits through a real Redis server, as a fleet would.

The oracle is the server's side: a loopback server records when every request
arrived (and, for leases, how many were in flight). Several real OS processes
share one limit where the behaviour is about processes; two clients in one
process share it where only the store is (each client has its own connection
to Redis and nothing else in common).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.errors import RateLimitError, StoreUnavailableError
from tests import _engines
from tests._redis import RedisServer, RedisServerFactory
from tests.core._arrivals import ArrivalServer, GatedServer, most_in_any_window

backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def arrivals() -> Iterator[ArrivalServer]:
    with ArrivalServer() as server:
        yield server


class HoldServer(GatedServer):
    """``/hold`` requests wait until :meth:`release` (or 30 s); counts those in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0
        self.held = 0
        self._changed = threading.Condition()

    def wait_held(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` requests have been held (fail after ``timeout``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"{self.held} requests held, not {count}, in {timeout:g} s")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gate = self._gate()
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.arrivals.append(time.monotonic())
            if b" /hold" in head.split(b"\r\n", 1)[0]:
                with self._changed:
                    self.in_flight += 1
                    self.held += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                    self._changed.notify_all()
                try:
                    await asyncio.wait_for(gate.wait(), 30)
                finally:
                    self.in_flight -= 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            )
            await writer.drain()


def _worker(
    base_url: str,
    config: dict[str, Any],
    path: str,
    requests: int,
    *,
    concurrency: int = 1,
    backend: str = "asyncio",
) -> subprocess.Popen[str]:
    spec = {
        "base_url": base_url,
        "config": config,
        "path": path,
        "requests": requests,
        "concurrency": concurrency,
        "backend": backend,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.redis._fleet_worker", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def _ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", f"the worker did not start: {line!r}"


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_processes_sharing_a_store_hold_one_paced_rate_as_the_server_counts(
    redis_server: RedisServer, arrivals: ArrivalServer, backend: str
) -> None:
    rate, workers, each = 30, 3, 10
    config = {
        "store": redis_server.url,
        "limit_key": f"fleet-rate-{backend}",
        "rate_limit": f"{rate}/s",
    }
    processes = [
        _worker(arrivals.url, config, "/work", each, concurrency=4, backend=backend)
        for _ in range(workers)
    ]
    for process in processes:
        _ready(process)
    for process in processes:
        _go(process)
    results = [_finish(process) for process in processes]

    assert [r["ok"] for r in results] == [each] * workers
    assert len(arrivals.arrivals) == workers * (each + 1)
    # The first request of each process (sent before "go") made its connections:
    # a start is counted before connecting, so those reach the server late.
    measured = sorted(arrivals.arrivals)[workers:]
    # One limit for the three: never more than `rate` in any one second, server side.
    assert most_in_any_window(measured, 1.0) <= rate
    # And paced, not merely capped: the starts are spread over the whole run.
    assert max(measured) - min(measured) >= (workers * each - 1) / rate * 0.9


def test_a_killed_lease_holder_gives_its_slot_back_within_the_lease_time(
    redis_server: RedisServer,
) -> None:
    with HoldServer() as server:
        config = {
            "store": redis_server.url,
            "limit_key": "fleet-lease-kill",
            "shared_concurrency": 1,
            "timeout": 1.0,  # the lease lasts the deadline and 2 s of grace: 3 s
        }
        holder = _worker(server.url, config, "/hold", 1)
        waiter = _worker(server.url, {**config, "timeout": 10.0}, "/work", 1)
        try:
            _ready(holder)
            _ready(waiter)
            _go(holder)
            server.wait_held(1)  # the holder's request reached the server: it holds the slot
            os.kill(holder.pid, signal.SIGKILL)
            killed = time.monotonic()
            holder.wait(10)
            arrived = len(server.arrivals)
            _go(waiter)
            result = _finish(waiter)
        finally:
            server.release()
            for process in (holder, waiter):
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
                for pipe in (process.stdin, process.stdout):
                    if pipe is not None:
                        pipe.close()
        assert result["ok"] == 1
        # The waiter's request went only once the dead holder's lease had expired.
        waited = server.arrivals[arrived] - killed
        assert 0.5 < waited < 10, waited


@pytest.mark.anyio
async def test_shared_concurrency_holds_across_clients_server_side(
    redis_server: RedisServer, engine: str
) -> None:
    with HoldServer() as server:
        config = {
            "store": redis_server.url,
            "limit_key": "fleet-lease-cap",
            "shared_concurrency": 2,
            "timeout": 20.0,
        }
        clients = [
            Pynector(transport_type="http", engine=engine, base_url=server.url, config=config)
            for _ in range(3)
        ]
        async with anyio.create_task_group() as group:
            for client in clients:
                for _ in range(3):
                    group.start_soon(client.request, {"path": "/hold"})
            await anyio.to_thread.run_sync(server.wait_held, 2)
            # Every other call waits for a lease; let the two through, then the rest.
            server.release()
        for client in clients:
            await client.aclose()
    assert server.held == 9
    assert server.most_in_flight <= 2


@pytest.mark.anyio
async def test_a_429_pauses_every_client_sharing_the_store(
    redis_server: RedisServer, engine: str
) -> None:
    with ArrivalServer(refuse=1, retry_after=1.0) as server:
        config = {"store": redis_server.url, "limit_key": "fleet-pause"}
        async with (
            Pynector(
                transport_type="http", engine=engine, base_url=server.url, config=config
            ) as first,
            Pynector(
                transport_type="http", engine=engine, base_url=server.url, config=config
            ) as second,
        ):
            with pytest.raises(RateLimitError):
                await first.request({"path": "/work"})
            refused = server.arrivals[-1]
            await second.request({"path": "/work"})
    # The other client waited out the first one's Retry-After.
    assert server.arrivals[-1] - refused >= 0.9


@pytest.mark.anyio
async def test_store_down_closed_fails_within_the_deadline_without_sending(
    redis_server_factory: RedisServerFactory, arrivals: ArrivalServer, engine: str
) -> None:
    redis = redis_server_factory(password="pw-closed-9d1")
    config = {
        "store": redis.url,
        "limit_key": "fleet-closed",
        "rate_limit": "50/s",
        "timeout": 1.5,
    }
    async with Pynector(
        transport_type="http", engine=engine, base_url=arrivals.url, config=config
    ) as client:
        await client.request({"path": "/work"})
        redis.stop()
        sent = len(arrivals.arrivals)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await client.request({"path": "/work"})
        assert time.monotonic() - started < 10
        assert "pw-closed-9d1" not in str(caught.value) + repr(caught.value)
        assert "pw-closed-9d1" not in caught.value.url
        assert len(arrivals.arrivals) == sent  # nothing was sent over the limit
        redis.start()
        await client.request({"path": "/work"})  # the store is back: calls go again
    assert len(arrivals.arrivals) == sent + 1


@pytest.mark.anyio
async def test_store_down_open_falls_back_to_local_limits_and_warns_once(
    redis_server_factory: RedisServerFactory,
    arrivals: ArrivalServer,
    caplog: pytest.LogCaptureFixture,
    engine: str,
) -> None:
    redis = redis_server_factory(password="pw-open-77a")
    config = {
        "store": redis.url,
        "limit_key": "fleet-open",
        "rate_limit": "50/s",
        "store_failure": "open",
    }
    caplog.set_level(logging.WARNING, logger="pynector.store")
    async with Pynector(
        transport_type="http", engine=engine, base_url=arrivals.url, config=config
    ) as client:
        await client.request({"path": "/work"})
        redis.stop()
        for _ in range(5):
            await client.request({"path": "/work"})  # sent, paced by the process alone
        redis.start()
    warnings = [r for r in caplog.records if r.name == "pynector.store"]
    assert len(warnings) == 1
    assert "falling back to per-process limits" in warnings[0].getMessage()
    assert "pw-open-77a" not in caplog.text
    assert len(arrivals.arrivals) == 6
    assert most_in_any_window(arrivals.arrivals, 1.0) <= 50
