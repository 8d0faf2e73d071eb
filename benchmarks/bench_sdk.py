"""SDK transport overhead: client CPU per call, pynector vs the raw SDK async clients.

A cheap keep-alive HTTP/1.1 server runs in a separate process and answers
``POST /v1/chat/completions`` and ``POST /v1/messages`` with fixed JSON bodies,
so the client is the bottleneck. The client process makes the same calls
through ``Pynector(transport_type="sdk", provider=..., enable_telemetry=False)``
and through the raw ``openai.AsyncOpenAI`` / ``anthropic.AsyncAnthropic``,
configured as the transport configures them (``max_retries=0``, the SDK's
tracing off, the same connection pool), at concurrency 1 and 10 (that many
workers, each making calls one after another), and reports the client's CPU
time per call (``time.process_time``) as a ratio. Rounds alternate between the
two sides and the median round counts. A last row per provider compares
``batch_request(max_concurrency=10)`` with 10 raw workers.

    uv run python benchmarks/bench_sdk.py                      # default size
    uv run python benchmarks/bench_sdk.py --n 200 --rounds 3   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _loopback import serve, split_requests, started, workers

TARGET = 1.10
API_KEY = "sk-bench-0000"
CHAT = {"model": "gpt-bench", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-bench",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}


def _reply(body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


REPLIES = {
    b"/v1/chat/completions": _reply(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello!"},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ),
    b"/v1/messages": _reply(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-bench",
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 2},
        }
    ),
}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


# -- the server (its own process) ------------------------------------------------


class _ServerProtocol(asyncio.Protocol):
    """Answers each request (head + Content-Length body) by its path; keeps connections open."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        requests, self.buffer = split_requests(self.buffer + data)
        out = [
            REPLIES.get(head.split(b" ", 2)[1].split(b"?", 1)[0], NOT_FOUND) for head, _ in requests
        ]
        if out:
            self.transport.write(b"".join(out))


# -- the client -------------------------------------------------------------------


def _raw_client(provider: str, port: int) -> Any:
    """The SDK's async client, configured as the sdk transport configures it."""
    import httpx2

    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    if provider == "openai":
        import openai

        return openai.AsyncOpenAI(
            api_key=API_KEY,
            base_url=f"http://127.0.0.1:{port}/v1",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{port}",
        max_retries=0,
        open_telemetry={"traces": {"enabled": False}, "propagation": False},
        http_client=anthropic.DefaultAsyncHttpxClient(limits=limits),
    )


async def measure(provider: str, port: int, n: int, rounds: int) -> list[tuple[str, float, float]]:
    from pynector import Pynector

    base_url = f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else "")
    data = CHAT if provider == "openai" else MESSAGE
    raw = _raw_client(provider, port)
    client = Pynector(
        transport_type="sdk",
        provider=provider,
        api_key=API_KEY,
        base_url=base_url,
        enable_telemetry=False,
    )
    create = raw.chat.completions.create if provider == "openai" else raw.messages.create

    async def raw_call() -> object:
        return await create(**data)

    async def pynector_call() -> object:
        return await client.request(data)

    async def cpu(run: Callable[[], Awaitable[object]]) -> float:
        start = time.process_time()
        await run()
        return (time.process_time() - start) / n * 1e6

    rows = []
    async with client:
        try:
            for concurrency in (1, 10):
                # Warm up both sides (connections, caches, lazy imports) first.
                await workers(raw_call, 50, concurrency)
                await workers(pynector_call, 50, concurrency)
                raw_us: list[float] = []
                ours_us: list[float] = []
                for index in range(rounds):
                    sides = [(raw_call, raw_us), (pynector_call, ours_us)]
                    for send, samples in sides if index % 2 == 0 else sides[::-1]:
                        samples.append(await cpu(functools.partial(workers, send, n, concurrency)))
                rows.append(
                    (
                        f"{provider} request, concurrency {concurrency}",
                        statistics.median(raw_us),
                        statistics.median(ours_us),
                    )
                )

            requests: list[tuple[Any, dict[str, Any]]] = [(data, {}) for _ in range(n)]

            async def batch() -> None:
                await client.batch_request(requests, max_concurrency=10)

            await batch()
            raw_us, ours_us = [], []
            for index in range(rounds):
                sides = [
                    (lambda: workers(raw_call, n, 10), raw_us),
                    (batch, ours_us),
                ]
                for run, samples in sides if index % 2 == 0 else sides[::-1]:
                    samples.append(await cpu(run))
            rows.append(
                (
                    f"{provider} batch_request, 10",
                    statistics.median(raw_us),
                    statistics.median(ours_us),
                )
            )
        finally:
            await raw.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (median wins)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(_ServerProtocol)
        return 0
    with started([sys.executable, __file__, "--serve"]) as url:
        port = int(url.rpartition(":")[2])
        rows = []
        for provider in ("openai", "anthropic"):
            rows += asyncio.run(measure(provider, port, args.n, args.rounds))
    import anthropic
    import openai

    from pynector._plugins import hooks

    plugins = "none" if hooks() is None else "installed (telemetry off)"
    print(
        "SDK transport: client CPU per call, Pynector(transport_type='sdk', "
        f"enable_telemetry=False) vs raw openai {openai.__version__} / anthropic "
        f"{anthropic.__version__}; {args.n} calls x {args.rounds} rounds per side; Python "
        f"{sys.version.split()[0]}, asyncio, {os.cpu_count()} cores; plugins: {plugins}"
    )
    print(f"{'scenario':<38}{'raw SDK us':>12}{'pynector us':>13}{'ratio':>8}")
    worst = 0.0
    for name, raw_us, ours_us in rows:
        ratio = ours_us / raw_us
        worst = max(worst, ratio)
        print(f"{name:<38}{raw_us:>12.1f}{ours_us:>13.1f}{ratio:>7.2f}x")
    verdict = "within" if worst <= TARGET else "ABOVE"
    print(f"worst ratio {worst:.2f}x: {verdict} the {TARGET:.2f}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
