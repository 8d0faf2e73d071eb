"""RedisStore in one process, against a real redis-server: URLs, secrets, failures, recovery."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import anyio
import pytest

import pynector_redis
from pynector.concurrency import Store, TokenBudgetError
from pynector.errors import ConfigurationError, StoreUnavailableError
from pynector_redis import RedisStore
from tests._redis import RedisServer, RedisServerFactory

PASSWORD = "correct-horse-battery-staple"


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_the_public_names_are_listed_sorted_and_documented() -> None:
    assert pynector_redis.__doc__
    assert pynector_redis.__all__ == sorted(pynector_redis.__all__)
    assert pynector_redis.__version__ == "0.2.0"
    for name in pynector_redis.__all__:
        if name[0].isupper() and not name.isupper():
            assert getattr(pynector_redis, name).__doc__, name


def test_the_store_entry_points_name_the_redis_schemes() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="pynector.stores")}
    assert found == dict.fromkeys(("redis", "rediss", "unix"), "pynector_redis:RedisStore")


def test_the_password_never_shows_in_url_repr_or_str() -> None:
    store = RedisStore(f"redis://:{PASSWORD}@127.0.0.1:1/0")
    assert isinstance(store, Store)
    assert store.shared is True
    for shown in (store.url, repr(store), str(store)):
        assert PASSWORD not in shown
    assert store.url == "redis://[redacted]:[redacted]@127.0.0.1:1/0"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:6379", "unix://", "redis://127.0.0.1:1/0?timeout=0", "redis://h?timeout=x"],
)
def test_a_url_that_is_not_redis_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="store URL"):
        RedisStore(url)


def test_the_timeout_comes_from_the_keyword_or_the_url() -> None:
    assert RedisStore("redis://127.0.0.1:1/0").timeout == 2.0
    assert RedisStore("redis://127.0.0.1:1/0", timeout=0.5).timeout == 0.5
    assert RedisStore("redis://127.0.0.1:1/0?timeout=0.25", timeout=5).timeout == 0.25


@pytest.mark.anyio
async def test_a_unix_socket_url_works(
    redis_server_factory: RedisServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("sock") / "redis.sock"
    redis_server_factory(unix_socket=str(path))
    store = RedisStore(f"unix://{path}?db=1")
    leases = store.leases(key(), 1)
    lease = await leases.acquire(5)
    with anyio.move_on_after(0.2) as held:
        await leases.acquire(5)  # the one slot is taken, through the socket
    assert held.cancelled_caught
    await lease.release()
    await lease.release()  # idempotent
    with anyio.fail_after(2):
        await (await leases.acquire(5)).release()  # given back: free again
    await store.aclose()


@pytest.mark.anyio
async def test_a_token_reservation_larger_than_the_budget_fails_at_once(
    redis_server: RedisServer,
) -> None:
    store = RedisStore(redis_server.url)
    budget = store.token_budget(key(), 100, 60)
    with pytest.raises(TokenBudgetError, match="more than the whole token budget of 100"):
        await budget.reserve(101)
    await store.aclose()


@pytest.mark.anyio
async def test_a_pacer_books_nothing_past_the_callers_deadline(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    shared = key()
    pacer = store.pacer(shared, 2, 1.0)  # one start per 0.51 s
    await pacer.acquire()
    with anyio.move_on_after(0.1) as scope:
        await pacer.acquire()  # the next slot is 0.51 s away: not booked, the scope cancels
    assert scope.cancelled_caught
    # The slot the cancelled caller could not use was not taken: the next caller gets it.
    other = RedisStore(redis_server.url).pacer(shared, 2, 1.0)
    started = anyio.current_time()
    await other.acquire()
    assert anyio.current_time() - started < 0.51
    await store.aclose()


@pytest.mark.anyio
async def test_a_pacer_without_a_rate_is_idle_only_just_after_redis_held_no_pause(
    redis_server: RedisServer,
) -> None:
    store, elsewhere = RedisStore(redis_server.url), RedisStore(redis_server.url)
    shared = key()
    pacer, other = store.pacer(shared, None), elsewhere.pacer(shared, None)
    seen = [pacer.idle]  # nothing asked of Redis yet
    await pacer.acquire()
    seen.append(pacer.idle)
    assert seen == [False, True]  # Redis said: no pause; the client may skip the pacer for a moment
    other.pause(30)
    await elsewhere.flush()
    with anyio.fail_after(5):
        while pacer.idle:  # the moment passes (BLOCK_SPAN) ...
            await anyio.lowlevel.checkpoint()
    with anyio.move_on_after(0.3) as scope:
        await pacer.acquire()  # ... and the next caller sees the other process's pause
    assert scope.cancelled_caught
    assert not store.pacer(key(), 10).idle  # with a rate every start is booked in Redis
    await store.aclose()
    await elsewhere.aclose()


@pytest.mark.anyio
async def test_callers_of_a_pacer_without_a_rate_share_the_round_trip_under_way(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(redis_server.url)
    pacer = store.pacer(key(), None)
    connection = store._connection
    asked, answer = anyio.Event(), anyio.Event()
    trips: list[str] = []
    run = connection.run

    async def held(source: str, keys: Any, args: Any) -> Any:
        trips.append(source)
        asked.set()
        await answer.wait()  # the round trip stays under way while the others arrive
        return await run(source, keys, args)

    monkeypatch.setattr(connection, "run", held)
    started: list[int] = []

    async def start(n: int) -> None:
        await pacer.acquire()
        started.append(n)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(start, 0)
            await asked.wait()
            for n in range(1, 11):
                group.start_soon(start, n)
            await anyio.wait_all_tasks_blocked()
            answer.set()
    assert sorted(started) == list(range(11))
    assert len(trips) == 1  # Redis's one answer (no pause) let all of them start
    await store.aclose()


@pytest.mark.anyio
async def test_a_settle_reaches_redis_when_the_store_is_closed(redis_server: RedisServer) -> None:
    shared = key()
    first = RedisStore(redis_server.url)
    reservation = await first.token_budget(shared, 100, 60).reserve(90)
    reservation.settle(10)
    await first.aclose()
    second = RedisStore(redis_server.url)
    started = anyio.current_time()
    with anyio.fail_after(1):
        await second.token_budget(shared, 100, 60).reserve(90)  # 10 + 90 fit
    assert anyio.current_time() - started < 1  # not a minute's wait for the window
    await second.aclose()


@pytest.mark.anyio
async def test_redis_down_fails_promptly_without_the_password_then_recovers(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(password=PASSWORD)
    store = RedisStore(server.url, timeout=0.5)
    shared = key()
    pacer = store.pacer(shared, 50, 1.0)
    budget = store.token_budget(shared, 1000, 1.0)
    leases = store.leases(shared, 3)
    await pacer.acquire()
    server.stop()
    for operation in (pacer.acquire, lambda: budget.reserve(1), lambda: leases.acquire(1)):
        started = anyio.current_time()
        with pytest.raises(StoreUnavailableError) as caught:
            await operation()
        assert anyio.current_time() - started < 2.0
        assert PASSWORD not in str(caught.value)
        assert caught.value.url == store.url
        assert store.url in str(caught.value)
    server.start()  # a new server on the same port: the scripts must be loaded again
    await pacer.acquire()
    reservation = await budget.reserve(5)
    reservation.settle(1)
    await (await leases.acquire(1)).release()
    await store.aclose()
    await store.aclose()  # idempotent


@pytest.mark.anyio
async def test_a_redis_that_does_not_answer_times_out(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory()
    store = RedisStore(server.url, timeout=0.3)
    await store.pacer(key(), 10).acquire()
    process = server._process
    assert process is not None
    process.send_signal(signal.SIGSTOP)  # connected, but silent
    try:
        started = anyio.current_time()
        with pytest.raises(StoreUnavailableError, match=r"no answer within 0\.3 s"):
            await store.leases(key(), 1).acquire(1)
        assert anyio.current_time() - started < 1.5
    finally:
        process.send_signal(signal.SIGCONT)
    await store.aclose()


@pytest.mark.anyio
async def test_a_wrong_password_is_unavailable_and_not_shown(redis_server: RedisServer) -> None:
    wrong = "not-the-password-at-all"
    store = RedisStore(f"redis://:{wrong}@127.0.0.1:{redis_server.port}/0", timeout=1)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.pacer(key(), 10).acquire()
    assert wrong not in str(caught.value)
    assert redis_server.password is not None
    assert redis_server.password not in str(caught.value)
    await store.aclose()
