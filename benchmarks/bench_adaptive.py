"""Adaptive concurrency against a provider with a hidden capacity, judged by the provider.

A loopback "provider" in its own process serves at most K requests at once:
a request that arrives while K are in flight is answered 429 at once, and
latency grows with load (``base * (1 + 0.25 * in_flight / K)``). K changes
once, half-way through each run (20 -> 40 by default). The provider counts,
by its own clock, every success (goodput) and every 429.

A sweep of fixed ``max_concurrency`` values runs the same scenario; the best
goodput among them is the baseline. Then ``max_concurrency="auto"`` runs it.
Every run is one ``client.batch`` over an endless generator, retrying 429s
quickly (as any caller who needs every result must), stopped after the run's
time. Reported, as ratios in the same run:

- auto's goodput over the best fixed goodput (target >= 0.90), and over the
  best fixed one with at most 1 % of 429s;
- auto's share of requests answered 429 (target <= 1 %);
- how long after K's change auto's goodput first reaches 90 % of the best
  fixed goodput after the change (target <= 10 s).

It draws ``benchmarks/adaptive.svg``: auto's goodput (per half second, as the
provider saw it) and its concurrency limit over time, with K.

    uv run python benchmarks/bench_adaptive.py            # about 3 minutes
    uv run python benchmarks/bench_adaptive.py --quick    # about 40 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
from _loopback import reply, serve, split_requests, started

GOODPUT_TARGET = 0.90
REFUSED_TARGET = 0.01
FOLLOW_TARGET = 10.0
BUCKET = 0.5  # seconds per point of the goodput curve
HERE = Path(__file__).resolve().parent


# -- the provider (child process) ----------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.capacity = 1
        self.then = 1
        self.change_at = 0.0
        self.base = 0.05
        self.start = time.monotonic()
        self.in_flight = 0
        self.served: list[float] = []
        self.refused: list[float] = []


STATE = _State()


_OK = reply(b"200 OK", b'{"ok":true}')
_BUSY = reply(b"429 Too Many Requests", b'{"error":"over capacity"}')


def _control(target: str) -> bytes:
    state = STATE
    if target.startswith("/__reset"):
        query = dict(part.split("=") for part in target.split("?", 1)[1].split("&"))
        state.capacity = int(query["k"])
        state.then = int(query["then"])
        state.base = float(query["base"])
        state.start = time.monotonic()
        state.change_at = state.start + float(query["change"])
        state.served, state.refused = [], []
        return reply(b"200 OK", b"{}")
    stats = {"served": state.served, "refused": state.refused}
    return reply(b"200 OK", json.dumps(stats).encode())


class _Provider(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        requests, self.buffer = split_requests(self.buffer + data)
        for head, _body in requests:
            target = head.split(b" ")[1].decode()
            if target.startswith("/__"):
                self.transport.write(_control(target))
                continue
            state = STATE
            now = time.monotonic()
            capacity = state.capacity if now < state.change_at else state.then
            if state.in_flight >= capacity:
                state.refused.append(now - state.start)
                self.transport.write(_BUSY)
                continue
            state.in_flight += 1
            delay = state.base * (1 + 0.25 * state.in_flight / capacity)
            self.loop.call_later(delay, self._done)

    def _done(self) -> None:
        state = STATE
        state.in_flight -= 1
        state.served.append(time.monotonic() - state.start)
        if not self.transport.is_closing():
            self.transport.write(_OK)


# -- one run -------------------------------------------------------------------------------


class Run:
    """What the provider saw during one run, and the client's limit over time."""

    def __init__(
        self, label: str, served: list[float], refused: list[float], duration: float
    ) -> None:
        self.label = label
        self.served = [at for at in served if at < duration]
        self.refused = [at for at in refused if at < duration]
        self.duration = duration
        self.limits: list[tuple[float, int]] = []

    @property
    def goodput(self) -> float:
        return len(self.served) / self.duration

    @property
    def refused_share(self) -> float:
        total = len(self.served) + len(self.refused)
        return len(self.refused) / total if total else 0.0

    def buckets(self) -> list[float]:
        """Successes per second in each half-second of the run."""
        counts = [0] * int(self.duration / BUCKET)
        for at in self.served:
            slot = int(at / BUCKET)
            if slot < len(counts):
                counts[slot] += 1
        return [count / BUCKET for count in counts]

    def goodput_between(self, start: float, end: float) -> float:
        return sum(start <= at < end for at in self.served) / (end - start)


def _requests() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    while True:
        yield {"path": "/work"}, {}


async def _one_run(url: str, concurrency: int | str, args: argparse.Namespace, label: str) -> Run:
    from pynector import Pynector

    config = {"max_connections": args.max, "retry_max_delay": 0.05, "timeout": 30.0}
    async with Pynector(transport_type="http", base_url=url, config=config) as client:
        query = f"k={args.k}&then={args.then}&base={args.base}&change={args.duration / 2}"
        await client.request({"path": f"/__reset?{query}"})
        limits: list[tuple[float, int]] = []
        begin = time.monotonic()

        async def sample() -> None:
            while True:
                limits.append((time.monotonic() - begin, client.concurrency_limit))
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as group:
            group.start_soon(sample)
            with anyio.move_on_after(args.duration):
                async with client.batch(
                    _requests(),
                    max_concurrency=concurrency,  # type: ignore[arg-type]
                    max_retries=1000,
                    retry_delay=0.005,
                ) as results:
                    async for _result in results:
                        pass
            group.cancel_scope.cancel()
        stats = (await client.request({"path": "/__stats"})).json()
    run = Run(label, stats["served"], stats["refused"], args.duration)
    run.limits = limits
    return run


def _follow_time(run: Run, reference: float, change: float) -> float:
    """Seconds from K's change until a half-second of ``run`` reaches 90 % of ``reference``."""
    for slot, goodput in enumerate(run.buckets()):
        at = slot * BUCKET
        if at >= change and goodput >= 0.9 * reference:
            return at + BUCKET - change
    return float("inf")


# -- the plot ------------------------------------------------------------------------------


def _svg(run: Run, best: Run, args: argparse.Namespace, path: Path) -> None:
    """Goodput and the concurrency limit over time, as a hand-drawn SVG."""
    width, height, left, right, top, bottom = 760, 380, 64, 64, 40, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    goodput = run.buckets()
    top_goodput = max([*goodput, *best.buckets(), 1.0]) * 1.1
    top_limit = float(max([args.then, *(limit for _, limit in run.limits), 1])) * 1.25
    duration = float(args.duration)

    def x(at: float) -> float:
        return left + plot_w * at / duration

    def y_goodput(value: float) -> float:
        return top + plot_h * (1 - value / top_goodput)

    def y_limit(value: float) -> float:
        return top + plot_h * (1 - value / top_limit)

    def line(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
        text = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{text}"/>'

    change = args.duration / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">Adaptive concurrency: goodput and limit '
        f"(K {args.k} -&gt; {args.then} at {change:g} s)</text>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
    ]
    for step in range(6):
        value = top_goodput * step / 5
        parts.append(
            f'<text x="{left - 6}" y="{y_goodput(value) + 4:.1f}" text-anchor="end" '
            f'fill="#1f77b4">{value:.0f}</text>'
        )
        limit = top_limit * step / 5
        parts.append(
            f'<text x="{left + plot_w + 6}" y="{y_limit(limit) + 4:.1f}" fill="#d62728">'
            f"{limit:.0f}</text>"
        )
    ticks = range(0, int(args.duration) + 1, max(int(args.duration) // 8, 1))
    parts.extend(
        f'<text x="{x(second):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{second}</text>'
        for second in ticks
    )
    parts += [
        f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">seconds</text>',
        f'<text x="14" y="{top + plot_h / 2}" fill="#1f77b4" '
        f'transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">'
        "goodput (requests/s)</text>",
        f'<text x="{width - 10}" y="{top + plot_h / 2}" fill="#d62728" '
        f'transform="rotate(90 {width - 10} {top + plot_h / 2})" text-anchor="middle">'
        "in-flight limit</text>",
    ]
    best_points = [
        (x((slot + 0.5) * BUCKET), y_goodput(value)) for slot, value in enumerate(best.buckets())
    ]
    parts.append(line(best_points, "#9ecae1", "5,4"))
    auto_points = [
        (x((slot + 0.5) * BUCKET), y_goodput(value)) for slot, value in enumerate(goodput)
    ]
    parts.append(line(auto_points, "#1f77b4"))
    capacity = [
        (x(0), y_limit(args.k)),
        (x(change), y_limit(args.k)),
        (x(change), y_limit(args.then)),
        (x(args.duration), y_limit(args.then)),
    ]
    parts.append(line(capacity, "#999", "2,3"))
    parts.append(line([(x(at), y_limit(limit)) for at, limit in run.limits], "#d62728"))
    legend = [
        ("#1f77b4", "", "auto: goodput"),
        ("#9ecae1", "5,4", f"{best.label}: goodput"),
        ("#d62728", "", "auto: in-flight limit"),
        ("#999", "2,3", "hidden capacity K"),
    ]
    for row, (colour, dash, text) in enumerate(legend):
        ly = top + 14 + row * 16
        parts.append(line([(left + 10, ly), (left + 34, ly)], colour, dash))
        parts.append(f'<text x="{left + 40}" y="{ly + 4}">{text}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


# -- main ----------------------------------------------------------------------------------


async def _bench(url: str, args: argparse.Namespace) -> int:
    change = args.duration / 2
    print(
        f"## Adaptive concurrency: K {args.k} -> {args.then} at {change:g} s of {args.duration:g}"
        f" s; latency {args.base * 1000:g} ms x (1 + 0.25 x in_flight / K)"
    )
    print(f"{'run':<16}{'goodput/s':>10}{'429 share':>11}{'after change/s':>16}")
    fixed: list[Run] = []
    for concurrency in args.sweep:
        run = await _one_run(url, concurrency, args, f"fixed {concurrency}")
        fixed.append(run)
        after = run.goodput_between(change + 1, args.duration)
        print(f"{run.label:<16}{run.goodput:>10.0f}{run.refused_share:>10.2%}{after:>16.0f}")
    auto = await _one_run(url, "auto", args, "auto")
    after = auto.goodput_between(change + 1, args.duration)
    print(f"{auto.label:<16}{auto.goodput:>10.0f}{auto.refused_share:>10.2%}{after:>16.0f}")

    best = max(fixed, key=lambda run: run.goodput)
    polite = [run for run in fixed if run.refused_share <= REFUSED_TARGET]
    best_polite = max(polite, key=lambda run: run.goodput) if polite else None
    reference = best.goodput_between(change + 1, args.duration)
    follow = _follow_time(auto, reference, change)
    ratio = auto.goodput / best.goodput
    settled = [limit for at, limit in auto.limits if at >= args.duration - 2]
    print(f"best fixed: {best.label} ({best.goodput:.0f}/s, {best.refused_share:.2%} answered 429)")
    print(f"goodput, auto / best fixed: {ratio:.3f} (target >= {GOODPUT_TARGET})")
    if best_polite is not None:
        print(
            f"goodput, auto / best fixed with <= 1% 429 ({best_polite.label}): "
            f"{auto.goodput / best_polite.goodput:.3f}"
        )
    print(f"429 share, auto: {auto.refused_share:.2%} (target <= {REFUSED_TARGET:.0%})")
    print(
        f"follows K's change (90% of the best fixed goodput after it) in: {follow:.1f} s "
        f"(target <= {FOLLOW_TARGET:g} s)"
    )
    if settled:
        print(
            f"auto's limit in the last 2 s: median {statistics.median(settled):g} (K {args.then})"
        )
    svg = HERE / "adaptive.svg"
    _svg(auto, best, args, svg)
    print(f"plot: {svg.relative_to(HERE.parent)}")
    met = (
        ratio >= GOODPUT_TARGET and auto.refused_share <= REFUSED_TARGET and follow <= FOLLOW_TARGET
    )
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter runs, a smaller sweep")
    parser.add_argument("--k", type=int, default=20, help="the capacity before the change")
    parser.add_argument("--then", type=int, default=40, help="the capacity after it")
    parser.add_argument("--base", type=float, default=0.05, help="latency at no load, seconds")
    parser.add_argument("--max", type=int, default=200, help="max_connections (auto's bound)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 24, quick 10)")
    args = parser.parse_args()
    if args.serve:
        serve(_Provider)
        return 0
    if args.duration is None:
        args.duration = 10.0 if args.quick else 24.0
    args.sweep = [20, 40, 60] if args.quick else [10, 20, 30, 40, 50, 60, 80]
    with started([sys.executable, __file__, "--serve"], core=0) as url:
        return anyio.run(_bench, url, args)


if __name__ == "__main__":
    raise SystemExit(main())
