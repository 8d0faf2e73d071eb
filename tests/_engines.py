"""The (event loop, HTTP engine) fixtures, for test modules whose tests run on every pair.

A module or conftest that imports ``backend_engine``, ``anyio_backend`` and
``engine`` from here runs each of its async tests once per pair: aiohttp on
asyncio, httpx2 on asyncio and on trio (aiohttp runs on asyncio only).
"""

from __future__ import annotations

import pytest

__all__ = ["BACKEND_ENGINES", "anyio_backend", "backend_engine", "engine"]

# The (event loop, engine) pairs that exist: aiohttp runs on asyncio only.
BACKEND_ENGINES = [("asyncio", "aiohttp"), ("asyncio", "httpx2"), ("trio", "httpx2")]


@pytest.fixture(params=BACKEND_ENGINES, ids=["-".join(pair) for pair in BACKEND_ENGINES])
def backend_engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """An event loop and an HTTP engine that runs on it (tests may parametrize it directly)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(backend_engine: tuple[str, str]) -> str:
    """The event loop of ``backend_engine``: overrides the per-backend fixture of tests/."""
    return backend_engine[0]


@pytest.fixture
def engine(backend_engine: tuple[str, str]) -> str:
    """The ``engine=`` option to pass to the transport."""
    return backend_engine[1]
