"""client.batch over real HTTP, on every engine: results as they finish, the server-side bound."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.errors import NotFoundError
from pynector_http import Response

from ._control import ControlServer

pytestmark = pytest.mark.anyio


async def test_a_held_request_does_not_hold_back_the_results_after_it(
    control: ControlServer, key: str, engine: str
) -> None:
    # Request 0 is held by the server until a second request reaches the gate,
    # which only request 2 does: and with two workers it starts after request 1 ended.
    gate: dict[str, Any] = {"path": "/gate", "params": {"key": key, "target": 2, "total": 2}}
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (gate, {}),
        ({"path": "/users/1"}, {}),
        (gate, {}),
        ({"path": "/missing"}, {}),
    ]
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        with anyio.fail_after(10):
            async with client.batch(requests, max_concurrency=2) as results:
                seen = [result async for result in results]
    assert seen[0].index == 1
    assert isinstance(seen[0].value, Response)
    assert seen[0].value.json()["path"] == "/users/1"
    assert sorted(result.index for result in seen) == [0, 1, 2, 3]
    by_index = {result.index: result for result in seen}
    assert isinstance(by_index[3].error, NotFoundError)
    assert all(by_index[n].ok for n in (0, 1, 2))
    assert control.key(key).max_in_flight == 2


@pytest.mark.parametrize("limit", [1, 3])
async def test_batch_max_concurrency_is_verified_by_the_server(
    control: ControlServer, key: str, limit: int, engine: str
) -> None:
    total = 4 * limit
    params = {"key": key, "target": limit, "total": total}
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"path": "/gate", "params": params}, {}) for _ in range(total)
    ]
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        async with client.batch(requests, max_concurrency=limit) as results:
            seen = [result async for result in results]
    assert all(result.ok and result.attempts == 1 for result in seen)
    assert control.key(key).max_in_flight == limit
    assert control.key(key).attempts == total
