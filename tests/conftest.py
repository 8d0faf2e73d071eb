"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per AnyIO backend."""
    return str(request.param)


@pytest.fixture
def pynector_logger() -> Iterator[logging.Logger]:
    """The ``pynector`` logger, with its level and handlers restored afterwards."""
    logger = logging.getLogger("pynector")
    level, handlers = logger.level, logger.handlers[:]
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers
