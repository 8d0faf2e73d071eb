"""Every Python snippet of the seed document runs as written.

The seed (``tests/seed/client.md``) is the document the client API comes from.
Each snippet runs unmodified except that ``https://api.example.com`` becomes a
loopback server. Snippets that use names an earlier snippet defined (``client``,
``requests``) get them from a fresh namespace; top-level ``await`` runs on the
test's event loop (asyncio or trio); a snippet that calls ``asyncio.run`` runs
in a worker thread, where no loop is running.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

import anyio
import pytest

from pynector import Pynector
from pynector.cli._demo_server import DemoServer
from pynector.transport.protocol import Transport

SEED = Path(__file__).resolve().parent / "seed" / "client.md"
BLOCKS = re.findall(r"```python\n(.*?)```", SEED.read_text(), re.S)
# Snippets that start their own event loop run once, in a plain (sync) test.
LOOP_BLOCKS = [block for block in BLOCKS if "asyncio.run(" in block]
ASYNC_BLOCKS = [block for block in BLOCKS if block not in LOOP_BLOCKS]


def _label(index: int, code: str) -> str:
    first = code.strip().splitlines()[0].lstrip("# ").strip()
    return f"{index:02d}-{re.sub(r'[^a-z0-9]+', '-', first.lower()).strip('-')[:40]}"


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer() as running:
        yield running


@pytest.fixture
def quiet_pynector_logger() -> Iterator[None]:
    logger = logging.getLogger("pynector")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_the_seed_has_the_snippets_we_run() -> None:
    assert len(BLOCKS) == 15


def _namespace(server: DemoServer) -> dict[str, Any]:
    return {
        "__name__": "seed_snippet",
        # Names the snippets use from earlier snippets or from the API listing.
        "Pynector": Pynector,
        "client": Pynector(transport_type="http", base_url=server.url),
        "requests": [({"path": f"/users/{n}", "method": "GET"}, {}) for n in (1, 2, 3)],
        "Optional": Optional,
        "Any": Any,
        "TracebackType": TracebackType,
        "Transport": Transport,
    }


@pytest.mark.parametrize("code", LOOP_BLOCKS, ids=[_label(BLOCKS.index(c), c) for c in LOOP_BLOCKS])
def test_seed_snippet_with_its_own_event_loop_runs_as_written(
    code: str, server: DemoServer
) -> None:
    namespace = _namespace(server)
    exec(compile(code.replace("https://api.example.com", server.url), "<seed>", "exec"), namespace)
    assert any(isinstance(value, Pynector) for value in namespace.values())


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet_pynector_logger")
@pytest.mark.parametrize(
    "code", ASYNC_BLOCKS, ids=[_label(BLOCKS.index(c), c) for c in ASYNC_BLOCKS]
)
async def test_seed_snippet_runs_as_written(code: str, server: DemoServer) -> None:
    source = code.replace("https://api.example.com", server.url)
    namespace = _namespace(server)
    try:
        compiled = compile(source, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            with anyio.fail_after(30):
                await result
    finally:
        for value in namespace.values():
            if isinstance(value, Pynector):
                await value.aclose()
