"""``pynector batch [IN.jsonl] -o OUT.jsonl --store redis://... --job NAME``: one worker of a job.

Any number of workers, on any machines, work one job kept in a shared store
(:class:`~pynector.concurrency.Job`): the first worker with the input file
loads it, every worker claims request lines, sends them through the client's
streaming batch (an async iterable of claims), records each result in the job
(exactly once: the first to finish wins) and appends the results it recorded
to its own OUT. A worker keeps its claims alive every third of ``--lease``; the
claims of a worker that stops renewing them (killed, machine lost) are taken
over by the next claim of another worker after the lease. Ctrl-C gives the
claims not started yet back at once; a second Ctrl-C gives back the rest.
While the store is unreachable, the worker waits for it (noting it once) and
goes on where it stopped. See ``docs/distributed.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets as _secrets
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pynector.concurrency import TokenBudgetError
from pynector.errors import StoreUnavailableError

from ._batch import NO_OPTIONS, Batch, run_batch, unreadable
from ._errors import UsageError
from ._formats import OutputFormat
from ._secrets import request_secrets
from ._tokens import over_tpm

if TYPE_CHECKING:
    import argparse

    from pynector import BatchResult
    from pynector.concurrency import Job, JobClaim, JobInput, JobResult, Store

    from ._ledger import RequestLine
    from ._secrets import Secrets

__all__ = ["JobBatch", "fingerprint", "run_job", "worker_name"]

T = TypeVar("T")

_LOAD_CHUNK = 500  # request lines per round trip while loading
_RECORD_CHUNK = 500  # results per round trip while recording
_CLAIMED = 8  # claims kept per request the worker may have in flight
_LINGER = 0.25  # seconds a finished result waits for others to be recorded with it
_POLL = 0.1  # seconds between two claims that found nothing (others hold the rest)
_CLEANUP = 5.0  # seconds the last record and release may take after a second Ctrl-C


def fingerprint(path: Path) -> JobInput:
    """The input's size and SHA-256: what makes two workers' files the same job."""
    from pynector.concurrency import JobInput

    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
            size += len(block)
    return JobInput(size, digest.hexdigest())


def worker_name() -> str:
    """This worker's name in the job: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{_secrets.token_hex(3)}"


class JobBatch(Batch):
    """A ``pynector batch`` run that works a job in a shared store instead of a file alone.

    Set :attr:`store`, :attr:`job`, :attr:`input` and :attr:`lease` before :meth:`run`.
    """

    store: Store
    job: Job
    input: JobInput | None
    lease: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = worker_name()
        self.buffer: deque[JobClaim] = deque()  # claimed, not handed to the batch yet
        self.claims: dict[int, JobClaim] = {}  # handed to the batch, by batch index
        # Finished, not recorded yet: (result, line, ok, attempts, elapsed).
        self.unrecorded: list[tuple[JobResult, bytes, bool, int, float]] = []
        self.ready: Any = None  # an Event: results wait to be recorded
        self.wake: Any = None  # an Event: claims came into the buffer, or a stop
        self.need: Any = None  # an Event: the buffer runs low
        self.stop: Any = None  # an Event: the first signal came
        self.recording: Any = None  # a Lock: one round trip records a result, never two
        self.sending_done = False
        self.finished = False
        self.store_down = False
        self.recorded_elsewhere = 0
        self.requeued = 0
        self.refused = False
        self.loads = False

    # -- the store, patiently -----------------------------------------------------------

    async def _patient(self, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await operation(*args)``, waiting for the store for as long as it is down."""
        import anyio

        delay = 0.1
        while True:
            try:
                result = await operation(*args)
            except StoreUnavailableError as exc:
                if not self.store_down:
                    self.store_down = True
                    self.reporter.note(f"{exc}; waiting for it (the job is kept there)")
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if self.store_down:
                self.store_down = False
                self.reporter.note(f"the store {self.store.url} is back; going on")
            return result

    # -- claims in, results out ---------------------------------------------------------

    def _requests(self) -> AsyncIterator[tuple[Any, Mapping[str, Any]]]:
        return self._claimed()

    async def _claimed(self) -> AsyncIterator[tuple[Any, Mapping[str, Any]]]:
        """Each claimed request as ``(data, {})``, its line and claim kept by batch index."""
        import anyio

        parse = self.parser.parse
        estimate = self.support.estimate_tokens
        tpm = self.args.tpm
        index = 0
        while self.stopped_by is None:
            if not self.buffer:
                if self.finished:
                    return
                self.need.set()
                await self.wake.wait()
                self.wake = anyio.Event()
                continue
            if self.refused:
                # A request came back refused by the shared limits (the store is down):
                # wait for the store before sending again, not spin through the claims.
                self.refused = False
                await self._patient(self.job.renew, self.worker, [])
                continue
            claim = self.buffer.popleft()
            if len(self.buffer) <= self._claims_wanted() // 2:
                self.need.set()
            try:
                request = parse(claim.line, claim.raw)
                line_secrets = self.secrets + request_secrets(request.data)
                tokens = estimate(request.data) if tpm is not None else 0
            except Exception as exc:  # a transport that reads lines otherwise than the loader's
                self._unreadable_claim(claim, exc)
                continue
            self.pending[index] = (request, line_secrets, tokens)
            self.claims[index] = claim
            self.in_flight += 1
            index += 1
            yield request.data, NO_OPTIONS

    async def _claimer(self) -> None:
        """Keep claims ready: up to eight times the concurrency, claimed again at half of that.

        A claim that finds nothing (the others hold the rest, or the input is
        still loading) is tried again a moment later, until the job is finished.
        """
        import anyio

        while self.stopped_by is None:
            want = self._claims_wanted()
            if len(self.buffer) > want // 2:
                await self.need.wait()
                self.need = anyio.Event()
                continue
            claims, finished = await self._patient(
                self.job.claim, self.worker, want - len(self.buffer), self.lease
            )
            if self._stopped():
                await self._patient(self.job.release, self.worker, claims)
                return
            if claims:
                self.buffer.extend(claims)
            elif finished:
                self.finished = True
            self.wake.set()
            if self.finished:
                return
            if not claims:
                await anyio.sleep(_POLL)

    def _claims_wanted(self) -> int:
        """How many claims to keep: eight times the concurrency, claimed again at half that.

        Half is enough to keep every slot busy while a claim's round trip is slow
        (a busy Redis, a busy machine); less lets the requests run dry meanwhile.
        """
        return max(2, _CLAIMED * self.client.concurrency_limit)

    def _stopped(self) -> bool:
        """Whether a signal asked the run to stop (it may come during any await)."""
        return self.stopped_by is not None

    async def _releaser(self) -> None:
        """At the first stop: give back at once the claims not started yet."""
        await self.stop.wait()
        claims = list(self.buffer)
        self.buffer.clear()
        await self._patient(self.job.release, self.worker, claims)

    def _lines(
        self,
        request: RequestLine,
        secrets: Secrets,
        ok: bool,
        outcome: Any,
        attempts: int,
        elapsed: float,
    ) -> tuple[str, bytes, bool]:
        """The job's record of a result (a pynector line), this worker's OUT line, and ``ok``.

        The job keeps pynector's line whatever ``--output-format`` a worker
        writes, so ``pynector batch export`` can write any format from it.
        """
        stored, succeeded = self._result_line(
            request, secrets, ok, outcome, attempts, elapsed, OutputFormat.PYNECTOR
        )
        data = stored
        if self.format is not OutputFormat.PYNECTOR:
            data, succeeded = self._result_line(request, secrets, ok, outcome, attempts, elapsed)
        return stored[:-1].decode("utf-8", "backslashreplace"), data, succeeded

    def _unreadable_claim(self, claim: JobClaim, exc: Exception) -> None:
        from pynector.concurrency import JobResult

        from ._ledger import RequestLine

        why = f"the line cannot be read as a request: {unreadable(exc)}"
        request = RequestLine(claim.line, claim.line, None)
        text, data, _ok = self._lines(request, self.secrets, False, ValueError(why), 0, 0.0)
        self.unrecorded.append((JobResult(claim, False, text), data, False, 0, 0.0))
        self.ready.set()

    def _record(self, result: BatchResult[Any]) -> None:
        """Queue the result of one finished request to be recorded in the job."""
        from pynector.concurrency import JobResult

        request, secrets, _tokens = self.pending.pop(result.index)
        claim = self.claims.pop(result.index)
        self.in_flight -= 1
        error, attempts = result.error, result.attempts
        if isinstance(error, StoreUnavailableError):
            # Refused before it was sent (the shared limits could not be checked):
            # still ours, sent again once the store is back.
            self.requeued += 1
            self.refused = True
            self.buffer.appendleft(claim)
            self.wake.set()
            return
        ok = error is None
        outcome: Any = result.value
        if error is not None:
            outcome = error
            if isinstance(error, TokenBudgetError):  # refused before its first attempt
                self.over_budget += 1
                attempts = 0
                outcome = over_tpm(error.tokens, self.args.tpm)
        text, data, ok = self._lines(request, secrets, ok, outcome, attempts, result.elapsed)
        self.unrecorded.append((JobResult(claim, ok, text), data, ok, attempts, result.elapsed))
        self.ready.set()

    async def _record_some(self, patient: bool = True, *, every: bool = True) -> None:
        """Record the finished results in the job; append those recorded here to OUT.

        Args:
            patient: Wait for the store while it is down.
            every: Record the results that finish meanwhile too (else only those
                waiting now: the later ones wait for the next round).
        """
        async with self.recording:
            await self._record_chunks(patient, None if every else len(self.unrecorded))

    async def _record_chunks(self, patient: bool, most: int | None) -> None:
        while self.unrecorded and (most is None or most > 0):
            size = _RECORD_CHUNK if most is None else min(most, _RECORD_CHUNK)
            chunk = self.unrecorded[:size]
            if most is not None:
                most -= len(chunk)
            results = [entry[0] for entry in chunk]
            if patient:
                flags = await self._patient(self.job.record, self.worker, results)
            else:
                flags = await self.job.record(self.worker, results)
            del self.unrecorded[: len(chunk)]
            for (_result, data, ok, attempts, elapsed), first in zip(chunk, flags, strict=True):
                if first:
                    self.latencies.add(elapsed)
                    self.append(data, ok, attempts)
                else:
                    self.recorded_elsewhere += 1

    async def _recorder(self, recorded: Any, *, task_status: Any) -> None:
        """Record results as they finish (each round trip takes all that wait) until the end."""
        import anyio

        task_status.started()
        while True:
            await self.ready.wait()
            if not self.sending_done:
                # A moment for more results to finish: one round trip records them all.
                # Those that finish during the round trip wait for the next moment.
                await anyio.sleep(_LINGER)
            self.ready = anyio.Event()
            await self._record_some(every=self.sending_done)
            if self.sending_done and not self.unrecorded:
                recorded.set()
                return

    async def _renewer(self) -> None:
        """Keep every claim of this worker alive: a third of the lease apart."""
        import anyio

        while True:
            await anyio.sleep(self.lease / 3)
            held = [claim.entry for claim in self.buffer]
            held += [claim.entry for claim in self.claims.values()]
            held += [entry[0].claim.entry for entry in self.unrecorded]
            with contextlib.suppress(StoreUnavailableError):  # noted by the patient round trips
                await self.job.renew(self.worker, held)

    async def _load(self) -> None:
        """Queue the input's requests in the job (the worker that loads it)."""
        from ._ledger import IdSet, LineError, id_key, iter_lines

        parse = self.parser.parse
        seen = IdSet()
        chunk: list[tuple[int, bytes]] = []
        bad = duplicates = 0
        for number, raw in iter_lines(self.args.input):
            self.lines += 1
            try:
                key = id_key(parse(number, raw).id)
            except Exception as exc:
                why = str(exc) if isinstance(exc, LineError) else unreadable(exc)
                bad += 1
                self.bad += 1
                self.bad_line(number, f"skipped: {why}")
                continue
            if not seen.add(key):
                duplicates += 1
                self.duplicates += 1
                self.bad_line(number, "skipped: duplicate id (first use wins)")
                continue
            chunk.append((number, raw.rstrip(b"\r\n")))
            if len(chunk) >= _LOAD_CHUNK:
                await self._patient(self.job.append, chunk, self.worker)
                chunk = []
        if chunk:
            await self._patient(self.job.append, chunk, self.worker)
        await self._patient(self.job.loaded, bad, duplicates, self.worker)

    # -- the run ------------------------------------------------------------------------

    def _stopping(self) -> None:
        if self.wake is not None:
            self.wake.set()
            self.stop.set()

    async def _give_back(self, *, patient: bool) -> None:
        """Give back every claim not recorded: not started yet, and (cancelled) in flight."""
        claims = list(self.buffer) + list(self.claims.values())
        self.buffer.clear()
        self.claims.clear()
        if claims:
            if patient:
                await self._patient(self.job.release, self.worker, claims)
            else:
                await self.job.release(self.worker, claims)

    async def run(self) -> None:
        """Join the job (loading it if first), work it until done or stopped, then leave."""
        import anyio

        self.ready, self.wake, self.recording = anyio.Event(), anyio.Event(), anyio.Lock()
        self.need, self.stop = anyio.Event(), anyio.Event()
        try:
            # Before anything else: a job of another input is refused with nothing sent.
            self.loads = await self._patient(self.job.start, self.input, self.worker)
            if self.args.retry_failed:
                queued = await self._patient(self.job.retry_failed)
                if queued:
                    self.reporter.note(
                        f"job {self.job.name}: {queued} failed requests queued again"
                    )
            await super().run()
        finally:
            await self.store.aclose()

    async def _send_all(self) -> None:
        import anyio

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._renewer)
                group.start_soon(self._claimer)
                group.start_soon(self._releaser)
                if self.loads:
                    group.start_soon(self._load)
                recorded = anyio.Event()
                await group.start(self._recorder, recorded)
                try:
                    await super()._send_all()
                finally:
                    self.sending_done = True
                    self.ready.set()
                # The results still to record, then the claims never started (a stop).
                await recorded.wait()
                await self._give_back(patient=True)
                await self._patient(self.job.leave, self.worker)
                group.cancel_scope.cancel()
        except BaseException:
            # Cancelled (a second Ctrl-C) or failed: record what finished, give the
            # rest back at once, within a bound.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP):
                try:
                    await self._record_some(patient=False)
                    await self._give_back(patient=False)
                    await self.job.leave(self.worker)
                except StoreUnavailableError:
                    pass  # the claims come back to the others after the lease
            raise

    # -- the end ------------------------------------------------------------------------

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = super().summary_rows()
        rows.insert(0, ("job", f"{self.job.name} ({'loaded here' if self.loads else 'joined'})"))
        at = next(i for i, (name, _value) in enumerate(rows) if name == "already done")
        rows[at] = ("recorded first by another worker", str(self.recorded_elsewhere))
        return rows

    def closing_notes(self) -> list[str]:
        notes = super().closing_notes()
        if self.stopped_by is not None:
            notes[-1] = (
                f"pynector batch: interrupted: {self.sent} results recorded by this worker; "
                f"its other claims went back to the job {self.job.name}. Start it again to "
                "rejoin; `pynector batch status` shows the job"
            )
        return notes


class _Setup:
    """How ``pynector batch --job NAME`` opens its store and makes its run (see ``run_batch``)."""

    def open_store(self, args: argparse.Namespace) -> Store:
        from pynector.concurrency import MEMORY_URL, job_store
        from pynector.errors import ConfigurationError
        from pynector.registry import open_store

        from ._arguments import cli_usage_error

        url = args.store or os.environ.get("PYNECTOR_STORE") or MEMORY_URL
        try:
            store = open_store(url)
        except ConfigurationError as exc:
            raise cli_usage_error(exc, args) from exc
        if job_store(store) is None:
            raise UsageError(
                f"--job needs a shared store such as redis:// (--store redis://HOST:6379/0, or "
                f"PYNECTOR_STORE): the store {store.url} cannot hold a job worked by several "
                "processes (pip install 'pynector[redis]')"
            )
        return store

    def new_batch(self, store: Store, *batch: Any) -> Batch:
        from pynector.concurrency import DEFAULT_JOB_TTL, DEFAULT_LEASE, job_store
        from pynector.errors import ConfigurationError

        jobs = job_store(store)
        assert jobs is not None
        run = JobBatch(*batch)
        args = run.args
        try:
            run.job = jobs.job(args.job, ttl=None if args.keep else DEFAULT_JOB_TTL)
        except ConfigurationError as exc:
            raise UsageError(f"--job: {exc}") from None
        run.store = store
        run.lease = DEFAULT_LEASE if args.lease is None else args.lease
        run.input = None if args.input is None else fingerprint(args.input)
        return run


def run_job(args: argparse.Namespace) -> int:
    """Run ``pynector batch ... --job NAME``: this process as one worker of the job."""
    return run_batch(args, _Setup())
