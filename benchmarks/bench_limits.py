"""Limits that hold: paced rate limits and token budgets, judged by the server.

A loopback server in its own process enforces a limit as providers do (a
token bucket: N requests a second, one second of burst; a request over it is
answered 429) and records, by its own clock, when every request arrived and
how many tokens it used.

Fit: one client configured at exactly the server's limit sends a run of
requests. Reported per limiter, as ratios: the 429s, the accepted rate over
the limit (target >= 0.95), and the most arrivals in any one-second window
over the limit (the bound: <= 1.00). Limiters: pynector's ``rate_limit``
(``"N/s"`` and ``"N/m"``), and as baselines in the same run a plain
``aiolimiter.AsyncLimiter`` loop and the OpenAI cookbook's parallel-processor
token bucket (capacity one minute's quota, refilled continuously). To keep the
run short the ``"N/m"`` case is scaled up: ``"6000/m"`` against a server
enforcing 100/s with 100 of burst has the shape of ``"1200/m"`` against 20/s,
five times faster (a run of 500 requests takes about 5 s instead of 25 s).

Tokens: LLM calls (the real openai SDK through the sdk transport) with random
``max_tokens`` whose replies use only part of it, under ``token_limit``. The
minute is scaled to a second (``"N/s"``, the same mechanism with a 60 times
shorter window): reported are the tokens the server saw used per window over
the budget (target >= 0.90) and the most in any one window (<= 1.00), for
pynector (reserved from the estimate, settled to the reply's usage) and for
the same budget when reservations are never settled (the old ``--tpm``).

    uv run python benchmarks/bench_limits.py            # about 40 s
    uv run python benchmarks/bench_limits.py --quick    # about 15 s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from _loopback import reply, serve, split_requests, started, table

if TYPE_CHECKING:
    from pynector.concurrency import TokenBudget

FIT_TARGET = 0.95
TOKENS_TARGET = 0.90


# -- the server (child process) ----------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.rate = 0.0
        self.burst = 1.0
        self.level = 0.0
        self.filled = time.monotonic()
        self.arrivals: list[float] = []
        self.refused = 0
        self.tokens: list[tuple[float, int]] = []


STATE = _State()


def _admit(now: float) -> bool:
    state = STATE
    if state.rate <= 0:
        return True
    state.level = min(state.burst, state.level + (now - state.filled) * state.rate)
    state.filled = now
    if state.level >= 1:
        state.level -= 1
        return True
    return False


def _chat(body: bytes, now: float) -> bytes:
    request = json.loads(body)
    text = sum(len(message["content"]) for message in request["messages"])
    prompt = -(-text // 4)
    # A real reply is shorter than its allowance: between a tenth and six tenths of it.
    output = max(1, int(request["max_tokens"] * random.uniform(0.1, 0.6)))
    STATE.tokens.append((now, prompt + output))
    answer = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        },
    }
    return reply(b"200 OK", json.dumps(answer).encode())


def _control(target: str) -> bytes:
    state = STATE
    if target.startswith("/__reset"):
        query = dict(part.split("=") for part in target.split("?", 1)[1].split("&"))
        state.rate = float(query["rate"])
        state.burst = float(query["burst"])
        state.level = state.burst
        state.filled = time.monotonic()
        state.arrivals, state.refused, state.tokens = [], 0, []
        return reply(b"200 OK", b"{}")
    stats = {"arrivals": state.arrivals, "refused": state.refused, "tokens": state.tokens}
    return reply(b"200 OK", json.dumps(stats).encode())


class _Server(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        requests, self.buffer = split_requests(self.buffer + data)
        for head, body in requests:
            self.transport.write(self._answer(head.split(b" ")[1].decode(), body))

    def _answer(self, target: str, body: bytes) -> bytes:
        if target.startswith("/__"):
            return _control(target)
        now = time.monotonic()
        STATE.arrivals.append(now)
        if not _admit(now):
            STATE.refused += 1
            return reply(b"429 Too Many Requests", b'{"error":"rate"}', b"Retry-After: 1\r\n")
        if target.endswith("/chat/completions"):
            return _chat(body, now)
        return reply(b"200 OK", b'{"ok":true}')


# -- the measures ------------------------------------------------------------------------


def most_in_window(times: list[float], window: float) -> int:
    """The most arrivals in any half-open window ``[t, t + window)``."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def most_tokens_in_window(tokens: list[tuple[float, int]], window: float) -> int:
    ordered, most, first, total = sorted(tokens), 0, 0, 0
    for at, used in ordered:
        total += used
        while ordered[first][0] <= at - window:
            total -= ordered[first][1]
            first += 1
        most = max(most, total)
    return most


async def _control_request(client: Any, path: str) -> Any:
    return (await client.request({"path": path})).json()


# -- Fit -----------------------------------------------------------------------------------


async def _fit(
    url: str,
    name: str,
    rate: float,
    n: int,
    send: Callable[[Any], Awaitable[None]],
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from pynector import Pynector

    async with Pynector(transport_type="http", base_url=url, config={"timeout": 30}) as control:
        await _control_request(control, f"/__reset?rate={rate:g}&burst={rate:g}")
        async with Pynector(transport_type="http", base_url=url, config=config or {}) as client:

            async def one() -> None:
                with contextlib.suppress(Exception):  # a 429: the server counts it
                    await send(client)

            async def worker(count: int) -> None:
                for _ in range(count):
                    await one()

            concurrency = 50
            per, extra = divmod(n, concurrency)
            async with anyio.create_task_group() as group:
                for index in range(concurrency):
                    group.start_soon(worker, per + (index < extra))
        stats = await _control_request(control, "/__stats")
    arrivals = sorted(stats["arrivals"])
    refused = stats["refused"]
    span = arrivals[-1] - arrivals[0]
    # Accepted requests over the time they took: (n - 1) intervals between first and last.
    accepted_rate = (len(arrivals) - refused - 1) / span if span > 0 else float("inf")
    return {
        "limiter": name,
        "429s": refused,
        "rate/limit": accepted_rate / rate,
        "max 1s/limit": most_in_window(arrivals, 1.0) / rate,
        # Under 1 s: more than the limit arrived within one second somewhere.
        "closest N+1 (s)": min(
            (b - a for a, b in zip(arrivals, arrivals[int(rate) :], strict=False)),
            default=float("inf"),
        ),
    }


async def fit(n: int, rate: int) -> list[dict[str, Any]]:
    from aiolimiter import AsyncLimiter

    async def plain(client: Any) -> None:
        await client.request({"path": "/work"})

    rows = []
    with started([sys.executable, __file__, "--serve"]) as url:
        for label, config in (
            (f'pynector "{rate}/s"', {"rate_limit": f"{rate}/s"}),
            (f'pynector "{rate * 60}/m"', {"rate_limit": f"{rate * 60}/m"}),
        ):
            rows.append(await _fit(url, label, rate, n, plain, config))

        for label, limiter in (
            (f"aiolimiter({rate}, 1)", AsyncLimiter(rate, 1)),
            (f"aiolimiter({rate * 60}, 60)", AsyncLimiter(rate * 60, 60)),
        ):

            async def limited(client: Any, limiter: AsyncLimiter = limiter) -> None:
                async with limiter:
                    await client.request({"path": "/work"})

            rows.append(await _fit(url, label, rate, n, limited))

        bucket = _CookbookBucket(rate * 60)

        async def cookbook(client: Any) -> None:
            await bucket.take()
            await client.request({"path": "/work"})

        rows.append(await _fit(url, f"cookbook bucket ({rate * 60}/min)", rate, n, cookbook))
    return rows


class _CookbookBucket:
    """The OpenAI cookbook's api_request_parallel_processor.py, its request side.

    ``available_request_capacity`` starts at the per-minute limit, refills at
    limit / 60 a second up to it, and a request goes when one is available.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.available = float(per_minute)
        self.updated = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.available = min(
                self.per_minute, self.available + self.per_minute * (now - self.updated) / 60
            )
            self.updated = now
            if self.available >= 1:
                self.available -= 1
                return
            await asyncio.sleep(0.001)  # the cookbook's seconds_to_sleep_each_loop


async def margins(n: int, rate: int) -> list[dict[str, Any]]:
    """The margin study: pynector's limiter, as the client uses it, at several margins."""
    from pynector.concurrency import RateLimiter

    rows = []
    with started([sys.executable, __file__, "--serve"]) as url:
        for margin in (0.0, 0.005, 0.01, 0.02):
            limiter = RateLimiter(rate, 1.0, margin=margin)

            async def paced(client: Any, limiter: RateLimiter = limiter) -> None:
                await limiter.acquire()  # what the client does before each attempt
                await client.request({"path": "/work"})

            rows.append(await _fit(url, f"margin {margin:g}", rate, n, paced))
    return rows


# -- Tokens --------------------------------------------------------------------------------


async def tokens(seconds: float, budget: int) -> list[dict[str, Any]]:
    from pynector import Pynector
    from pynector.concurrency import TokenBudget

    rows = []
    with started([sys.executable, __file__, "--serve"]) as url:
        for label, settled in (("pynector token_limit", True), ("estimate kept (no usage)", False)):
            async with Pynector(transport_type="http", base_url=url) as control:
                await _control_request(control, "/__reset?rate=0&burst=1")
            config: dict[str, Any] = {"token_limit": f"{budget}/s"} if settled else {}
            outside = None if settled else TokenBudget(budget, 1.0)
            async with Pynector(
                transport_type="sdk",
                provider="openai",
                api_key="sk-bench-0000",
                base_url=f"{url}/v1",
                config=config,
            ) as client:
                rng = random.Random(7)
                stop = time.monotonic() + seconds
                async with asyncio.TaskGroup() as group:
                    for _ in range(50):
                        group.create_task(_chat_worker(client, rng, outside, stop))
            async with Pynector(transport_type="http", base_url=url) as control:
                stats = await _control_request(control, "/__stats")
            used = sorted((at, n) for at, n in stats["tokens"])
            # Whole one-second windows from the first arrival on, the first and last left out
            # (the start and the end of the run).
            start = used[0][0]
            windows = int(used[-1][0] - start)
            per_window = [0] * (windows + 1)
            for at, n in used:
                per_window[int(at - start)] += n
            steady = per_window[1:windows] or per_window
            rows.append(
                {
                    "budget": label,
                    "calls": len(used),
                    "used/budget": sum(steady) / len(steady) / budget,
                    "max window/budget": most_tokens_in_window(used, 1.0) / budget,
                }
            )
    return rows


async def _chat_worker(
    client: Any, rng: random.Random, outside: TokenBudget | None, stop: float
) -> None:
    """Chat calls with random prompts and ``max_tokens`` until ``stop``."""
    while time.monotonic() < stop:
        chat = {
            "model": "gpt-bench",
            "messages": [{"role": "user", "content": "x" * rng.randint(40, 400)}],
            "max_tokens": rng.randint(50, 500),
        }
        if outside is None:
            await client.request(chat)
            continue
        # The baseline: reserved from the estimate, which is kept when the reply is in.
        estimate = client.transport.estimate_tokens(_EstimateOnly(chat))
        reservation = await outside.reserve(estimate)
        try:
            await client.request(chat)
        finally:
            reservation.settle(estimate)


class _EstimateOnly:
    """Just what the sdk transport's ``estimate_tokens`` reads of a call."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.options: dict[str, Any] = {}


# -- the report ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument("--rate", type=int, default=100, help="the server's limit per second")
    parser.add_argument(
        "--margins", action="store_true", help="only the study of the limiter's jitter margin"
    )
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.serve:
        serve(_Server)
        return 0
    n = args.rate * (3 if args.quick else 5)
    if args.margins:
        print(f"Margins: {n} requests at {args.rate}/s, {args.backend}")
        table(anyio.run(margins, n, args.rate, backend=args.backend))
        return 0
    print(f"Fit: {n} requests, server enforcing {args.rate}/s with {args.rate} of burst")
    fit_rows = asyncio.run(fit(n, args.rate))
    table(fit_rows)
    seconds, budget = (4.0, 6000) if args.quick else (10.0, 6000)
    print(f"\nTokens: {seconds:g} s of chat calls under a budget of {budget} tokens/s")
    token_rows = asyncio.run(tokens(seconds, budget))
    table(token_rows)
    ok = all(
        row["429s"] == 0 and row["rate/limit"] >= FIT_TARGET and row["max 1s/limit"] <= 1
        for row in fit_rows[:2]
    ) and (
        token_rows[0]["used/budget"] >= TOKENS_TARGET and token_rows[0]["max window/budget"] <= 1
    )
    print(
        f"\ntargets (pynector rows): 0 429s, rate/limit >= {FIT_TARGET}, max 1s/limit <= 1; "
        f"used/budget >= {TOKENS_TARGET}, max window/budget <= 1: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
