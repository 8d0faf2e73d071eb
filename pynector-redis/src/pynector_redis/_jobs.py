"""A batch job in Redis: a stream of request lines, one consumer group, a results hash.

The keys of job ``NAME`` (all under ``pynector:job:{NAME}:``, one Redis
Cluster hash slot):

- ``meta``: a hash: the input's size and SHA-256, ``state`` (``loading`` or
  ``loaded``), ``created`` (ms), counts (``requests``, ``ok``, ``failed``,
  ``bad``, ``duplicates``), ``through`` (the last line queued) and the
  ``cursor`` of the take-over scan.
- ``requests``: a stream of the request lines (fields ``n``: the line
  number, ``d``: the raw line), with the consumer group ``workers``. A claim
  is a pending entry of one worker (``XREADGROUP``); a claim idle for a lease
  is taken over (``XAUTOCLAIM``); a live worker claims its own again
  (``XCLAIM ... JUSTID``) to keep it; an entry is acknowledged and deleted
  once its result is recorded.
- ``results``: a hash, line number -> the result line, written with
  ``HSETNX``: the first result of a line is the one recorded.
- ``failed``: a hash, line number -> the raw request line of each failed
  result (what ``--retry-failed`` queues again).
- ``workers``: a sorted set, worker -> the time (ms) it last claimed or renewed.
- ``rate``: a hash of 16 one-second slots counting results recorded.
- ``loader``: the loading lock (the worker loading the input; expires).

Each key expires ``ttl`` after the job's last activity (7 days by default).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pynector.concurrency import (
    DEFAULT_JOB_TTL,
    DEFAULT_LEASE,
    JobClaim,
    JobInput,
    JobResult,
    JobStatus,
)
from pynector.errors import ConfigurationError

from . import _job_scripts as scripts
from ._connection import Connection

__all__ = ["JOB_PREFIX", "RedisJob", "check_job_name"]

JOB_PREFIX = "pynector:job:"
"""Every key of a job starts with this, then ``{name}:``."""

GROUP = "workers"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
_LOADER_LEASE = 30_000  # ms the loading lock lasts without an append
_RETRY_CHUNK = 1000
_RECORDED = ord("1")  # RECORD's flag of a result it recorded


def check_job_name(name: str) -> str:
    """``name`` if it can name a job (letters, digits, ``._:@-``; at most 200).

    Raises:
        ConfigurationError: If it cannot.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"job name {name!r} is invalid: use letters, digits and . _ : @ - "
            "(at most 200, starting with a letter or digit), e.g. --job nightly-2026-12-01"
        )
    return name


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisJob:
    """:class:`~pynector.concurrency.Job` on Redis (see the module's docstring for its keys).

    Args:
        connection: The store's connection.
        name: The job's name.
        ttl: Seconds the job lives after its last activity; ``None`` keeps it.
    """

    def __init__(
        self, connection: Connection, name: str, ttl: float | None = DEFAULT_JOB_TTL
    ) -> None:
        self._connection = connection
        self._name = check_job_name(name)
        if ttl is not None and not ttl > 0:
            raise ConfigurationError(f"a job's ttl={ttl!r} must be a positive number of seconds")
        self._ttl = 0 if ttl is None else max(1, int(ttl * 1000))
        self._keys = [f"{JOB_PREFIX}{{{name}}}:{part}" for part in scripts.KEYS]

    @property
    def name(self) -> str:
        """The job's name."""
        return self._name

    def __repr__(self) -> str:
        return f"RedisJob({self._name!r}, store={self._connection.redacted!r})"

    async def _run(self, source: str, args: Sequence[str | bytes | int | float]) -> Any:
        return await self._connection.run(source, self._keys, args)

    def _missing(self) -> ConfigurationError:
        return ConfigurationError(
            f"there is no job {self._name!r} in the store {self._connection.redacted} "
            "(never loaded, or expired): start a worker with the input file and "
            f"--job {self._name} to load it"
        )

    async def start(self, input: JobInput | None, worker: str) -> bool:
        size, sha = ("", "") if input is None else (str(input.size), input.sha256)
        reply = await self._run(scripts.START, [GROUP, worker, size, sha, self._ttl, _LOADER_LEASE])
        answer = _text(reply[0])
        if answer == "missing":
            raise self._missing()
        if answer == "mismatch":
            raise ConfigurationError(
                f"the job {self._name!r} was loaded from another input file "
                f"({_text(reply[1])} bytes, sha256 {_text(reply[2])[:16]}...; this one: "
                f"{size} bytes, sha256 {sha[:16]}...): give every worker the same file, or "
                "name another job with --job"
            )
        return answer == "load"

    async def append(self, lines: Sequence[tuple[int, bytes]], worker: str) -> None:
        numbers = " ".join([str(number) for number, _raw in lines])
        lengths = " ".join([str(len(raw)) for _number, raw in lines])
        packed = b"".join([raw for _number, raw in lines])
        await self._run(
            scripts.APPEND, [worker, self._ttl, _LOADER_LEASE, numbers, lengths, packed]
        )

    async def loaded(self, bad_lines: int, duplicates: int, worker: str) -> None:
        await self._run(scripts.LOADED, [self._ttl, bad_lines, duplicates])

    async def claim(self, worker: str, count: int, lease: float) -> tuple[list[JobClaim], bool]:
        reply = await self._run(
            scripts.CLAIM, [GROUP, worker, max(1, count), max(1, int(lease * 1000)), self._ttl]
        )
        finished, entries, lines, lengths, raws = reply
        claims = []
        at = 0
        for entry, line, length in zip(
            _text(entries).split(), lines.split(), lengths.split(), strict=True
        ):
            end = at + int(length)
            claims.append(JobClaim(entry, int(line), raws[at:end]))
            at = end
        return claims, bool(finished)

    async def renew(self, worker: str, entries: Sequence[str]) -> None:
        await self._run(scripts.RENEW, [GROUP, worker, self._ttl, *entries])

    async def record(self, worker: str, results: Sequence[JobResult]) -> list[bool]:
        if not results:
            return []
        entries, lines, oks, lengths, texts, raw_lengths, raws = [], [], [], [], [], [], []
        for result in results:
            claim = result.claim
            entries.append(claim.entry)
            lines.append(str(claim.line))
            text = result.text.encode()
            lengths.append(str(len(text)))
            texts.append(text)
            if result.ok:
                oks.append("1")
            else:
                oks.append("0")
                raw_lengths.append(str(len(claim.raw)))
                raws.append(claim.raw)
        flags = await self._run(
            scripts.RECORD,
            [
                GROUP,
                self._ttl,
                " ".join(entries),
                " ".join(lines),
                "".join(oks),
                " ".join(lengths),
                b"".join(texts),
                " ".join(raw_lengths),
                b"".join(raws),
            ],
        )
        return [flag == _RECORDED for flag in bytes(flags)]

    async def release(self, worker: str, claims: Sequence[JobClaim]) -> None:
        if not claims:
            return
        args: list[str | bytes | int | float] = [GROUP, worker, self._ttl]
        for claim in claims:
            args += [claim.entry, claim.line, claim.raw]
        await self._run(scripts.RELEASE, args)

    async def leave(self, worker: str) -> None:
        await self._run(scripts.LEAVE, [worker])

    async def status(self, lease: float = DEFAULT_LEASE) -> JobStatus:
        reply = await self._run(scripts.STATUS, [GROUP, max(1, int(lease * 1000))])
        if _text(reply[0]) == "missing":
            raise self._missing()
        raw = reply[1]
        meta = {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw), 2)}
        pending, entries, alive, recent, ttl, seen = (int(value) for value in reply[2:8])

        def count(name: str) -> int:
            return int(meta.get(name, "0") or 0)

        return JobStatus(
            name=self._name,
            state="loaded" if meta.get("state") == "loaded" else "loading",
            input=JobInput(count("size"), meta.get("sha256", "")),
            requests=count("requests"),
            succeeded=count("ok"),
            failed=count("failed"),
            in_flight=pending,
            queued=max(0, entries - pending),
            workers=alive,
            rate=recent / 10,
            bad_lines=count("bad"),
            duplicates=count("duplicates"),
            expires_in=None if ttl < 0 else ttl / 1000,
            extra={
                "created_ms": count("created"),
                "lines_queued": count("through"),
                "workers_seen": seen,
            },
        )

    async def results(self, after: int, count: int) -> tuple[list[str], int | None]:
        reply = await self._run(scripts.RESULTS, [after + 1, max(1, count)])
        if _text(reply[0]) == "missing":
            raise self._missing()
        through = int(reply[1])
        found = [_text(value) for value in reply[2]]
        last = after + max(1, count)
        if last >= through:
            return found, None
        return found, last

    async def retry_failed(self) -> int:
        total = 0
        while True:
            moved, left = await self._run(scripts.RETRY_FAILED, [self._ttl, _RETRY_CHUNK])
            total += int(moved)
            if int(left) == 0:
                return total
