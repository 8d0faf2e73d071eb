"""Hedged requests: a second copy of a call that is still waiting; the first success wins.

A few calls in a hundred take far longer than the rest (a slow replica, a
lost packet, a cold cache). Waiting for them sets the tail latency of every
batch. A hedge sends the same call again once it has waited longer than
``after`` (seconds, or a percentile of the client's recent latencies such as
``"p95"``) and takes whichever copy succeeds first; the other is cancelled.
Only calls that may be sent twice are hedged (the transport's
``replayable``), and every hedge is charged to the client's retry budget, so
hedging adds a bounded share of load.

:class:`LatencyHistogram` keeps recent latencies in fixed memory;
:class:`HedgePolicy` turns them into the wait before a hedge; :func:`race`
runs the two copies.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from pynector.errors import ConfigurationError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._retry_budget import RetryBudget

__all__ = ["Copy", "HedgePolicy", "LatencyHistogram", "parse_hedge_after", "race"]

_LOW = 1e-4  # seconds: the top of the first bucket (faster latencies share it)
_STEPS = 8  # buckets per doubling: about 9% between bucket bounds
_BUCKETS = 27 * _STEPS  # up to 1e-4 * 2**27 s, about 3.7 hours
# The upper bound of each bucket, in seconds.
_BOUNDS = tuple(_LOW * math.pow(2.0, (index + 1) / _STEPS) for index in range(_BUCKETS))
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
# The least wait before a hedge: below it two copies race on scheduler noise.
HEDGE_FLOOR = 0.001


class LatencyHistogram:
    """Recent latencies in fixed memory, for percentiles.

    Latencies go into log-spaced buckets (8 per doubling, from 100 us to
    hours), in two generations: the current one and the one before it. The
    current generation is retired once it holds ``window`` latencies or is
    ``max_age`` seconds old, so a percentile reflects between ``window`` and
    ``2 * window`` recent calls (fewer when the client is quiet). A
    percentile is the upper bound of its bucket: at most 9% above the true
    value, never below it.

    Args:
        window: Latencies per generation.
        max_age: Seconds after which a generation is retired however few it holds.
    """

    __slots__ = (
        "_current",
        "_current_count",
        "_previous",
        "_previous_count",
        "_since",
        "max_age",
        "window",
    )

    def __init__(self, window: int = 1000, max_age: float = 60.0) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(
                f"LatencyHistogram(window={window!r}) must be a whole number >= 1"
            )
        if not isinstance(max_age, int | float) or not max_age > 0:
            raise ConfigurationError(
                f"LatencyHistogram(max_age={max_age!r}) must be a number of seconds > 0"
            )
        self.window = window
        self.max_age = float(max_age)
        self._current = [0] * _BUCKETS
        self._previous = [0] * _BUCKETS
        self._current_count = 0
        self._previous_count = 0
        self._since = time.monotonic()

    def _age(self, now: float, adding: bool = False) -> None:
        """Retire the current generation if it is old, or full when ``adding`` (too old: both)."""
        if now - self._since >= 2 * self.max_age:
            self._previous = [0] * _BUCKETS
            self._previous_count = 0
            self._current = [0] * _BUCKETS
            self._current_count = 0
            self._since = now
        elif (adding and self._current_count >= self.window) or now - self._since >= self.max_age:
            self._previous, self._current = self._current, self._previous
            self._previous_count = self._current_count
            self._current[:] = [0] * _BUCKETS
            self._current_count = 0
            self._since = now

    def record(self, seconds: float) -> None:
        """Count one latency, in seconds."""
        self._age(time.monotonic(), adding=True)
        index = 0 if seconds <= _LOW else int(math.log2(seconds / _LOW) * _STEPS)
        index = min(index, _BUCKETS - 1)
        self._current[index] += 1
        self._current_count += 1

    @property
    def count(self) -> int:
        """How many latencies the percentiles are drawn from now."""
        self._age(time.monotonic())
        return self._current_count + self._previous_count

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0 < q < 100) in seconds, or ``None`` with no latencies."""
        total = self.count
        if not total:
            return None
        target = q / 100.0 * total
        seen = 0
        current, previous = self._current, self._previous
        for index in range(_BUCKETS):
            seen += current[index] + previous[index]
            if seen >= target:
                return _BOUNDS[index]
        return _BOUNDS[-1]  # pragma: no cover - float rounding


def parse_hedge_after(value: object, key: str = "hedge_after") -> float | str | None:
    """A ``hedge_after`` setting as seconds (``float``), a percentile (``"p95"``) or ``None``.

    Accepts a number of seconds > 0, a string of one (from the environment),
    ``"pNN"`` with 0 < NN < 100 (``"p95"``, ``"p99.9"``), and ``None`` or
    ``"none"``/``""`` for no hedging.

    Raises:
        ConfigurationError: For any other value, naming ``key``.
    """
    hint = (
        f"{key}={value!r} is invalid: expected seconds > 0 (e.g. 0.5), a percentile of "
        "the client's recent latencies (e.g. 'p95' or 'p99'), or None for no hedging"
    )
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none"):
            return None
        match = _PERCENTILE.match(text)
        if match:
            q = float(match.group(1))
            if 0 < q < 100:
                return f"p{match.group(1)}"
            raise ConfigurationError(hint)
        try:
            value = float(text)
        except ValueError:
            raise ConfigurationError(hint) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(hint)
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(hint)
    return float(value)


class HedgePolicy:
    """How long a call waits before a second copy of it is sent.

    Fixed (``after=0.5``): always that many seconds. A percentile
    (``after="p95"``): that percentile of the latencies :meth:`record` was
    given (a :class:`LatencyHistogram`), never below 1 ms; no hedge at all
    until ``min_samples`` latencies are known, since a client that has seen
    no traffic cannot tell a slow call from a normal one. By default
    ``min_samples`` is enough for the percentile to rest on a few calls above
    it: 40 for ``"p95"``, 200 for ``"p99"``.

    Args:
        after: Seconds (> 0) or a percentile string (``"p50"`` to ``"p99.9"``).
        min_samples: Latencies needed before a percentile is used.
        window: Latencies per generation of the histogram.
        max_age: Seconds a generation of the histogram is kept.

    Raises:
        ConfigurationError: For a bad ``after``.
    """

    __slots__ = ("_delay", "_fresh", "_until", "after", "histogram", "min_samples", "quantile")

    def __init__(
        self,
        after: float | str,
        *,
        min_samples: int | None = None,
        window: int = 1000,
        max_age: float = 60.0,
    ) -> None:
        parsed = parse_hedge_after(after, "HedgePolicy(after)")
        if parsed is None:
            raise ConfigurationError(
                "HedgePolicy(after=None) hedges nothing: leave the policy out instead"
            )
        self.after: float | str = parsed
        self.quantile: float | None = None
        self.histogram: LatencyHistogram | None = None
        self._delay: float | None = None
        self._fresh = 0
        self._until = 0.0
        if isinstance(parsed, str):
            self.quantile = float(parsed[1:])
            self.histogram = LatencyHistogram(window, max_age)
            if min_samples is None:
                min_samples = max(20, math.ceil(2 / (1 - self.quantile / 100)))
        else:
            self._delay = parsed
        self.min_samples = 0 if min_samples is None else min_samples

    def delay(self) -> float | None:
        """Seconds to wait before hedging the call starting now, or ``None``: do not hedge."""
        histogram = self.histogram
        if histogram is None:
            return self._delay
        # The percentile is recomputed every 16 latencies (or second), not on every call.
        now = time.monotonic()
        if self._fresh <= 0 or now >= self._until:
            self._fresh = 16
            self._until = now + 1.0
            count = histogram.count
            if count < self.min_samples:
                self._delay = None
                self._fresh = 1  # until warmed up, look again at the next call
            else:
                assert self.quantile is not None
                value = histogram.percentile(self.quantile)
                self._delay = None if value is None else max(value, HEDGE_FLOOR)
        return self._delay

    def record(self, seconds: float) -> None:
        """Count how long a first copy took (or had waited when the hedge won)."""
        histogram = self.histogram
        if histogram is not None:
            histogram.record(seconds)
            self._fresh -= 1


def _log(message: str, *args: object) -> None:
    import logging  # only when a hedge is considered: keeps ``import pynector`` light

    logging.getLogger("pynector").debug(message, *args)


class Copy:
    """What one copy of a hedged call tells the race, from inside the client's limits.

    The client calls :meth:`sent` once the copy has passed every limit and
    is about to be sent, and :meth:`succeeded` when it has its reply, before
    it gives its limits back: so a copy still waiting for a slot never gets
    the one the winner frees.
    """

    __slots__ = ("_race", "index", "sent_at")

    def __init__(self, race: _Race, index: int) -> None:
        self._race = race
        self.index = index
        self.sent_at = 0.0

    def sent(self) -> None:
        """The copy is being sent (raises if the other copy has already won)."""
        race = self._race
        if race.won >= 0:
            raise _Lost
        self.sent_at = time.monotonic()
        if self.index == 0:
            race.sent.set()

    def succeeded(self) -> None:
        """The copy has its reply: it wins unless the other won first."""
        race = self._race
        if race.won < 0:
            race.won = self.index


class _Lost(Exception):
    """A copy of a hedged call not sent: the other had already succeeded (never escapes)."""


class _Race:
    __slots__ = ("done", "sent", "won")

    def __init__(self) -> None:
        self.sent = anyio.Event()  # copy 0 is being sent (or has failed before)
        self.done = anyio.Event()  # copy 0 has finished, either way
        self.won = -1


async def race(
    run: Callable[[Copy, float | None], Awaitable[Any]],
    policy: HedgePolicy,
    budget: RetryBudget | None,
    timeout: float | None,
) -> Any:
    """Run a call, and a second copy of it if the first is still waiting; the first success wins.

    ``run(copy, timeout)`` runs copy ``copy.index`` (0, then 1) with its own
    ``timeout``, calling ``copy.sent()`` and ``copy.succeeded()`` (see
    :class:`Copy`). The wait before a hedge starts when copy 0 is sent. Copy
    1 is started after :meth:`HedgePolicy.delay` if copy 0 has not finished
    and ``budget.try_retry()`` allows it; it gets what is left of copy 0's
    ``timeout``. The first copy to succeed wins and the other is cancelled; a
    copy that fails waits for the other. When both fail, copy 0's error is
    raised.

    Returns:
        The winning copy's result.
    """
    state = _Race()
    copies = (Copy(state, 0), Copy(state, 1))
    results: list[Any] = [None, None]
    failures: list[Exception | None] = [None, None]

    async def attempt(copy: Copy, copy_timeout: float | None, group: TaskGroup) -> None:
        index = copy.index
        try:
            results[index] = await run(copy, copy_timeout)
        except Exception as exc:
            failures[index] = exc  # the other copy may still succeed
            return
        finally:
            if index == 0:
                state.sent.set()  # also when it failed before it was sent
                state.done.set()
        if state.won == index:
            if index == 0:
                policy.record(time.monotonic() - copy.sent_at)
            group.cancel_scope.cancel()  # the other copy, and its connection

    first = copies[0]
    async with anyio.create_task_group() as group:
        group.start_soon(attempt, first, timeout, group)
        await state.sent.wait()
        delay = policy.delay()
        if not state.done.is_set() and delay is not None and (timeout is None or delay < timeout):
            with anyio.move_on_after(first.sent_at + delay - time.monotonic()):
                await state.done.wait()
            if not state.done.is_set():
                if budget is None or budget.try_retry():
                    spent = time.monotonic() - first.sent_at
                    left = None if timeout is None else timeout - spent
                    if left is None or left > 0:
                        _log("call still waiting after %.3f s: sending a second copy", delay)
                        group.start_soon(attempt, copies[1], left, group)
                else:
                    _log("call still waiting after %.3f s: no hedge, retry budget spent", delay)
    if state.won == 1 and failures[0] is None:
        # Copy 0 was cancelled: it took at least this long (keeps the tail in the histogram).
        policy.record(time.monotonic() - first.sent_at)
    if state.won >= 0:
        return results[state.won]
    error = failures[0] if failures[0] is not None else failures[1]
    assert error is not None
    raise error
