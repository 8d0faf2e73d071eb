"""A process sharing limits through a RedisStore: told what to do on stdin, it answers on stdout.

``python _worker.py URL BACKEND KEY`` prints ``ready``, then runs one command per
line and answers each with one line:

- ``pace N RATE TARGET``: N starts through the pacer (RATE per second), each
  followed by a GET of ``TARGET`` (``host:port``); answers ``done``.
- ``pause SECONDS``: pause the pacer and send the pause; answers ``paused T``
  (``time.monotonic()`` when the pause was set).
- ``hint REMAINING RESET``: a server hint, sent; answers ``hinted``.
- ``tokens N LIMIT ESTIMATE USED TARGET``: N calls under a token budget of LIMIT
  per second: reserve ESTIMATE, GET ``TARGET/?tokens=USED``, settle USED; ``done``.
- ``lease LIMIT TTL``: take one lease of at most LIMIT and keep it; ``leased``.
- ``quit``: close the store and exit.
"""

from __future__ import annotations

import sys
import time

import anyio

from pynector_redis import RedisStore

RATE_PERIOD = 1.0


async def get(target: str, path: str = "/") -> None:
    host, _, port = target.partition(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += await stream.receive()


async def main(url: str, key: str) -> None:
    store = RedisStore(url)
    held = []
    stdin = anyio.wrap_file(sys.stdin)
    print("ready", flush=True)
    async for line in stdin:
        command, *args = line.split()
        if command == "pace":
            count, rate, target = int(args[0]), int(args[1]), args[2]
            pacer = store.pacer(key, rate, RATE_PERIOD)
            for _ in range(count):
                await pacer.acquire()
                await get(target)
            print("done", flush=True)
        elif command == "pause":
            pacer = store.pacer(key, int(args[1]) if len(args) > 1 else 40, RATE_PERIOD)
            pacer.pause(float(args[0]))
            at = time.monotonic()
            await pacer.flush()  # type: ignore[attr-defined]
            print(f"paused {at}", flush=True)
        elif command == "hint":
            pacer = store.pacer(key, int(args[2]) if len(args) > 2 else 40, RATE_PERIOD)
            pacer.hint(int(args[0]), float(args[1]))
            await pacer.flush()  # type: ignore[attr-defined]
            print("hinted", flush=True)
        elif command == "tokens":
            count, limit, estimate, used, target = (
                int(args[0]), int(args[1]), int(args[2]), int(args[3]), args[4],
            )  # fmt: skip
            budget = store.token_budget(key, limit, 1.0)
            for _ in range(count):
                reservation = await budget.reserve(estimate)
                await get(target, f"/?tokens={used}")
                reservation.settle(used)
            print("done", flush=True)
        elif command == "lease":
            leases = store.leases(key, int(args[0]))
            held.append(await leases.acquire(float(args[1])))
            print("leased", flush=True)
        elif command == "quit":
            break
    await store.aclose()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[3], backend=sys.argv[2])
