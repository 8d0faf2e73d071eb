"""Adaptive concurrency: an in-flight limit that follows what the server can take.

The limit lives between ``min_limit`` (1) and ``max_limit`` (the client's
``max_connections``) and starts low. It is moved by what every finished call
shows, in the manner of TCP congestion control and Netflix's
concurrency-limits (AIMD with a latency gradient, as in ``Gradient2Limit``):

- **Slow start.** Until the first sign of overload the limit grows by one for
  every success, so it doubles each round trip.
- **Multiplicative decrease.** An overload answer (429, 503, 504, 529, a
  ``RateLimitError``) or a timed-out attempt cuts the limit by ``backoff``
  (x0.9), and to the number of the other calls still in flight when that is
  lower (at most by half): the server is full with those, and a refusal
  comes back at once, so the next call sent would be refused too. Only calls
  that started after the last cut cut again: those already in flight under
  the old limit say nothing new, so one burst of refusals is one cut, not
  one per refusal; but their room is not handed on either (the limit comes
  down to the calls still in flight, to no less than half the level of the
  last cut), so refused calls do not circulate through it.
- **Additive increase.** After the first cut, a success adds ``1 / limit``
  (one per round trip) while the limit is below 95 % of the level of the
  last cut; near that level (where the last refusal came from) a quarter of
  that, halved each time the same level is refused again (down to 1/16), so
  a steady server sees few refusals; once the limit has passed the level
  without a refusal it grows more each round trip (1, 2, 4 ... per round
  trip), so a server that gained capacity is found again quickly.
- **Latency gradient.** A short average of the round-trip times (about
  ``limit`` calls) is compared with a long one (about 500 calls, the
  baseline). While the short one is above ``tolerance`` (x1.5) times the
  baseline the limit does not grow, and it is cut once per round trip by the
  ratio (at most by ``backoff``): a server that queues instead of refusing
  is not pushed harder. When the short average falls below half the
  baseline (load is gone), the baseline follows it down at once.
- **Only when it matters.** A success grows the limit only when at least half
  of the limit was in use (a caller sending less than the limit learns
  nothing about it). Errors that say nothing about load (4xx, a cancelled
  call) leave it alone.

Everything is a few float operations per call, with no lock: the limit is
only read and written from the event loop's thread.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import anyio

from pynector import errors
from pynector.errors import ConfigurationError

__all__ = ["AdaptiveLimiter", "is_overload"]

#: HTTP statuses that mean "too much load": rate limited, unavailable,
#: gateway timeout, and Anthropic's "overloaded".
OVERLOAD_STATUSES = frozenset({429, 503, 504, 529})

_NEAR = 0.95  # below this share of the last cut's level: full speed
_NEAR_SPEED = 0.25  # growth per round trip between that share and the level ...
_NEAR_SLOWEST = 1.0 / 16.0  # ... halved for each refusal there, down to this
_LONG = 500.0  # calls in the long (baseline) average of the round-trip time


def is_overload(error: BaseException) -> bool:
    """Whether an attempt's error says the server is overloaded (it cuts the limit)."""
    if isinstance(error, errors.TimeoutError):
        return True
    if isinstance(error, errors.RateLimitError):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(error, errors.TransportError) and status in OVERLOAD_STATUSES


class AdaptiveLimiter:
    """An in-flight limit between ``min_limit`` and ``max_limit`` moved by each call's outcome.

    ``await acquire()`` waits for room under the current limit (first come,
    first served), ``release(started, error)`` gives it back and learns from
    the call: its round-trip time since ``started`` (``time.monotonic()``
    after ``acquire``) and its error, if any. :attr:`limit` is the limit in
    force now. See the module docstring for the algorithm.

    Args:
        max_limit: The highest the limit goes (the client's ``max_connections``).
        initial: Where it starts; default ``min(4, max_limit)``.
        min_limit: The lowest it goes.
        backoff: The factor an overload cuts the limit by, in ``[0.5, 1)``.
        tolerance: How far the recent round-trip time may rise above its
            baseline before the limit stops growing, > 1.
        clock: Seconds (``time.monotonic``); tests may pass another.

    Raises:
        ConfigurationError: For a bound, factor or start out of range.
    """

    __slots__ = (
        "_ceiling",
        "_clock",
        "_cut_at",
        "_in_flight",
        "_long",
        "_near",
        "_probe",
        "_short",
        "_slow_start",
        "_waiters",
        "backoff",
        "cuts",
        "estimate",
        "max_limit",
        "min_limit",
        "tolerance",
    )

    def __init__(
        self,
        max_limit: int,
        *,
        initial: int | None = None,
        min_limit: int = 1,
        backoff: float = 0.9,
        tolerance: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("max_limit", max_limit), ("min_limit", min_limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"AdaptiveLimiter({name}={value!r}) must be a whole number >= 1, e.g. 100"
                )
        if min_limit > max_limit:
            raise ConfigurationError(
                f"AdaptiveLimiter(min_limit={min_limit}) is above max_limit={max_limit}; "
                "give a min_limit <= max_limit"
            )
        start = min(4, max_limit) if initial is None else initial
        if (
            isinstance(start, bool)
            or not isinstance(start, int)
            or not (min_limit <= start <= max_limit)
        ):
            raise ConfigurationError(
                f"AdaptiveLimiter(initial={initial!r}) must be a whole number between "
                f"min_limit={min_limit} and max_limit={max_limit}"
            )
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not (0.5 <= backoff < 1)
        ):
            raise ConfigurationError(
                f"AdaptiveLimiter(backoff={backoff!r}) must be a number in [0.5, 1), e.g. 0.9"
            )
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not math.isfinite(tolerance)
            or tolerance <= 1
        ):
            raise ConfigurationError(
                f"AdaptiveLimiter(tolerance={tolerance!r}) must be a number > 1, e.g. 1.5"
            )
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.backoff = float(backoff)
        self.tolerance = float(tolerance)
        #: The limit as a real number; :attr:`limit` is its whole part.
        self.estimate = float(start)
        #: How many times the limit was cut.
        self.cuts = 0
        self._clock = clock
        self._in_flight = 0
        self._waiters: deque[anyio.Event] = deque()
        self._slow_start = True
        self._ceiling = float(max_limit)  # the level of the last cut
        self._probe = 1.0  # growth per round trip above the ceiling
        self._near = _NEAR_SPEED  # growth per round trip just below it
        self._cut_at = -math.inf
        self._short = 0.0  # recent round-trip time (an average over about `limit` calls)
        self._long = 0.0  # the baseline (an average over about _LONG calls)

    def __repr__(self) -> str:
        return (
            f"<AdaptiveLimiter limit={self.limit} in_flight={self._in_flight} "
            f"range={self.min_limit}..{self.max_limit}>"
        )

    @property
    def limit(self) -> int:
        """The most calls allowed in flight now."""
        return int(self.estimate)

    @property
    def in_flight(self) -> int:
        """The calls holding room now."""
        return self._in_flight

    @property
    def latency(self) -> tuple[float, float]:
        """``(recent, baseline)`` round-trip times in seconds (0.0 before the first call)."""
        return self._short, self._long

    # -- room ------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until a call fits under the limit, and count it in flight."""
        if self._in_flight < int(self.estimate) and not self._waiters:
            self._in_flight += 1  # no checkpoint when there is room (the usual case)
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._leave()  # room was handed over just as the wait was cancelled
            else:
                self._waiters.remove(event)
            raise

    def _leave(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        limit = int(self.estimate)
        while waiters and self._in_flight < limit:
            self._in_flight += 1  # the room goes to the waiter with the wake-up
            waiters.popleft().set()

    def release(self, started: float, error: BaseException | None = None) -> None:
        """Give the room back and learn from the call that held it.

        Args:
            started: ``clock()`` when the call was sent (after :meth:`acquire`).
            error: What the call raised, or ``None`` for a success. An
                overload (:func:`is_overload`) cuts the limit; other errors
                teach nothing.
        """
        if error is None:
            self._succeeded(self._clock() - started)
        elif is_overload(error):
            self._overloaded(started)
        self._leave()

    def forget(self) -> None:
        """Give the room back without learning anything (a cancelled call, a stream)."""
        self._leave()

    # -- learning ----------------------------------------------------------------------

    def _succeeded(self, rtt: float) -> None:
        estimate = self.estimate
        if self._long == 0.0:
            self._short = self._long = rtt
        else:
            self._short += (rtt - self._short) * (2.0 / (estimate + 1.0))
            self._long += (rtt - self._long) * (1.0 / _LONG)
            if self._short * 2.0 < self._long:
                self._long = self._short  # load went away: take the new baseline now
        if self._short > self.tolerance * self._long:
            # Queueing: no growth, and one gentle cut per round trip.
            now = self._clock()
            if now - rtt >= self._cut_at:
                self._cut(max(self.backoff, self.tolerance * self._long / self._short), now)
            return
        if self._in_flight * 2 < estimate or estimate >= self.max_limit:
            return  # the caller is not using the limit: nothing learned about it
        if self._slow_start:
            estimate += 1.0
        elif estimate < self._ceiling * _NEAR:
            estimate += 1.0 / estimate
        elif estimate < self._ceiling:
            estimate += self._near / estimate
        else:
            # Past the last cut without a refusal: probe faster each round trip.
            probe = self._probe
            estimate += probe / estimate
            if estimate >= self._ceiling + probe:
                self._ceiling = estimate
                self._probe = probe * 2.0
                self._near = _NEAR_SPEED  # the server took more: its capacity moved
        self.estimate = min(estimate, float(self.max_limit))

    def _overloaded(self, started: float) -> None:
        estimate = self.estimate
        # The server is full with the other calls still in flight: the room this call
        # held is not handed on (a refusal comes back at once, and the next call sent
        # now would be refused too); it comes back as those calls end.
        others = float(self._in_flight - 1)
        if started < self._cut_at:
            # Sent before the last cut: no new cut, but no room given on either.
            floor = max(float(self.min_limit), self._ceiling * 0.5)
            self.estimate = max(floor, min(estimate, others))
            return
        factor = self.backoff
        if others < estimate * factor:
            factor = max(others, estimate * 0.5) / estimate
        self._cut(factor, self._clock())

    def _cut(self, factor: float, now: float) -> None:
        if not self._slow_start and int(self.estimate) <= int(self._ceiling):
            # Refused again at (or below) the last cut's level: creep up to it slower.
            self._near = max(self._near / 2.0, _NEAR_SLOWEST)
        self._slow_start = False
        self._ceiling = self.estimate
        self._probe = 1.0
        self._cut_at = now
        self.cuts += 1
        self.estimate = max(float(self.min_limit), self.estimate * factor)
