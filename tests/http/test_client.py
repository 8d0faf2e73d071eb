# mypy: disable-error-code="var-annotated,union-attr"
"""The HTTP transport under the Pynector client: retries, batches, and the seed's snippets.

The snippets are copied as the seed writes them, with the loopback control
server's URL in place of ``https://api.example.com``; what they print is
checked. Retries, Retry-After waits and ``max_concurrency`` are verified from
the server's side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import pytest

from pynector import Pynector
from pynector.errors import (
    ConfigurationError,
    NotFoundError,
    PynectorError,
    ServerError,
    TimeoutError,
    TransportError,
)
from pynector_http import Response

from ._control import ControlServer
from .conftest import AUTO, AUTO_PICKS

pytestmark = pytest.mark.anyio

# The seed's snippets run as written: with the default engine="auto".
seed = pytest.mark.parametrize("backend_engine", AUTO, ids=["-".join(pair) for pair in AUTO])


# -- the seed's snippets, as written ---------------------------------------------


@seed
async def test_seed_creating_a_client(control: ControlServer, anyio_backend: str) -> None:
    base_url = control.url
    from pynector import Pynector

    # Create a client with default HTTP transport
    client = Pynector(
        transport_type="http", base_url=base_url, headers={"Content-Type": "application/json"}
    )

    # Using as an async context manager (recommended)
    async with Pynector(transport_type="http", base_url=base_url) as client:  # noqa: F811
        # Client is automatically connected and will be properly closed when exiting the context
        response = await client.request({"path": "/users", "method": "GET"})
        picked = client.transport.engine

    assert response.status_code == 200
    assert response.json()["path"] == "/users"
    assert picked == AUTO_PICKS[anyio_backend]  # engine="auto": aiohttp on asyncio


@seed
async def test_seed_making_requests(
    control: ControlServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Pynector(transport_type="http", base_url=control.url) as client:
        # Simple request
        response = await client.request(
            {"path": "/users", "method": "GET", "params": {"limit": 10}}
        )
        assert response.json()["query"] == {"limit": "10"}

        # Request with timeout
        try:
            response = await client.request(
                {"path": "/users", "method": "GET"},
                timeout=5.0,  # 5 second timeout
            )
        except TimeoutError:
            print("Request timed out")

        # Request with retry for transient errors
        response = await client.request_with_retry(
            {"path": "/users", "method": "GET"},
            max_retries=3,
            retry_delay=1.0,  # Initial delay, will increase exponentially
        )
    assert response.status_code == 200
    assert capsys.readouterr().out == ""


@seed
async def test_seed_batch_requests(
    control: ControlServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Pynector(transport_type="http", base_url=control.url) as client:
        # Create a batch of requests
        requests = [
            ({"path": "/users/1", "method": "GET"}, {}),
            ({"path": "/users/2", "method": "GET"}, {}),
            ({"path": "/users/3", "method": "GET"}, {}),
        ]

        # Process requests in parallel with concurrency limit
        responses = await client.batch_request(
            requests,
            max_concurrency=2,  # Process at most 2 requests at a time
            timeout=10.0,  # 10 second timeout for the entire batch
            raise_on_error=False,  # Return exceptions instead of raising them
        )

        # Check results
        for i, response in enumerate(responses):
            if isinstance(response, Exception):
                print(f"Request {i} failed: {response}")
            else:
                print(f"Request {i} succeeded: {response}")

    assert [r.json()["path"] for r in responses] == ["/users/1", "/users/2", "/users/3"]
    assert capsys.readouterr().out.splitlines() == [
        f"Request {i} succeeded: <Response [200 OK]>" for i in range(3)
    ]


@seed
async def test_seed_resource_management(control: ControlServer) -> None:
    # Manual resource management
    client = Pynector(transport_type="http", base_url=control.url)
    try:
        response = await client.request({"path": "/users", "method": "GET"})
    finally:
        await client.aclose()  # Ensure resources are properly released

    # Using async context manager (recommended)
    async with Pynector(transport_type="http", base_url=control.url) as client:
        response = await client.request({"path": "/users", "method": "GET"})
        # Resources automatically released when exiting the context

    assert response.status_code == 200
    assert control.wait_for(lambda: control.open_connections == 0)


@seed
async def test_seed_custom_configuration(
    control: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Instance configuration
    client = Pynector(
        transport_type="http", config={"timeout": 30.0, "retry_count": 3, "max_connections": 10}
    )
    assert client.transport._max_connections == 10
    await client.aclose()

    # Environment variables (set before creating client)
    monkeypatch.setenv("PYNECTOR_TIMEOUT", "30.0")
    monkeypatch.setenv("PYNECTOR_RETRY_COUNT", "3")
    client = Pynector(transport_type="http")
    # Will use environment variables for configuration
    assert client.config.timeout == 30.0
    response = await client.request({"url": f"{control.url}/users"})
    await client.aclose()
    assert response.status_code == 200


@pytest.fixture
def restore_pynector_logging() -> Iterator[None]:
    logger = logging.getLogger("pynector")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.usefixtures("restore_pynector_logging")
@seed
async def test_seed_integrating_with_telemetry(control: ControlServer) -> None:
    # Configure telemetry (optional)
    from pynector.telemetry import configure_telemetry

    configure_telemetry(service_name="my-service", log_level="INFO")

    # Create client with telemetry enabled
    client = Pynector(
        transport_type="http",
        base_url=control.url,
        enable_telemetry=True,  # Default is True
    )
    response = await client.request({"path": "/users", "method": "GET"})
    await client.aclose()
    assert response.is_success


@seed
async def test_seed_timeout_handling(control: ControlServer) -> None:
    requests = [({"path": f"/users/{i}", "method": "GET"}, {}) for i in range(1, 4)]

    # Global timeout in configuration
    client = Pynector(
        transport_type="http",
        base_url=control.url,
        config={"timeout": 10.0},  # Global default timeout
    )

    # Per-request timeout (overrides global)
    response = await client.request(
        {"path": "/users", "method": "GET"},
        timeout=5.0,  # This request has a 5-second timeout
    )

    # Batch request timeout (applies to the entire batch)
    responses = await client.batch_request(
        requests,
        timeout=15.0,  # The entire batch must complete within 15 seconds
    )
    await client.aclose()
    assert response.is_success
    assert all(r.is_success for r in responses)


@seed
async def test_seed_error_handling(
    control: ControlServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Pynector(transport_type="http", base_url=control.url) as client:
        for path in ("/users", "/missing"):
            try:
                response = await client.request({"path": path, "method": "GET"})
            except TimeoutError:
                print("Request timed out")
            except TransportError as e:
                print(f"Transport error: {e}")
            except ConfigurationError as e:
                print(f"Configuration error: {e}")
            except PynectorError as e:
                print(f"Other Pynector error: {e}")
    assert response.is_success
    out = capsys.readouterr().out
    assert out.startswith(f"Transport error: GET {control.url}/missing -> 404 Not Found")


# -- retries, verified from the server's side ------------------------------------


async def test_request_with_retry_retries_5xx_until_success(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        response = await client.request_with_retry(
            {"path": "/flaky", "params": {"key": key, "fail": 2, "status": 503}},
            max_retries=3,
            retry_delay=0.01,
        )
    assert response.json() == {"attempt": 3}
    assert control.key(key).attempts == 3


async def test_retry_after_replaces_the_backoff_measured_by_the_server(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        response = await client.request_with_retry(
            {"path": "/flaky", "params": {"key": key, "status": 429, "retry_after": "1"}},
            max_retries=2,
            retry_delay=30.0,  # the server's 1 s wins over a 0..30 s backoff
        )
    first, second = control.key(key).times
    assert response.json() == {"attempt": 2}
    assert 0.9 <= second - first < 5


async def test_retry_after_beyond_the_clients_bound_raises_at_once(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        start = anyio.current_time()
        with pytest.raises(ServerError) as caught:
            await client.request_with_retry(
                {"path": "/flaky", "params": {"key": key, "fail": 5, "retry_after": "3600"}},
                max_retries=3,
            )
    assert caught.value.retry_after == 3600
    assert control.key(key).attempts == 1
    assert anyio.current_time() - start < 5


async def test_client_errors_are_never_retried(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        with pytest.raises(NotFoundError):
            await client.request_with_retry(
                {"path": "/echo", "params": {"key": key, "status": 404}}, retry_delay=0.01
            )
    assert control.key(key).attempts == 1


async def test_post_is_retried_only_when_marked_idempotent(
    control: ControlServer, key: str, engine: str
) -> None:
    post = {"path": "/flaky", "method": "POST", "json": {"order": 1}}
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        with pytest.raises(ServerError):
            await client.request_with_retry(
                {**post, "params": {"key": key + "-plain", "fail": 2}}, retry_delay=0.01
            )
        keyed = await client.request_with_retry(
            {
                **post,
                "params": {"key": key + "-keyed", "fail": 2},
                "headers": {"Idempotency-Key": "order-1"},
            },
            retry_delay=0.01,
        )
        opted_in = await client.request_with_retry(
            {**post, "params": {"key": key + "-opted", "fail": 2}},
            retry_delay=0.01,
            idempotent=True,
        )
    assert control.key(key + "-plain").attempts == 1
    assert control.key(key + "-keyed").attempts == 3
    assert control.key(key + "-opted").attempts == 3
    assert keyed.json() == opted_in.json() == {"attempt": 3}


async def test_a_post_cut_short_by_the_client_deadline_is_not_retried_unless_marked(
    control: ControlServer, key: str, engine: str
) -> None:
    post = {"path": "/hold", "method": "POST", "json": {"order": 1}}
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        with pytest.raises(TimeoutError) as plain:
            await client.request_with_retry(
                {**post, "params": {"key": key + "-plain"}}, retry_delay=0, timeout=0.2
            )
        with pytest.raises(TimeoutError) as keyed:
            await client.request_with_retry(
                {
                    **post,
                    "params": {"key": key + "-keyed"},
                    "headers": {"Idempotency-Key": "order-1"},
                },
                max_retries=2,
                retry_delay=0,
                timeout=0.2,
            )
    assert plain.value.retryable is False
    assert keyed.value.retryable is True
    assert control.key(key + "-plain").attempts == 1
    assert control.key(key + "-keyed").attempts == 3


# -- batches -------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
async def test_batch_max_concurrency_is_verified_by_the_server(
    control: ControlServer, key: str, limit: int, engine: str
) -> None:
    total = 4 * limit
    params = {"key": key, "target": limit, "total": total}
    requests = [({"path": "/gate", "params": params}, {}) for _ in range(total)]
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        results = await client.batch_request(requests, max_concurrency=limit)
    assert all(isinstance(r, Response) for r in results)
    assert control.key(key).max_in_flight == limit
    assert control.key(key).attempts == total


async def test_batch_keeps_errors_in_their_slots_and_retries_when_asked(
    control: ControlServer, key: str, engine: str
) -> None:
    requests = [
        ({"path": "/users/1"}, {}),
        ({"path": "/missing"}, {}),
        ({"path": "/flaky", "params": {"key": key, "fail": 1}}, {}),
    ]
    async with Pynector(
        transport_type="http", engine=engine, base_url=control.url, config={"retry_delay": 0.01}
    ) as client:
        results = await client.batch_request(requests, max_retries=2)
    assert isinstance(results[0], Response)
    assert isinstance(results[1], NotFoundError)
    assert isinstance(results[2], Response)
    assert results[2].json() == {"attempt": 2}


async def test_config_max_connections_sizes_the_pool(
    control: ControlServer, key: str, engine: str
) -> None:
    opened = control.connections_opened
    requests = [({"path": "/slow", "params": {"key": key, "seconds": 0.01}}, {}) for _ in range(30)]
    async with Pynector(
        transport_type="http", engine=engine, base_url=control.url, config={"max_connections": 2}
    ) as client:
        results = await client.batch_request(requests, max_concurrency=30)
    assert all(isinstance(r, Response) for r in results)
    assert control.key(key).max_in_flight <= 2
    assert control.connections_opened - opened <= 2


async def test_client_deadline_cancels_a_slow_request_and_the_pool_recovers(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(
        transport_type="http", engine=engine, base_url=control.url, config={"max_connections": 1}
    ) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request({"path": "/hold", "params": {"key": key}}, timeout=0.2)
        assert control.wait_for(lambda: control.key(key).disconnects == 1)
        response = await client.request({"path": "/users"}, timeout=5)
    assert caught.value.retryable is True
    assert response.is_success


def test_a_mistyped_transport_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="follow_redirect"):
        Pynector(
            transport_type="http",
            base_url="http://127.0.0.1:1",
            follow_redirect=True,
        )
    with pytest.raises(ConfigurationError, match="max_connections=0"):
        Pynector(transport_type="http", max_connections=0)
