"""The batch job in Redis: the job model step by step, then a fleet of real workers.

Each test uses its own job name on a real Redis server. The fleet tests run
the real ``pynector batch`` CLI as OS processes against a loopback server that
counts every request (by id and by worker), and check the job's promises
server side: every result recorded once, a request sent twice only when the
worker sending it died, one shared rate, nothing lost when Redis restarts.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from pynector.concurrency import (
    DEFAULT_JOB_TTL,
    JobClaim,
    JobInput,
    JobResult,
    MemoryStore,
    job_store,
)
from pynector.errors import ConfigurationError
from pynector_redis import JOB_PREFIX, RedisJob, RedisStore
from tests._redis import RedisServer, RedisServerFactory
from tests.core._arrivals import most_in_any_window
from tests.redis._job_workers import CountingServer, Worker, read_results, write_requests

INPUT = JobInput(1234, "ab" * 32)


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url)
    yield store
    await store.aclose()


def _name() -> str:
    return f"job-{secrets.token_hex(4)}"


def _lines(count: int, first: int = 1) -> list[tuple[int, bytes]]:
    return [(n, b'{"id": %d}' % n) for n in range(first, first + count)]


async def _loaded(store: RedisStore, count: int, **kwargs: float | None) -> RedisJob:
    job = store.job(_name(), **kwargs)
    assert await job.start(INPUT, "loader")
    await job.append(_lines(count), "loader")
    await job.loaded(0, 0, "loader")
    return job


def _result(claim: JobClaim, ok: bool = True) -> JobResult:
    return JobResult(claim, ok, f'{{"id":{claim.line},"line":{claim.line},"ok":{str(ok).lower()}}}')


@pytest.mark.anyio
async def test_the_first_worker_loads_and_the_next_with_the_same_input_joins(
    store: RedisStore,
) -> None:
    name = _name()
    assert await store.job(name).start(INPUT, "first") is True
    assert await store.job(name).start(INPUT, "second") is False
    assert await store.job(name).start(None, "third") is False  # --job alone joins


@pytest.mark.anyio
async def test_loading_twice_queues_each_line_once(store: RedisStore) -> None:
    job = store.job(_name())
    await job.start(INPUT, "loader")
    await job.append(_lines(5), "loader")
    # A loader taking over from a dead one sends the file from the start again.
    await job.append(_lines(8), "loader")
    await job.loaded(0, 0, "loader")
    status = await job.status()
    assert status.requests == 8
    assert status.queued == 8
    assert status.state == "loaded"


@pytest.mark.anyio
async def test_another_input_under_the_same_name_is_refused(store: RedisStore) -> None:
    name = _name()
    await store.job(name).start(INPUT, "first")
    with pytest.raises(ConfigurationError, match="another input file") as caught:
        await store.job(name).start(JobInput(99, "cd" * 32), "second")
    assert "--job" in str(caught.value)


@pytest.mark.anyio
async def test_joining_a_job_that_does_not_exist_says_how_to_load_it(store: RedisStore) -> None:
    with pytest.raises(ConfigurationError, match="there is no job") as caught:
        await store.job(_name()).start(None, "worker")
    assert "input file" in str(caught.value)
    with pytest.raises(ConfigurationError, match="there is no job"):
        await store.job(_name()).status()


@pytest.mark.anyio
async def test_a_dead_loaders_lock_lets_another_worker_load(
    store: RedisStore, redis_server: RedisServer
) -> None:
    name = _name()
    job = store.job(name)
    await job.start(INPUT, "dead")
    await job.append(_lines(3), "dead")
    # The loader died: its lock expires (here: deleted, as the expiry would).
    await store._connection.call(lambda client: client.delete([f"{JOB_PREFIX}{{{name}}}:loader"]))
    assert await store.job(name).start(INPUT, "next") is True
    assert await store.job(name).start(None, "joiner") is False  # no file: cannot load


@pytest.mark.anyio
async def test_every_key_expires_after_the_ttl_and_keep_removes_the_expiry(
    store: RedisStore,
) -> None:
    job = await _loaded(store, 3, ttl=3600)
    claims, _ = await job.claim("w", 1, 30)
    await job.record("w", [_result(claims[0], ok=False)])
    keys = [f"{JOB_PREFIX}{{{job.name}}}:{part}" for part in ("meta", "requests", "results")]
    keys.append(f"{JOB_PREFIX}{{{job.name}}}:failed")

    async def ttls() -> list[int]:
        found = []
        for key in keys:

            async def pttl(client: Any, key: str = key) -> int:
                return int(await client.pttl(key))

            found.append(int(await store._connection.call(pttl)))
        return found

    assert all(0 < ttl <= 3_600_000 for ttl in await ttls())
    status = await job.status()
    assert status.expires_in is not None
    assert 3500 < status.expires_in <= 3600
    kept = store.job(job.name, ttl=None)
    await kept.renew("w", [])
    assert all(ttl == -1 for ttl in await ttls())
    assert (await kept.status()).expires_in is None
    assert DEFAULT_JOB_TTL == 7 * 24 * 3600


@pytest.mark.anyio
async def test_each_request_is_claimed_by_one_worker(store: RedisStore) -> None:
    job = await _loaded(store, 10)
    first, _ = await job.claim("a", 4, 30)
    second, _ = await job.claim("b", 10, 30)
    lines = [claim.line for claim in first + second]
    assert sorted(lines) == list(range(1, 11))
    assert first[0].raw == b'{"id": 1}'
    again, finished = await job.claim("c", 10, 30)
    assert again == []
    assert not finished


@pytest.mark.anyio
async def test_a_result_is_recorded_once_whoever_finishes_it(store: RedisStore) -> None:
    job = await _loaded(store, 2)
    claims, _ = await job.claim("a", 2, 30)
    assert await job.record("a", [_result(claims[0])]) == [True]
    # A worker that took the claim over finishes it too: not recorded again.
    assert await job.record("b", [_result(claims[0]), _result(claims[1])]) == [False, True]
    status = await job.status()
    assert (status.succeeded, status.failed, status.in_flight, status.queued) == (2, 0, 0, 0)
    assert status.finished
    assert (await job.claim("a", 5, 30))[1] is True  # nothing left: finished


@pytest.mark.anyio
async def test_released_claims_go_to_the_next_worker_at_once(store: RedisStore) -> None:
    job = await _loaded(store, 6)
    held, _ = await job.claim("a", 6, 60)
    await job.record("a", [_result(held[0])])
    await job.release("a", held)  # Ctrl-C: the five not finished go back
    taken, _ = await job.claim("b", 10, 60)
    assert sorted(claim.line for claim in taken) == [2, 3, 4, 5, 6]
    # A claim taken over by another worker is not the old holder's to give back.
    await job.release("a", taken)
    assert (await job.claim("c", 10, 60))[0] == []


@pytest.mark.anyio
async def test_a_dead_workers_claims_are_taken_over_after_the_lease(store: RedisStore) -> None:
    job = await _loaded(store, 3)
    lease = 0.5
    held, _ = await job.claim("dead", 3, lease)
    started = anyio.current_time()
    taken: list[JobClaim] = []
    with anyio.fail_after(10):
        while not taken:  # polls as a live worker does, until the lease is over
            taken, _ = await job.claim("alive", 3, lease)
            await anyio.sleep(0.05)
    assert anyio.current_time() - started >= lease * 0.9
    assert sorted(claim.line for claim in taken) == [1, 2, 3]
    assert [claim.entry for claim in taken] == [claim.entry for claim in held]


@pytest.mark.anyio
async def test_a_live_worker_keeps_its_claims_by_renewing_them(store: RedisStore) -> None:
    job = await _loaded(store, 2)
    lease = 0.6
    held, _ = await job.claim("alive", 2, lease)
    deadline = anyio.current_time() + lease * 3
    while anyio.current_time() < deadline:
        await job.renew("alive", [claim.entry for claim in held])
        assert (await job.claim("other", 2, lease))[0] == []
        await anyio.sleep(lease / 4)
    assert (await job.status(lease)).in_flight == 2


@pytest.mark.anyio
async def test_status_counts_every_state(store: RedisStore) -> None:
    job = store.job(_name())
    await job.start(INPUT, "a")
    await job.append(_lines(10), "a")
    loading = await job.status()
    assert loading.state == "loading"
    assert not loading.finished
    await job.loaded(2, 1, "a")
    claims, _ = await job.claim("a", 5, 30)
    await job.claim("b", 1, 30)
    await job.record("a", [_result(claims[0]), _result(claims[1], ok=False)])
    status = await job.status()
    assert status.requests == 10
    assert (status.succeeded, status.failed, status.done) == (1, 1, 2)
    assert status.in_flight == 4
    assert status.queued == 4
    assert status.workers == 2
    assert (status.bad_lines, status.duplicates) == (2, 1)
    assert status.input == INPUT
    assert status.rate == 0.0  # results of the current second count from the next


@pytest.mark.anyio
async def test_results_come_back_in_input_order(store: RedisStore) -> None:
    job = await _loaded(store, 25)
    claims, _ = await job.claim("a", 25, 30)
    await job.record("a", [_result(claim) for claim in reversed(claims) if claim.line != 7])
    found: list[str] = []
    after: int | None = 0
    while after is not None:
        lines, after = await job.results(after, 10)
        found += lines
    assert [int(line.split('"line":')[1].split(",")[0]) for line in found] == [
        n for n in range(1, 26) if n != 7
    ]


@pytest.mark.anyio
async def test_retry_failed_queues_the_failed_requests_again(store: RedisStore) -> None:
    job = await _loaded(store, 3)
    claims, _ = await job.claim("a", 3, 30)
    await job.record("a", [_result(claims[0]), _result(claims[1], ok=False)])
    assert await job.retry_failed() == 1
    status = await job.status()
    assert (status.succeeded, status.failed, status.queued) == (1, 0, 1)
    again, _ = await job.claim("b", 5, 30)
    assert [(claim.line, claim.raw) for claim in again] == [(2, b'{"id": 2}')]
    assert await job.record("b", [_result(again[0])]) == [True]
    assert await job.retry_failed() == 0


@pytest.mark.anyio
async def test_a_job_name_must_be_a_plain_word(store: RedisStore) -> None:
    for bad in ("", "a b", "{x}", "-x", "x" * 201):
        with pytest.raises(ConfigurationError, match="job name"):
            store.job(bad)


def test_the_memory_store_holds_no_jobs_and_redis_does(redis_server: RedisServer) -> None:
    assert job_store(MemoryStore()) is None
    store = RedisStore(redis_server.url)
    assert job_store(store) is store


# -- a fleet of real worker processes ---------------------------------------------------


def _worker_args(
    input: Path | None, output: Path, server: CountingServer, url: str, job: str, *extra: str
) -> list[str]:
    args = [] if input is None else [str(input)]
    return [
        *args,
        "-o", str(output),
        "--base-url", server.url,
        "--store", url,
        "--job", job,
        "--progress", "none",
        *extra,
    ]  # fmt: skip


def _export(url: str, job: str, path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "batch", "export", "--store", url, "--job", job,
         "-o", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return read_results(path)


def test_a_fleet_with_a_killed_and_a_late_worker_records_every_result_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Three workers on one job: one SIGKILLed mid-run, one started late."""
    count, rate, job = 1800, 300, _name()
    requests = tmp_path / "in.jsonl"
    ids = write_requests(requests, count)
    outputs = {name: tmp_path / f"{name}.jsonl" for name in ("w1", "w2", "w3")}
    limits = ("--rate", f"{rate}/s", "--lease", "2", "--limit-key", job, "-c", "8")
    with CountingServer() as server:

        def start(name: str) -> Worker:
            return Worker(
                name, _worker_args(requests, outputs[name], server, redis_server.url, job, *limits)
            )

        workers = [start("w1"), start("w2")]
        try:
            server.wait_for(lambda: server.by_worker()["w1"] >= 300, "w1 sent 300")
            workers[0].kill()
            workers.append(start("w3"))  # late, with the same file: it joins
            statuses = [worker.finish() for worker in workers[1:]]
            assert statuses == [0, 0], [worker.output for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
        sent = list(server.sent)
        arrivals = list(server.arrivals)

    exported = _export(redis_server.url, job, tmp_path / "all.jsonl")
    assert [result["id"] for result in exported] == ids  # every id once, in input order
    assert all(result["ok"] for result in exported)
    # Each worker's own file holds what it recorded: together, every id once.
    recorded = [r["id"] for name in outputs for r in read_results(outputs[name])]
    assert sorted(recorded) == sorted(ids)
    # Server side: at least once each, at most twice, and twice only for ids the
    # killed worker had sent without recording them.
    times = Counter(request_id for request_id, _worker in sent)
    assert set(times) == set(ids)
    assert max(times.values()) <= 2
    killed_sent = {request_id for request_id, worker in sent if worker == "w1"}
    killed_recorded = {r["id"] for r in read_results(outputs["w1"])}
    twice = {request_id for request_id, n in times.items() if n == 2}
    assert twice <= killed_sent - killed_recorded
    taken_over = killed_sent - killed_recorded
    assert taken_over, "the killed worker held no claim: the test proved nothing"
    assert {r["id"] for name in ("w2", "w3") for r in read_results(outputs[name])} >= taken_over
    assert read_results(outputs["w3"]), "the late worker did no work"
    # One shared rate for the fleet, never exceeded in any one second.
    assert most_in_any_window(arrivals, 1.0) <= rate


def test_ctrl_c_twice_gives_every_claim_back_at_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    count, job = 20, _name()
    requests = tmp_path / "in.jsonl"
    ids = write_requests(requests, count, prefix="/hold")
    # A lease far longer than the test: only a claim given back can reach the next worker.
    limits = ("--lease", "120", "--limit-key", job, "-c", "4")
    with CountingServer() as server:
        first = Worker(
            "a",
            _worker_args(requests, tmp_path / "a.jsonl", server, redis_server.url, job, *limits),
        )
        try:
            server.wait_for(lambda: server.held >= 4, "4 requests held")
            first.process.send_signal(signal.SIGINT)
            first.wait_line("starting no new requests")
            first.process.send_signal(signal.SIGINT)
            assert first.finish(30) == 130, first.output
        finally:
            first.kill()
        server.release()
        second = Worker(
            "b", _worker_args(None, tmp_path / "b.jsonl", server, redis_server.url, job, *limits)
        )
        try:
            assert second.finish(60) == 0, second.output
        finally:
            second.kill()
    exported = _export(redis_server.url, job, tmp_path / "all.jsonl")
    assert [result["id"] for result in exported] == ids
    assert read_results(tmp_path / "a.jsonl") == []
    assert len(read_results(tmp_path / "b.jsonl")) == count


def test_workers_wait_for_a_restarted_redis_and_lose_nothing(
    redis_server_factory: RedisServerFactory, tmp_path: Path
) -> None:
    redis = redis_server_factory(directory=str(tmp_path))
    count, job = 1200, _name()
    requests = tmp_path / "in.jsonl"
    ids = write_requests(requests, count)
    limits = ("--rate", "300/s", "--lease", "3", "--limit-key", job, "-c", "8")
    with CountingServer() as server:
        workers = [
            Worker(
                name,
                _worker_args(requests, tmp_path / f"{name}.jsonl", server, redis.url, job, *limits),
            )
            for name in ("w1", "w2")
        ]
        try:
            server.wait_for(lambda: len(server.sent) >= 300, "300 requests sent")
            redis.stop()
            workers[0].wait_line("waiting for it")
            redis.start()
            statuses = [worker.finish() for worker in workers]
            assert statuses == [0, 0], [worker.output for worker in workers]
            assert "is back" in workers[0].output
        finally:
            for worker in workers:
                worker.kill()
        sent = {request_id for request_id, _worker in server.sent}
    assert sent == set(ids)
    exported = _export(redis.url, job, tmp_path / "all.jsonl")
    assert [result["id"] for result in exported] == ids
    recorded = [r["id"] for name in ("w1", "w2") for r in read_results(tmp_path / f"{name}.jsonl")]
    assert sorted(recorded) == sorted(ids)


# -- the command line's refusals ----------------------------------------------------------


def test_job_needs_a_shared_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pynector.cli import main

    requests = tmp_path / "in.jsonl"
    write_requests(requests, 1)
    args = ["batch", str(requests), "-o", str(tmp_path / "out.jsonl"), "--base-url", "http://x"]
    assert main([*args, "--job", "j", "--store", "memory://"]) == 2
    assert "--job needs a shared store such as redis://" in capsys.readouterr().err
    assert main([*args, "--lease", "5"]) == 2
    assert "add --job NAME" in capsys.readouterr().err
    assert main(["batch", "-o", str(tmp_path / "out.jsonl"), "--base-url", "http://x"]) == 2
    assert "give the input file" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_status_and_export_of_a_missing_job_say_so(
    redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pynector.cli import main

    store = ["--store", redis_server.url, "--job", _name()]
    assert main(["batch", "status", *store]) == 2
    err = capsys.readouterr().err
    assert "there is no job" in err
    assert redis_server.password is not None
    assert redis_server.password not in err
    assert main(["batch", "export", *store, "-o", str(tmp_path / "all.jsonl")]) == 2
    assert "there is no job" in capsys.readouterr().err


def test_status_prints_the_counts_as_json(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pynector.cli import main

    async def load() -> str:
        store = RedisStore(redis_server.url)
        try:
            job = await _loaded(store, 4)
            claims, _ = await job.claim("w", 2, 30)
            await job.record("w", [_result(claims[0]), _result(claims[1], ok=False)])
            return job.name
        finally:
            await store.aclose()

    name = anyio.run(load)
    assert main(["batch", "status", "--store", redis_server.url, "--job", name, "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert (shown["requests"], shown["succeeded"], shown["failed"]) == (4, 1, 1)
    assert (shown["queued"], shown["in_flight"], shown["finished"]) == (2, 0, False)


def test_a_worker_writes_its_own_format_and_export_writes_any(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import json

    from pynector.cli import main

    requests, own, job = tmp_path / "in.jsonl", tmp_path / "own.jsonl", _name()
    ids = write_requests(requests, 5)
    store = ["--store", redis_server.url, "--job", job]
    with CountingServer() as server:
        args = ["batch", str(requests), "-o", str(own), "--base-url", server.url, *store]
        assert main([*args, "--progress", "none", "--output-format", "openai"]) == 0
    written = read_results(own)
    assert sorted(line["custom_id"] for line in written) == sorted(ids)
    assert all(line["response"]["status_code"] == 200 for line in written)
    assert all(line["error"] is None for line in written)
    exported: dict[str, list[dict[str, Any]]] = {}
    for fmt in ("pynector", "openai", "anthropic"):
        path = tmp_path / f"all-{fmt}.jsonl"
        assert main(["batch", "export", *store, "-o", str(path), "--output-format", fmt]) == 0
        exported[fmt] = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["id"] for line in exported["pynector"]] == ids  # the job keeps pynector lines
    assert [line["custom_id"] for line in exported["openai"]] == ids
    assert [line["response"]["body"] for line in exported["openai"]] == [{"ok": True}] * 5
    assert [line["custom_id"] for line in exported["anthropic"]] == ids
    assert {line["result"]["type"] for line in exported["anthropic"]} == {"succeeded"}


def test_a_job_shares_limits_in_the_store_only_when_it_has_some(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from pynector.cli import main

    async def limit_keys(key: str) -> list[bytes]:
        store = RedisStore(redis_server.url)
        try:
            found = await store._connection.call(
                lambda client: client.keys(f"pynector:limit:{{{key}}}:*")
            )
            return sorted(found)
        finally:
            await store.aclose()

    requests = tmp_path / "in.jsonl"
    write_requests(requests, 3)
    with CountingServer() as server:
        for key, limits in (("free", []), ("rated", ["--rate", "100/s"])):
            args = ["batch", str(requests), "-o", str(tmp_path / f"{key}.jsonl")]
            args += ["--base-url", server.url, "--store", redis_server.url, "--job", _name()]
            assert main([*args, "--limit-key", key, "--progress", "none", *limits]) == 0
    # No limit to share: the workers' clients ask Redis nothing (the job is all it holds).
    assert anyio.run(limit_keys, "free") == []
    assert anyio.run(limit_keys, "rated") != []  # the shared pacer of --rate
