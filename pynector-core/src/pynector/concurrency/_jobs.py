"""Batch jobs in a shared store: one input worked by many processes and machines.

A store that can hold jobs (``pynector-redis``) has a ``job(name, ...)``
method returning a :class:`Job`; :func:`job_store` tells whether a store has
one. The command line (``pynector batch --job NAME``) drives a job through
this protocol only, so the core never knows how the store keeps it:

1. :meth:`Job.start` with the input's :class:`JobInput` (or ``None`` to join
   a job already loaded) says whether this worker loads the input; the loader
   :meth:`~Job.append` s the request lines and calls :meth:`~Job.loaded`.
2. Every worker :meth:`~Job.claim` s lines, keeps its claims alive with
   :meth:`~Job.renew`, :meth:`~Job.record` s each result (exactly once in the
   job, whichever worker finished it) and gives unfinished claims back with
   :meth:`~Job.release` when it stops. A claim that is not renewed for the
   lease time (its worker died) is taken over by another worker's claim.
3. :meth:`~Job.status` counts, :meth:`~Job.results` reads every result in
   input order, :meth:`~Job.retry_failed` queues the failed requests again.

Every method raises :class:`~pynector.errors.StoreUnavailableError` when the
store cannot be reached; the caller waits and tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_JOB_TTL",
    "DEFAULT_LEASE",
    "Job",
    "JobClaim",
    "JobInput",
    "JobResult",
    "JobStatus",
    "JobStore",
    "job_store",
]

DEFAULT_LEASE = 30.0
"""Seconds a claim lives without a renewal before another worker takes it over."""

DEFAULT_JOB_TTL = 7 * 24 * 3600.0
"""Seconds a job stays in the store after its last activity (7 days), unless kept."""


@dataclass(frozen=True, slots=True)
class JobInput:
    """What identifies a job's input file: two workers with equal inputs join one job.

    Attributes:
        size: The file's size in bytes.
        sha256: The hex SHA-256 of its bytes.
    """

    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class JobClaim:
    """One request line held by one worker until it records the result or gives it back.

    Attributes:
        entry: The store's id of the claim (opaque).
        line: The request's line number in the input file (1-based).
        raw: The input line, as read from the file.
    """

    entry: str
    line: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class JobResult:
    """The result of one claimed request, to record in the job.

    Attributes:
        claim: The claim it answers.
        ok: Whether the request succeeded.
        text: The result line (JSON, without its newline).
    """

    claim: JobClaim
    ok: bool
    text: str


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where a job stands.

    Attributes:
        name: The job's name.
        state: ``"loading"`` while its input is being loaded, then ``"loaded"``.
        input: The input it was loaded from.
        requests: Requests loaded so far (valid lines with a new id).
        succeeded: Results recorded with ``"ok": true``.
        failed: Results recorded with ``"ok": false``.
        in_flight: Requests claimed by a worker, result not recorded yet.
        queued: Requests no worker has claimed yet.
        workers: Workers that renewed their claims within the lease time.
        rate: Results recorded per second over the last 10 seconds.
        bad_lines: Input lines skipped at loading (not a request).
        duplicates: Input lines skipped at loading (an id seen before).
        expires_in: Seconds until the job expires, or ``None`` if it is kept.
        extra: What else the store reports (for ``--json``).
    """

    name: str
    state: Literal["loading", "loaded"]
    input: JobInput
    requests: int
    succeeded: int
    failed: int
    in_flight: int
    queued: int
    workers: int
    rate: float
    bad_lines: int
    duplicates: int
    expires_in: float | None
    extra: dict[str, Any]

    @property
    def done(self) -> int:
        """Results recorded, succeeded or failed."""
        return self.succeeded + self.failed

    @property
    def finished(self) -> bool:
        """True when the input is loaded and every request has its result."""
        return self.state == "loaded" and self.done >= self.requests


class Job(Protocol):
    """One batch job in a shared store (see the module's docstring for the flow)."""

    @property
    def name(self) -> str:
        """The job's name (never a secret)."""
        ...

    async def start(self, input: JobInput | None, worker: str) -> bool:
        """Join the job as ``worker``; True when this worker must load the input.

        With ``input``, the job is created if it does not exist (and this worker
        loads it); an existing job must have the same input. A worker also loads
        when the loader of an existing job stopped before it finished (its
        :meth:`append` resumes where the other one stopped).

        Raises:
            ConfigurationError: If the job holds another input, or ``input`` is
                ``None`` and there is no such job.
        """
        ...

    async def append(self, lines: Sequence[tuple[int, bytes]], worker: str) -> None:
        """Queue request lines ``(line number, raw line)``, in increasing line order.

        Lines at or before the last line queued already are ignored, so a loader
        that takes over from a dead one may send the file from the start.
        """
        ...

    async def loaded(self, bad_lines: int, duplicates: int, worker: str) -> None:
        """Mark the input wholly queued (``bad_lines``, ``duplicates``: lines skipped)."""
        ...

    async def claim(self, worker: str, count: int, lease: float) -> tuple[list[JobClaim], bool]:
        """Claim up to ``count`` requests: the claims of dead workers first, then new ones.

        Returns:
            The claims, and whether the job is finished (loaded, every result in).
        """
        ...

    async def renew(self, worker: str, entries: Sequence[str]) -> None:
        """Keep ``worker``'s claims (their :attr:`JobClaim.entry`) alive for another lease."""
        ...

    async def record(self, worker: str, results: Sequence[JobResult]) -> list[bool]:
        """Record results; for each, True when this call recorded it (first to finish)."""
        ...

    async def release(self, worker: str, claims: Sequence[JobClaim]) -> None:
        """Give claims back at once, for any other worker to claim (still ours only)."""
        ...

    async def leave(self, worker: str) -> None:
        """Tell the job that ``worker`` stopped (it no longer counts as alive)."""
        ...

    async def status(self, lease: float = DEFAULT_LEASE) -> JobStatus:
        """The job's counts (workers alive: those seen within ``lease`` seconds).

        Raises:
            ConfigurationError: If there is no such job.
        """
        ...

    async def results(self, after: int, count: int) -> tuple[list[str], int | None]:
        """The result lines of lines ``after + 1`` to ``after + count``, in input order.

        Returns:
            The result lines found, and the ``after`` of the next call (``None``
            after the last line).
        """
        ...

    async def retry_failed(self) -> int:
        """Queue every failed request again (their results are removed); how many."""
        ...


@runtime_checkable
class JobStore(Protocol):
    """A store that can hold batch jobs."""

    def job(self, name: str, *, ttl: float | None = DEFAULT_JOB_TTL) -> Job:
        """The job ``name``; it expires ``ttl`` seconds after its last activity (``None``: kept)."""
        ...


def job_store(store: object) -> JobStore | None:
    """``store`` when it can hold jobs, else ``None`` (``memory://`` cannot)."""
    return store if isinstance(store, JobStore) else None
