"""The soak: many requests through one client against the fault server.

:func:`run_soak` drives ``Pynector(transport_type="http")`` with a seeded,
random mix of faults (see ``_servers.py``), operations (``request``,
``request_with_retry``, ``stream`` read to the end or left early,
``batch_request``), methods (GET, POST, POST with an ``Idempotency-Key``) and
cancellations (the caller's cancel scope, the client's own ``timeout=``, a
batch deadline). Every request gets exactly one outcome: ``ok``,
``cancelled`` (the caller's scope fired), or the class name of the error. Each
outcome is checked against what the fault matrix (``docs/reliability.md``)
says the client does for that fault.

At the end it checks, from the client process and the server process:

* every request is accounted for, with an outcome the matrix allows;
* no task, file descriptor or socket outlives the client;
* memory does not grow with the number of requests: live objects after a full
  collection, and RSS, with no client alive, after a warm-up client and after
  the soak's client (and sampled during the run, for the report);
* every span started (when traced, see :func:`traced`) was ended;
* no ResourceWarning and no unraisable exception (an unclosed socket or
  generator) was reported;
* the server saw every connection closed;
* the client still served a healthy batch after all of it.

The request loop is bounded by the number of requests and by ``time_limit``;
every unit of work is also bounded (``HANG_LIMIT``, enforced by a watchdog),
so the soak always stops by itself. ``benchmarks/soak.py`` is its command
line; ``test_soak.py`` runs a smaller one in the test suite.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from pynector import Pynector
from pynector.errors import PynectorError

from ._servers import RETRY_AFTER_FORMS, FaultServerProcess

HANG_LIMIT = 30.0
"""No single unit of work may take longer than this; one that does is a hang."""

SETTLE = 1.2
"""Seconds of quiet before memory is measured: longer than any timer the soak sets."""

TRANSPORT_TIMEOUT = {"connect": 0.5, "read": 0.4, "write": 1.0, "pool": 1.0}
CLIENT_CONFIG = {
    "timeout": 1.0,  # the client's deadline: the only thing that ends a trickle
    "retry_delay": 0.002,
    "retry_max_delay": 0.01,
    "retry_after_max": 0.01,  # longer Retry-After values are raised at once
}

# (fault, weight): how often each fault is chosen, in percent.
KINDS: tuple[tuple[str, float], ...] = (
    ("ok", 56.0),
    ("slow", 6.0),
    ("body", 5.0),
    ("ok-close", 4.0),
    ("flaky", 5.0),
    ("5xx", 4.0),
    ("429", 3.0),
    ("reset", 3.0),
    ("reset-early", 2.0),
    ("close", 2.0),
    ("truncated", 2.0),
    ("malformed", 1.0),
    ("huge-headers", 0.5),
    ("redirect-loop", 0.5),
    ("refused", 1.0),
    ("stall-headers", 0.5),
    ("stall-body", 0.5),
    ("trickle", 0.2),
    ("hang", 0.1),
)

# What the client does for each fault when nothing cancels it: the error class
# (or "ok"). "flaky" fails once with 503: "ok" when retried, else ServerError.
EXPECTED: dict[str, str] = {
    "ok": "ok",
    "slow": "ok",
    "body": "ok",
    "ok-close": "ok",
    "flaky": "ServerError",
    "5xx": "ServerError",
    "429": "RateLimitError",
    "reset": "ConnectionError",
    "reset-early": "ConnectionError",
    "close": "ConnectionError",
    "truncated": "ConnectionError",
    "malformed": "ProtocolError",
    "huge-headers": "ProtocolError",
    "redirect-loop": "ProtocolError",
    "refused": "ConnectionError",
    "stall-headers": "TimeoutError",
    "stall-body": "TimeoutError",
    "trickle": "TimeoutError",
    "hang": "TimeoutError",
}

# Faults in the body: a stream left after its first chunk may see none of them.
BODY_FAULTS = frozenset({"reset", "truncated", "stall-body", "trickle"})

OPERATIONS = (("request", 55.0), ("retry", 25.0), ("stream", 7.0), ("stream-early", 5.0))
BATCH_SHARE = 0.08  # of units: a batch_request of 2-8 requests

# Memory bounds, between a closed warm-up client and the closed soak client
# (no client alive either time): a leak of one object per request would be
# 100,000 objects on the full soak, 3,000 on the test's.
OBJECT_GROWTH_LIMIT = 2_000
RSS_GROWTH_LIMIT_MIB = 32

# A fault that answers at once can still time out on a starved machine (the
# fault server is another process); more than this share of such timeouts fails.
LATE_LIMIT = 0.01


@dataclass(frozen=True, slots=True)
class Spec:
    """One request of the soak and what may come of it."""

    index: int
    kind: str
    data: dict[str, Any]
    options: dict[str, Any]
    replayable: bool


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work for a worker: one call of the client."""

    op: str  # request, retry, stream, stream-early, batch
    specs: tuple[Spec, ...]
    cancel_after: float | None = None  # the caller's cancel scope fires after this
    timeout: float | None = None  # the client's own deadline (timeout=)
    batch_timeout: float | None = None
    batch_retries: int = 0

    def allowed(self, spec: Spec) -> set[str]:
        """The outcomes the fault matrix allows for ``spec`` in this unit."""
        retried = self.op == "retry" or (self.op == "batch" and self.batch_retries > 0)
        allowed = {EXPECTED[spec.kind]}
        if spec.kind == "flaky" and retried and spec.replayable:
            # Retried into success, unless a deadline got in the way: a wait that
            # would end past the caller's deadline is not slept (the 503 is raised
            # at once), and attempts cut short by timeout= before they reached the
            # server can leave the 503 to the last attempt.
            deadline = (self.cancel_after, self.batch_timeout, self.timeout) != (None,) * 3
            allowed = {"ok", "ServerError"} if deadline else {"ok"}
        if self.op == "stream-early" and spec.kind in BODY_FAULTS:
            allowed.add("ok")
        if self.cancel_after is not None:
            allowed.add("cancelled")
        if self.timeout is not None or self.batch_timeout is not None:
            allowed.add("TimeoutError")
        return allowed


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(names, weights)[0]


def _spec(rng: random.Random, index: int, server: FaultServerProcess, name: str) -> Spec:
    kind = _pick(rng, KINDS)
    options: dict[str, Any] = {}
    if kind == "slow":
        data: dict[str, Any] = {"path": "/slow", "params": {"ms": rng.randint(1, 30)}}
    elif kind == "body":
        data = {"path": "/body", "params": {"chunks": rng.randint(1, 8)}}
    elif kind == "flaky":
        data = {"path": f"/flaky/{name}-{index}", "params": {"fail": 1, "status": 503}}
    elif kind == "5xx":
        code = rng.choice((500, 502, 503, 504))
        data = {"path": f"/status/{code}", "params": {"ra": rng.choice(RETRY_AFTER_FORMS)}}
    elif kind == "429":
        data = {"path": "/status/429", "params": {"ra": rng.choice(RETRY_AFTER_FORMS)}}
    elif kind == "refused":
        data = {"url": f"{server.refused_url}/x"}
    elif kind == "hang":
        data = {"url": f"{server.hang_url}/x"}
    else:
        data = {"path": f"/{kind}"}
    if kind == "redirect-loop":
        options["follow_redirects"] = True
    method = rng.choices(("GET", "POST", "POST-KEY"), (80, 13, 7))[0]
    replayable = method != "POST"
    if method != "GET":
        data["method"] = "POST"
        data["json"] = {"index": index}
    if method == "POST-KEY":
        data["headers"] = {"Idempotency-Key": f"soak-{index}"}
    return Spec(index, kind, data, options, replayable)


def plan(n: int, seed: int, server: FaultServerProcess, name: str = "soak") -> Iterator[Unit]:
    """The soak's work, ``n`` requests in all, drawn from ``seed``.

    ``name`` keeps the server's per-request state (``/flaky/NAME-INDEX``) apart
    from other plans run against the same server.
    """
    rng = random.Random(seed)
    index = 0
    while index < n:
        if rng.random() < BATCH_SHARE:
            size = min(rng.randint(2, 8), n - index)
            specs = tuple(_spec(rng, index + i, server, name) for i in range(size))
            index += size
            cancel = rng.uniform(0.0, 0.02) if rng.random() < 0.08 else None
            yield Unit(
                "batch",
                specs,
                cancel_after=cancel,
                batch_timeout=rng.uniform(0.005, 0.05) if rng.random() < 0.3 else None,
                batch_retries=rng.choice((0, 1)),
            )
            continue
        spec = _spec(rng, index, server, name)
        index += 1
        op = _pick(rng, OPERATIONS)
        draw = rng.random()
        if draw < 0.08:
            yield Unit(op, (spec,), cancel_after=rng.uniform(0.0, 0.02))
        elif draw < 0.11:
            yield Unit(op, (spec,), timeout=rng.uniform(0.002, 0.03))
        else:
            yield Unit(op, (spec,))


# -- telemetry -------------------------------------------------------------------------


class SpanCount:
    """Spans started and ended by pynector-otel during the soak."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0


@contextmanager
def traced() -> Iterator[SpanCount]:
    """Trace every client with a fresh pynector-otel on its own OpenTelemetry SDK provider.

    Installed plugins are left out (``PYNECTOR_PLUGINS=""``) so nothing else
    traces the soak, and nothing is stored: a span processor only counts spans
    started and ended (every span must end, even when its request is cancelled).
    """
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from pynector import registry
    from pynector_otel import OtelPlugin

    count = SpanCount()

    class Counter(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            count.started += 1

        def on_end(self, span: Any) -> None:
            count.ended += 1

    provider = TracerProvider()
    provider.add_span_processor(Counter())
    previous = os.environ.get("PYNECTOR_PLUGINS")
    os.environ["PYNECTOR_PLUGINS"] = ""
    registry.clear_cache()
    name = registry.register_plugin(OtelPlugin(tracer_provider=provider), name="soak-otel")
    try:
        yield count
    finally:
        registry.unregister_plugin(name)
        if previous is None:
            del os.environ["PYNECTOR_PLUGINS"]
        else:
            os.environ["PYNECTOR_PLUGINS"] = previous
        registry.clear_cache()
        provider.shutdown()


# -- what the process holds --------------------------------------------------------


def open_fds() -> set[tuple[int, str]]:
    """The file descriptors open in this process, with what each points at.

    A socket shows as ``socket:[inode]``, so a socket opened and left open
    during the run is a new entry even if its number was used before.
    """
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
        except OSError:
            continue  # the descriptor listdir itself used, already closed
    return found


def _sockets(fds: set[tuple[int, str]]) -> int:
    return sum(target.startswith("socket:") for _, target in fds)


def rss_mib() -> float:
    """This process's resident memory, in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_objects() -> int:
    """Objects the garbage collector tracks, after a full collection."""
    gc.collect()
    return len(gc.get_objects())


@dataclass
class Sample:
    """Memory at one point of the run."""

    done: int
    objects: int
    rss_mib: float


@dataclass
class SoakReport:
    """What a soak did and what it found."""

    backend: str
    seed: int
    requests: int
    concurrency: int
    engine: str = "auto"
    elapsed: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    fds_before: set[tuple[int, str]] = field(default_factory=set)
    fds_after: set[tuple[int, str]] = field(default_factory=set)
    tasks_before: int = 0
    tasks_after: int = 0
    samples: list[Sample] = field(default_factory=list)
    quiescent: list[Sample] = field(default_factory=list)
    warm_up: tuple[int, int, list[str]] = (0, 0, [])
    late: int = 0
    spans: tuple[int, int] | None = None  # (started, ended) when traced
    object_growth: int = 0
    rss_growth_mib: float = 0.0
    peak_rss_mib: float = 0.0
    warnings: list[str] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)
    healthy_after: int = 0
    stopped_by_time_limit: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def format(self) -> str:
        """A plain-text report."""
        rate = self.requests / self.elapsed if self.elapsed else 0.0
        lines = [
            f"## soak: {self.requests:,} requests, backend {self.backend}, engine "
            f"{self.engine}, seed {self.seed}, concurrency {self.concurrency}",
            f"wall time {self.elapsed:.1f} s ({rate:,.0f} requests/s), "
            f"server saw {self.server.get('requests', 0):,} requests on "
            f"{self.server.get('connections', 0):,} connections",
            "",
            "outcomes:",
        ]
        total = sum(self.outcomes.values())
        for outcome, count in self.outcomes.most_common():
            lines.append(f"  {outcome:<22} {count:>8,}  {count / max(total, 1):6.1%}")
        lines.append(f"  {'total':<22} {total:>8,}")
        lines.append("")
        lines.append("by fault (outcome: count):")
        for kind, _ in KINDS:
            counts = self.by_kind.get(kind)
            if counts:
                shown = ", ".join(f"{name} {count:,}" for name, count in counts.most_common())
                lines.append(f"  {kind:<15} {shown}")
        lines.append("")
        lines.append(
            "memory (live objects after a full gc / RSS MiB; * = no client alive, "
            f"the first after a {self.warm_up[0]:,}-request warm-up client):"
        )
        for sample in self.samples:
            mark = "*" if sample in self.quiescent else " "
            lines.append(
                f"  after {sample.done:>8,}:{mark} {sample.objects:>9,}  {sample.rss_mib:7.1f}"
            )
        lines += [
            f"  left behind by the soak: {self.object_growth:+,} objects, "
            f"{self.rss_growth_mib:+.1f} MiB RSS (peak {self.peak_rss_mib:.1f} MiB)",
            "",
            f"file descriptors: {len(self.fds_before)} before, {len(self.fds_after)} after "
            f"(sockets {_sockets(self.fds_before)} -> {_sockets(self.fds_after)}); "
            f"opened during the run and still open: {len(self.fds_after - self.fds_before)}",
            f"tasks: {self.tasks_before} before, {self.tasks_after} after",
            "spans (pynector-otel on the OpenTelemetry SDK): "
            + (
                "not traced"
                if self.spans is None
                else f"{self.spans[0]:,} started, {self.spans[1]:,} ended"
            ),
            f"late replies (timeouts of faults that answer at once): {self.late}",
            f"server: {self.server.get('open', '?')} connections open at the end",
            f"warnings / unraisable exceptions: {len(self.warnings)}",
            f"healthy requests after the soak: {self.healthy_after}",
            "",
        ]
        if self.problems:
            lines.append("FAILED:")
            lines += [f"  - {problem}" for problem in self.problems]
        else:
            lines.append("PASSED: every request accounted for, nothing leaked")
        return "\n".join(lines)


# -- running it -----------------------------------------------------------------------


class _Recorder:
    """Every request's outcome, set exactly once, checked against the fault matrix.

    Only counters and a bitmap are kept, allocated up front, so the harness
    itself does not grow with the number of requests.
    """

    def __init__(self, n: int) -> None:
        self.seen = bytearray(n)
        self.done = 0
        self.twice = 0
        self.outcomes: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[str]] = {kind: Counter() for kind, _ in KINDS}
        self.unexpected = 0
        self.late = 0
        self.examples: list[str] = []

    def record(self, unit: Unit, spec: Spec, outcome: str) -> None:
        if self.seen[spec.index]:
            self.twice += 1
            return
        self.seen[spec.index] = 1
        self.done += 1
        self.outcomes[outcome] += 1
        self.by_kind[spec.kind][outcome] += 1
        allowed = unit.allowed(spec)
        if outcome == "TimeoutError" and outcome not in allowed:
            # A healthy reply that did not come within the read timeout (0.4 s) or
            # the deadline (1 s): the machine stalled. Counted, bounded in _summarise.
            self.late += 1
        elif outcome not in allowed:
            self.unexpected += 1
            if len(self.examples) < 20:
                self.examples.append(
                    f"request {spec.index} ({spec.kind}, {unit.op}, "
                    f"{spec.data.get('method', 'GET')}, cancel_after={unit.cancel_after}, "
                    f"timeout={unit.timeout}, batch_timeout={unit.batch_timeout}): "
                    f"{outcome}, expected one of {sorted(allowed)}"
                )


def _outcome(result: object) -> str:
    if isinstance(result, PynectorError):
        return type(result).__name__
    if isinstance(result, BaseException):
        return f"unexpected {type(result).__module__}.{type(result).__qualname__}: {result}"
    return "ok"


class _Watchdog:
    """Cancels (and marks as hung) any unit of work older than ``HANG_LIMIT``.

    One task checks every half second, so no unit needs a timer of its own: a
    per-unit 30 s cancel scope would leave a timer (and what its context holds)
    in asyncio's heap long after the unit ended, and blur the memory figures.
    """

    def __init__(self) -> None:
        self.running: dict[anyio.CancelScope, float] = {}
        self.hung: set[anyio.CancelScope] = set()

    async def run(self) -> None:
        while True:
            await anyio.sleep(0.5)
            now = anyio.current_time()
            for scope, started in list(self.running.items()):
                if now - started > HANG_LIMIT:
                    self.hung.add(scope)
                    scope.cancel()


async def _run_unit(client: Pynector, unit: Unit, recorder: _Recorder, watchdog: _Watchdog) -> None:
    results: list[object] | None = None
    with anyio.CancelScope() as guard:
        watchdog.running[guard] = anyio.current_time()
        try:
            with anyio.move_on_after(unit.cancel_after) as scope:
                results = await _call(client, unit)
        finally:
            del watchdog.running[guard]
    hung = guard in watchdog.hung
    watchdog.hung.discard(guard)
    for position, spec in enumerate(unit.specs):
        if hung:
            outcome = "hung"
        elif results is None:
            outcome = "cancelled" if scope.cancelled_caught else "unexpected: no result"
        else:
            outcome = _outcome(results[position])
        recorder.record(unit, spec, outcome)


async def _call(client: Pynector, unit: Unit) -> list[object]:
    """Make the unit's call; return one result or exception per request."""
    if unit.op == "batch":
        requests = [(spec.data, spec.options) for spec in unit.specs]
        return await client.batch_request(
            requests,
            max_concurrency=4,
            timeout=unit.batch_timeout,
            max_retries=unit.batch_retries,
        )
    (spec,) = unit.specs
    try:
        if unit.op == "request":
            response = await client.request(spec.data, timeout=unit.timeout, **spec.options)
            return [response]
        if unit.op == "retry":
            response = await client.request_with_retry(
                spec.data, max_retries=2, timeout=unit.timeout, **spec.options
            )
            return [response]
        async with client.stream(spec.data, timeout=unit.timeout, **spec.options) as chunks:
            async for _chunk in chunks:
                if unit.op == "stream-early":
                    break
        return [True]
    except Exception as exc:
        return [exc]


async def _drive(
    server: FaultServerProcess,
    report: SoakReport,
    units: Iterator[Unit],
    recorder: _Recorder,
    time_limit: float,
    marks: list[int],
) -> bool:
    """Run ``units`` through a new client, then a healthy batch; close it.

    Returns whether the time limit stopped the loop.
    """
    async with Pynector(
        transport_type="http",
        base_url=server.url,
        timeout=TRANSPORT_TIMEOUT,
        max_redirects=3,
        engine=report.engine,
        config={**CLIENT_CONFIG, "max_connections": report.concurrency + 32},
    ) as client:
        watchdog = _Watchdog()

        async def worker() -> None:
            for unit in units:
                await _run_unit(client, unit, recorder, watchdog)
                while marks and recorder.done >= marks[0]:
                    marks.pop(0)
                    report.samples.append(Sample(recorder.done, live_objects(), rss_mib()))

        with anyio.move_on_after(time_limit) as limit:
            async with anyio.create_task_group() as group:
                group.start_soon(watchdog.run)
                async with anyio.create_task_group() as workers:
                    for _ in range(report.concurrency):
                        workers.start_soon(worker)
                group.cancel_scope.cancel()
        healthy = await client.batch_request(
            [({"path": "/ok"}, {}) for _ in range(200)], max_concurrency=50, timeout=30
        )
        report.healthy_after = sum(not isinstance(result, BaseException) for result in healthy)
    return limit.cancelled_caught


async def _quiet_sample(done: int) -> Sample:
    """Memory with no client alive, once every timer the run set has fired or lapsed."""
    await anyio.sleep(SETTLE)
    return Sample(done, live_objects(), rss_mib())


async def run_soak(
    server: FaultServerProcess,
    *,
    requests: int,
    seed: int = 0,
    concurrency: int = 64,
    time_limit: float = 600.0,
    backend: str = "",
    engine: str = "auto",
    checkpoints: int = 10,
    spans: SpanCount | None = None,
) -> SoakReport:
    """Run the soak against ``server`` (already started) and check what it left behind.

    A warm-up client first sends a tenth as many requests (at most 2,000) of the
    same mix and is closed: imports, caches and lazily created state are then
    in place. Memory is measured with no client alive after the warm-up and
    again after the soak's own client is closed: the difference is what the
    soak left behind. In between, memory is sampled ``checkpoints`` times.

    Args:
        server: The fault server process.
        requests: How many requests in all.
        seed: Seed of the random plan (faults, operations, cancellations).
        concurrency: Workers, each making one call at a time.
        time_limit: Seconds after which the loop stops even if requests remain.
        backend: The AnyIO backend's name, for the report.
        engine: The HTTP transport's ``engine=`` option.
        checkpoints: Memory samples taken during the run.
        spans: The span count of :func:`traced`, when the soak runs inside it.

    Returns:
        The report; ``report.problems`` lists every failed check.
    """
    report = SoakReport(backend, seed, requests, concurrency, engine=engine)
    recorder = _Recorder(requests)
    warm_up = _Recorder(min(2_000, max(1, requests // 10)))
    caught: list[str] = []
    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        caught.append(f"unraisable: {info.exc_type.__name__}: {info.exc_value} ({info.object!r})")

    gc.collect()
    report.fds_before = open_fds()
    report.tasks_before = len(anyio.get_running_tasks())
    marks = [requests * i // checkpoints for i in range(1, checkpoints)]
    deadline = anyio.current_time() + time_limit
    sys.unraisablehook = unraisable
    try:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always", ResourceWarning)
            units = plan(len(warm_up.seen), seed + 1_000_003, server, "warm-up")
            await _drive(server, report, units, warm_up, time_limit, [])
            report.quiescent.append(await _quiet_sample(0))
            started = time.perf_counter()
            left = deadline - anyio.current_time()
            units = plan(requests, seed, server)
            report.stopped_by_time_limit = await _drive(
                server, report, units, recorder, left, marks
            )
            report.elapsed = time.perf_counter() - started
            report.quiescent.append(await _quiet_sample(recorder.done))
            report.server = server.stats(idle=True)
            report.fds_after = open_fds()
            report.tasks_after = len(anyio.get_running_tasks())
            caught.extend(f"{w.category.__name__}: {w.message}" for w in raised)
    finally:
        sys.unraisablehook = previous_hook
    report.warnings = caught
    report.warm_up = (warm_up.done, warm_up.unexpected, warm_up.examples)
    report.samples = sorted([*report.samples, *report.quiescent], key=lambda s: s.done)
    report.peak_rss_mib = max((s.rss_mib for s in report.samples), default=rss_mib())
    if spans is not None:
        report.spans = (spans.started, spans.ended)
    _summarise(report, recorder)
    return report


def _summarise(report: SoakReport, recorder: _Recorder) -> None:
    problems = report.problems
    report.outcomes = recorder.outcomes
    report.by_kind = {kind: counts for kind, counts in recorder.by_kind.items() if counts}
    report.unexpected = recorder.examples
    missing = report.requests - recorder.done
    if missing:
        report.outcomes["not run"] = missing
    if report.stopped_by_time_limit:
        problems.append(f"the time limit stopped the loop: {missing} requests not run")
    elif missing:
        problems.append(f"{missing} requests have no outcome")
    if recorder.twice:
        problems.append(f"{recorder.twice} requests got two outcomes")
    _, warm_unexpected, warm_examples = report.warm_up
    if warm_unexpected:
        problems.append(
            f"{warm_unexpected} warm-up outcomes the fault matrix does not allow, e.g. "
            + "; ".join(warm_examples[:3])
        )
    report.late = recorder.late
    if recorder.late > LATE_LIMIT * report.requests:
        problems.append(
            f"{recorder.late} timeouts on faults that answer at once (more than "
            f"{LATE_LIMIT:.0%} of the requests): a stuck pool or a starved machine"
        )
    if recorder.unexpected:
        problems.append(
            f"{recorder.unexpected} outcomes the fault matrix does not allow, e.g. "
            + "; ".join(recorder.examples[:5])
        )
    leaked = sorted(report.fds_after - report.fds_before)
    if leaked:
        problems.append(f"{len(leaked)} file descriptors left open: {leaked[:10]}")
    if report.spans is not None and report.spans[0] != report.spans[1]:
        problems.append(f"spans started and ended differ: {report.spans}")
    if report.tasks_after != report.tasks_before:
        problems.append(f"tasks: {report.tasks_before} before, {report.tasks_after} after")
    if report.warnings:
        problems.append(f"{len(report.warnings)} warnings, e.g. {report.warnings[:3]}")
    if report.server.get("open") != 0:
        problems.append(f"the server still has {report.server.get('open')} connections open")
    if report.healthy_after != 200:
        problems.append(f"only {report.healthy_after}/200 healthy requests succeeded afterwards")
    if len(report.quiescent) == 2:
        before, after = report.quiescent
        report.object_growth = after.objects - before.objects
        report.rss_growth_mib = after.rss_mib - before.rss_mib
        if report.object_growth > OBJECT_GROWTH_LIMIT:
            problems.append(
                f"live objects grew by {report.object_growth:,} over {after.done:,} requests "
                f"once the client was closed (limit {OBJECT_GROWTH_LIMIT:,})"
            )
        if report.rss_growth_mib > RSS_GROWTH_LIMIT_MIB:
            problems.append(
                f"RSS grew by {report.rss_growth_mib:.1f} MiB after warm-up "
                f"(limit {RSS_GROWTH_LIMIT_MIB} MiB)"
            )
