"""Every ``python`` block of README.md and docs/ runs, page by page.

See ``_snippets.py`` for the convention (shared namespace per page, top-level
``await``, placeholder URLs, ``<!-- not-run: reason -->``). A failing block
shows up with its page and its line in the page.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from pynector import Pynector, registry
from tests.sdk._fake_api import FakeAPI

from ._server import ExampleAPI
from ._snippets import ROOT, Page, awaits, pages, parse

PAGES = [parse(path) for path in pages()]
RUNNABLE = [page for page in PAGES if page.runnable]
LOOP_PAGES = [page for page in RUNNABLE if page.own_loop]
ASYNC_PAGES = [page for page in RUNNABLE if not page.own_loop]
PAGE_DEADLINE = 40  # seconds for one page; the slowest waits on a Retry-After of 1 s


# The openai SDK leaves two async generators of a finished chat-completions
# stream for the event loop to finalise; trio reports them as ResourceWarnings
# (docs/sdk.md, "Known issues"). Pages that use the SDK transport may stream.
SDK_STREAM_GENERATORS = pytest.mark.filterwarnings(
    "ignore:Async generator '(openai._streaming|httpx2._models|httpcore2.):ResourceWarning"
)


def _ids(items: list[Page]) -> list[str]:
    return [page.name for page in items]


def _params(items: list[Page]) -> list[Any]:
    """One parameter per page; pages that use the SDK transport get its warning filter."""
    return [
        pytest.param(
            page,
            id=page.name,
            marks=[SDK_STREAM_GENERATORS]
            if any('transport_type="sdk"' in block.code for block in page.runnable)
            else [],
        )
        for page in items
    ]


@pytest.fixture
def clean_state() -> Iterator[None]:
    """Undo what pages change process-wide: plugins, transports, the pynector logger."""
    plugins = {info.name for info in registry.available_plugins() if info.distribution is None}
    transports = {
        info.name for info in registry.available_transports() if info.distribution is None
    }
    logger = logging.getLogger("pynector")
    handlers, level = list(logger.handlers), logger.level
    yield
    for info in registry.available_plugins():
        if info.distribution is None and info.name not in plugins:
            registry.unregister_plugin(info.name)
    for transport in registry.available_transports():
        if transport.distribution is None and transport.name not in transports:
            registry.unregister_transport(transport.name)
    logger.handlers[:] = handlers
    logger.setLevel(level)
    otel = sys.modules.get("pynector_otel")
    if otel is not None:
        otel.plugin.configure()  # back to the settings the environment gives


def _replacements(example_api: ExampleAPI, sdk_api: FakeAPI) -> dict[str, str]:
    return {
        "https://api.example.com": example_api.url,
        "http://localhost:8000/v1": sdk_api.url,
    }


def _clients(namespace: dict[str, Any]) -> list[Pynector]:
    return [value for value in namespace.values() if isinstance(value, Pynector)]


def _expect_traffic(page: Page, example_api: ExampleAPI, sdk_api: FakeAPI) -> tuple[int, int]:
    code = "".join(block.code for block in page.runnable)
    api = example_api.requests if "https://api.example.com" in code else -1
    sdk = sdk_api.count() if 'transport_type="sdk"' in code else -1
    return api, sdk


def _check_traffic(
    before: tuple[int, int], page: Page, example_api: ExampleAPI, sdk_api: FakeAPI
) -> None:
    """A page that names a server sent it requests: the placeholder was replaced and used."""
    api, sdk = before
    code = "".join(block.code for block in page.runnable)
    if api >= 0 and ".request" in code:
        assert example_api.requests > api, f"{page.name} sent nothing to the example API"
    if sdk >= 0 and ".request" in code:
        assert sdk_api.count() > sdk, f"{page.name} sent nothing to the fake SDK API"


@pytest.mark.anyio
@pytest.mark.usefixtures("clean_state")
@pytest.mark.parametrize("page", _params(ASYNC_PAGES))
async def test_page_snippets_run(page: Page, example_api: ExampleAPI, sdk_env: FakeAPI) -> None:
    example_api.reset()
    replacements = _replacements(example_api, sdk_env)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    before = _expect_traffic(page, example_api, sdk_env)
    ran = []
    try:
        with anyio.fail_after(PAGE_DEADLINE):
            for block in page.runnable:
                result = eval(block.compiled(replacements), namespace)
                if inspect.iscoroutine(result):
                    await result
                ran.append(block.line)
    finally:
        with anyio.CancelScope(shield=True):
            for client in _clients(namespace):
                await client.aclose()
    assert ran == [block.line for block in page.runnable]
    _check_traffic(before, page, example_api, sdk_env)


@pytest.mark.usefixtures("clean_state")
@pytest.mark.parametrize("page", _params(LOOP_PAGES))
def test_page_snippets_with_their_own_event_loop_run(
    page: Page, example_api: ExampleAPI, sdk_env: FakeAPI
) -> None:
    example_api.reset()
    replacements = _replacements(example_api, sdk_env)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    before = _expect_traffic(page, example_api, sdk_env)
    ran = []

    async def run_awaiting(code: Any) -> None:
        with anyio.fail_after(PAGE_DEADLINE):
            await eval(code, namespace)

    async def close_clients() -> None:
        for client in _clients(namespace):
            await client.aclose()

    # Blocks with top-level await run on a loop in a portal thread; the others,
    # which start their own loop, run here, where no loop is running.
    with start_blocking_portal() as portal:
        try:
            for block in page.runnable:
                code = block.compiled(replacements)
                if awaits(code):
                    portal.call(run_awaiting, code)
                else:
                    exec(code, namespace)
                ran.append(block.line)
        finally:
            portal.call(close_clients)
    assert ran == [block.line for block in page.runnable]
    _check_traffic(before, page, example_api, sdk_env)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_python_block_is_collected(page: Page) -> None:
    text = page.path.read_text(encoding="utf-8")
    assert len(page.blocks) == text.count("```python")


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_not_run_markers_explain_themselves_and_precede_a_block(page: Page) -> None:
    marked = {block.line for block in page.blocks if block.not_run is not None}
    assert len(marked) == len(page.markers), f"{page.name}: a not-run marker is not before a block"
    for line, reason in page.markers:
        assert len(reason.split()) >= 3, f"{page.name}:{line}: say why the block does not run"


def test_the_pages_are_found() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "docs/client.md", "docs/http.md", "docs/sdk.md"} <= names
    assert (ROOT / "mkdocs.yml").is_file()
