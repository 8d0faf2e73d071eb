"""Security audit: secrets never leak, default headers never cross to another origin.

Recognisable secrets are placed where users put them: in default and
per-request headers (``Authorization``, ``X-Api-Key``, ``Cookie``,
``Proxy-Authorization``), in URL credentials (and so in the Basic credential
made from them), in query parameters (``api_key=``, ``token=``) and as SDK API
keys. Real servers on 127.0.0.1 answer, including one that echoes every
request back in its body (as a misbehaving or debugging server does). Then
every place a secret could surface is searched:

* the repr and str of the client, the transport, responses, requests, header
  maps, streams, errors (with their chained causes and tracebacks) and of what
  plugins receive (``RequestInfo``, ``RetryInfo``, ...);
* every log record at DEBUG, from every logger (pynector's, httpx2's,
  aiohttp's, the SDKs');
* every span, event and attribute recorded by pynector-otel through the real
  OpenTelemetry SDK (a tracer provider of the test's own, in-memory exporter),
  with every secret header name on its capture allow-list;
* error messages for 401, 404, 500, timeouts and refused connections;
* the output of ``pynector request`` and ``pynector batch``.

Default headers are also checked never to reach a second loopback origin,
neither through an absolute URL nor through a redirect.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pynector import Pynector, hookimpl, registry
from pynector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    NotFoundError,
    PynectorError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from pynector.hookspecs import BatchInfo, RequestInfo, RetryInfo, RetryWaitInfo
from pynector_otel import OtelPlugin
from tests.sdk._fake_api import FakeAPI

from ._servers import CONTROL, EchoServer, FaultServerProcess

pytestmark = pytest.mark.anyio

BEARER = "tok-AUDIT-3b9f61c2d8"
API_KEY = "key-AUDIT-7e21a9c4f0"
COOKIE = "ck-AUDIT-5d0c8e13ab"
PROXY_CREDENTIAL = "px-AUDIT-91fe4b7a26"
URL_USER = "alice-AUDIT-u5"
URL_PASSWORD = "pw-AUDIT-c4a7e90d15"
QUERY_KEY = "qk-AUDIT-2f8d6b0e94"
QUERY_TOKEN = "qt-AUDIT-8a1c5e7b32"
SDK_KEY = "sk-AUDIT-0d4e9b2c7f61a5"
AUTH_TOKEN = "xat-AUDIT-6c1e8b3f07"
PRIVATE_TOKEN = "prt-AUDIT-2d9a4f7c18"
SESSION_ID = "sid-AUDIT-8f3b0e6a29"
ACCESS_TOKEN = "qat-AUDIT-5e7c2a9d30"
BASIC = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
SECRETS = {
    "Authorization bearer token": BEARER,
    "X-Api-Key": API_KEY,
    "Cookie": COOKIE,
    "Proxy-Authorization": PROXY_CREDENTIAL,
    "URL password": URL_PASSWORD,
    "Basic credential made from the URL": BASIC,
    "api_key= query parameter": QUERY_KEY,
    "token= query parameter": QUERY_TOKEN,
    "SDK api_key": SDK_KEY,
    "X-Auth-Token": AUTH_TOKEN,
    "Private-Token": PRIVATE_TOKEN,
    "X-Session-Id": SESSION_ID,
    "accessToken= query parameter": ACCESS_TOKEN,
}
DEFAULT_HEADERS = {
    "Authorization": f"Bearer {BEARER}",
    "X-Api-Key": API_KEY,
    "Cookie": f"session={COOKIE}",
    "X-Team": "blue",
}
OWN_HEADERS = {
    "Proxy-Authorization": f"Basic {PROXY_CREDENTIAL}",
    # Credential headers outside the usual list: the name rule covers them.
    "X-Auth-Token": AUTH_TOKEN,
    "Private-Token": PRIVATE_TOKEN,
    "X-Session-Id": SESSION_ID,
}
SECRET_PARAMS = {
    "api_key": QUERY_KEY,
    "token": QUERY_TOKEN,
    "accessToken": ACCESS_TOKEN,
    "page": "2",
}
SECRET_HEADER_NAMES = [
    "authorization",
    "x-api-key",
    "cookie",
    "proxy-authorization",
    "set-cookie",
    "x-auth-token",
    "private-token",
    "x-session-id",
]


def leaks(text: str) -> list[str]:
    """The secrets (by name) found in ``text``."""
    return [name for name, secret in SECRETS.items() if secret in text]


@dataclass
class Audit:
    """Everything a secret could surface in, collected during one test."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, *objects: object) -> None:
        for obj in objects:
            self.texts.append((f"repr of {where}", repr(obj)))
            self.texts.append((f"str of {where}", str(obj)))

    def add_traceback(self, where: str, error: BaseException) -> None:
        """The traceback as ``logger.exception`` would write it, chained causes included."""
        self.texts.append((f"traceback of {where}", "".join(traceback.format_exception(error))))

    def assert_clean(self, *more: tuple[str, str]) -> None:
        found = [
            f"{', '.join(leaks(text))} in the {where}: {text[:300]!r}"
            for where, text in [*self.texts, *more]
            if leaks(text)
        ]
        assert not found, "secrets leaked:\n" + "\n".join(found)


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[tuple[str, str]]:
        found = []
        for record in self.records:
            where = f"log record of {record.name!r} at {record.levelname}"
            found.append((where, self.format(record)))
            found.append((f"arguments of the {where}", repr(record.args)))
        return found


LOGGERS = ["", "pynector", "pynector.otel", "httpx2", "httpcore2", "aiohttp", "openai", "anthropic"]


@pytest.fixture
def logs() -> Iterator[_LogCapture]:
    """Every log record of every logger, at DEBUG."""
    capture = _LogCapture()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(capture)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    # Loggers that do not propagate to the root get the handler themselves.
    detached = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in detached:
        logger.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    for logger in detached:
        logger.removeHandler(capture)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


class _InfoRecorder:
    """A plugin that keeps the repr of everything the hooks are given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def pynector_request(self, info: RequestInfo) -> None:
        self.seen.append(("RequestInfo given to plugins", repr(info)))

    @hookimpl
    def pynector_retry(self, info: RetryInfo) -> None:
        self.seen.append(("RetryInfo given to plugins", repr(info)))

    @hookimpl
    def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
        self.seen.append(("RetryWaitInfo given to plugins", repr(info)))

    @hookimpl
    def pynector_batch(self, info: BatchInfo) -> None:
        self.seen.append(("BatchInfo given to plugins", repr(info)))


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    infos: _InfoRecorder

    def texts(self) -> list[tuple[str, str]]:
        """Every finished span, with its attributes, events and status, as JSON."""
        return [(f"span {span.name!r}", span.to_json()) for span in self.spans.get_finished_spans()]


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """pynector-otel on the real SDK, recording every header it may, plus a hook recorder.

    The tracer provider is the test's own (not the process-wide one, which can
    be set only once); installed plugins are left out so nothing traces twice.
    """
    monkeypatch.setenv("PYNECTOR_PLUGINS", "")
    registry.clear_cache()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugin = OtelPlugin(
        tracer_provider=provider,
        capture_message_content=True,
        request_headers=[*SECRET_HEADER_NAMES, "content-type", "x-team"],
        response_headers=[*SECRET_HEADER_NAMES, "content-type"],
    )
    infos = _InfoRecorder()
    names = [
        registry.register_plugin(plugin, name="audit-otel"),
        registry.register_plugin(infos, name="audit-infos"),
    ]
    yield Telemetry(exporter, infos)
    for name in names:
        registry.unregister_plugin(name)
    monkeypatch.undo()
    registry.clear_cache()
    provider.shutdown()


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(scope="module")
def other_origin() -> Iterator[EchoServer]:
    """A second loopback origin (another port), recording what reaches it."""
    with EchoServer() as server:
        yield server


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as server:
        yield server


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")


@pytest.fixture
async def client(echo: EchoServer) -> AsyncIterator[Pynector]:
    async with Pynector(
        transport_type="http",
        base_url=with_credentials(echo.url),
        headers=DEFAULT_HEADERS,
        config={"timeout": 10.0, "retry_delay": 0.001},
    ) as client:
        yield client


def request(path: str, **extra: Any) -> dict[str, Any]:
    return {"path": path, "params": SECRET_PARAMS, "headers": OWN_HEADERS, **extra}


def at_url(url: str) -> dict[str, Any]:
    return {"url": url, "headers": OWN_HEADERS}


# -- the HTTP transport --------------------------------------------------------------


async def test_http_successes_leave_no_secret_in_reprs_logs_or_spans(
    client: Pynector,
    echo: EchoServer,
    logs: _LogCapture,
    telemetry: Telemetry,
) -> None:
    audit = Audit()
    response = await client.request(request("/echo", method="POST", json={"q": 1}))
    retried = await client.request_with_retry(request("/again"), max_retries=1)
    batch = await client.batch_request([(request(f"/batch/{n}"), {}) for n in range(3)])
    async with client.stream(request("/stream")) as chunks:
        audit.add("a stream", chunks)
        body = b"".join([chunk async for chunk in chunks])
    # The secrets did travel, in the request itself.
    seen = echo.headers_seen()[-1]
    assert seen["authorization"] == f"Bearer {BEARER}"
    assert seen["proxy-authorization"] == f"Basic {PROXY_CREDENTIAL}"
    assert QUERY_KEY in response.json()["target"]
    assert QUERY_KEY in body.decode()
    for reply in [response, retried, *batch]:
        audit.add("a response", reply, reply.request, reply.headers, reply.request.headers)
    audit.add("the client", client, client.transport)
    assert len(telemetry.spans.get_finished_spans()) >= 7
    assert logs.records
    audit.assert_clean(*logs.texts(), *telemetry.texts())


async def test_http_errors_leave_no_secret_in_messages_logs_or_spans(
    client: Pynector,
    echo: EchoServer,
    faults: FaultServerProcess,
    logs: _LogCapture,
    telemetry: Telemetry,
) -> None:
    audit = Audit()
    slow = {**SECRET_PARAMS, "s": "1"}
    refused = with_credentials(faults.refused_url) + f"/x?api_key={QUERY_KEY}"
    expected: list[tuple[dict[str, Any], type[PynectorError], float | None]] = [
        # The echo's body repeats every header and the query: the messages quote it.
        (request(f"{CONTROL}status/401"), AuthenticationError, None),
        (request(f"{CONTROL}status/404"), NotFoundError, None),
        (request(f"{CONTROL}status/500"), ServerError, None),
        (request(f"{CONTROL}sleep", params=slow), TimeoutError, 0.1),  # the client's deadline
        (at_url(refused), ConnectionError, None),
        (at_url(with_credentials(faults.url) + "/reset"), ConnectionError, None),
        (at_url(f"{faults.url}/malformed?token={QUERY_TOKEN}"), PynectorError, None),
    ]
    for data, error_class, deadline in expected:
        with pytest.raises(error_class) as caught:
            if deadline is not None:
                await client.request(data, timeout=deadline)
            else:
                await client.request_with_retry(data, max_retries=1)
        error = caught.value
        audit.add(f"the {type(error).__name__} for {data.get('path', data.get('url'))}", error)
        response = getattr(error, "response", None)
        if response is not None:
            audit.add("an error's response", response, response.request)
    # The transport's own read timeout (a client of its own, so others are not hurried).
    async with Pynector(
        transport_type="http",
        base_url=with_credentials(echo.url),
        headers=DEFAULT_HEADERS,
        timeout={"read": 0.2},
    ) as impatient:
        with pytest.raises(TimeoutError) as read_timeout:
            await impatient.request(request(f"{CONTROL}sleep", params=slow))
    audit.add("the read timeout", read_timeout.value)
    with pytest.raises(ServerError) as in_a_batch:
        await client.batch_request([(request(f"{CONTROL}status/503"), {})], raise_on_error=True)
    audit.add("a batch error", in_a_batch.value)
    with pytest.raises(AuthenticationError) as streamed:
        async with client.stream(request(f"{CONTROL}status/401")):
            pass
    audit.add("a stream error", streamed.value)
    # The server did echo the secrets, so the messages had them to leak.
    assert BEARER in in_a_batch.value.response.text
    assert any(span.status.description for span in telemetry.spans.get_finished_spans())
    audit.assert_clean(*logs.texts(), *telemetry.texts())


async def test_plugins_never_see_secrets_in_the_repr_of_what_the_hooks_receive(
    client: Pynector, faults: FaultServerProcess, telemetry: Telemetry
) -> None:
    await client.request(request("/echo"))
    await client.batch_request([(request("/echo"), {})])
    # A retried 503 (a body that echoes nothing) gives RetryInfo and RetryWaitInfo too.
    flaky = at_url(with_credentials(faults.url) + f"/status/503?token={QUERY_TOKEN}")
    with pytest.raises(ServerError):
        await client.request_with_retry(flaky, max_retries=1)
    kinds = {where for where, _ in telemetry.infos.seen}
    assert len(kinds) == 4, kinds
    Audit().assert_clean(*telemetry.infos.seen)


async def test_httpx2_request_log_lines_never_show_secret_query_values(
    echo: EchoServer, logs: _LogCapture
) -> None:
    async with Pynector(transport_type="http", base_url=echo.url, engine="httpx2") as client:
        await client.request({"path": "/logged", "params": SECRET_PARAMS})
        await client.request({"url": f"{echo.url}/logged?api_key={QUERY_KEY}"})
    lines = [record for record in logs.records if record.name == "httpx2"]
    assert lines, "httpx2 logs every request at INFO"
    Audit().assert_clean(*logs.texts())


async def test_error_tracebacks_never_carry_secrets_in_chained_causes(
    client: Pynector, faults: FaultServerProcess, fake_api: FakeAPI
) -> None:
    """``logger.exception(...)`` prints the whole chain: the engine's or SDK's own error too."""
    audit = Audit()
    for url in (
        f"{faults.url}/malformed?token={QUERY_TOKEN}",
        with_credentials(faults.url) + f"/reset?api_key={QUERY_KEY}",
        with_credentials(faults.refused_url) + f"/x?api_key={QUERY_KEY}",
    ):
        with pytest.raises(PynectorError) as caught:
            await client.request(at_url(url))
        assert caught.value.__cause__ is not None
        audit.add_traceback(f"the {type(caught.value).__name__} for {url}", caught.value)
    # An API that repeats the key it rejected, as some do.
    echoed = {"error": {"message": f"Incorrect API key provided: {SDK_KEY}", "type": "x"}}
    for provider, path, data, base_url in [
        ("openai", "/v1/chat/completions", CHAT, fake_api.url),
        ("anthropic", "/v1/messages", MESSAGE, fake_api.root),
    ]:
        fake_api.fail(path, 401, body=echoed)
        async with Pynector(
            transport_type="sdk", provider=provider, api_key=SDK_KEY, base_url=base_url
        ) as sdk:
            with pytest.raises(AuthenticationError) as rejected:
                await sdk.request(data)
        assert SDK_KEY not in str(rejected.value)
        audit.add_traceback(f"the {provider} SDK's 401", rejected.value)
    audit.assert_clean()


BAD_INPUTS: dict[str, tuple[bool, Any]] = {
    # case: (on a client with base_url, the request)
    "a secret header value given as bytes": (
        True,
        {"path": "/x", "headers": {"Authorization": f"Bearer {BEARER}".encode()}},
    ),
    "a path with a secret query on a client without base_url": (
        False,
        {"path": f"/x?token={QUERY_TOKEN}"},
    ),
    "a relative url with a secret query on a client without base_url": (
        False,
        {"url": f"x?api_key={QUERY_KEY}"},
    ),
    "an absolute path with credentials": (
        True,
        {"path": f"http://{URL_USER}:{URL_PASSWORD}@h/x?token={QUERY_TOKEN}"},
    ),
    "a url with credentials and an unsupported scheme": (
        True,
        {"url": f"ftp://{URL_USER}:{URL_PASSWORD}@h/x?api_key={QUERY_KEY}"},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
async def test_configuration_errors_never_quote_secrets(client: Pynector, case: str) -> None:
    with_base_url, data = BAD_INPUTS[case]
    async with Pynector(transport_type="http") as bare:
        with pytest.raises(ConfigurationError) as caught:
            await (client if with_base_url else bare).request(data)
    audit = Audit()
    audit.add(f"the ConfigurationError for {case}", caught.value)
    audit.assert_clean()


async def test_a_malformed_batch_error_never_quotes_secrets(client: Pynector) -> None:
    # A common slip: the request dict without its (data, options) tuple.
    with pytest.raises(ConfigurationError) as caught:
        await client.batch_request([{"path": "/x", "headers": DEFAULT_HEADERS}])  # type: ignore[list-item]
    audit = Audit()
    audit.add("the ConfigurationError for a batch item that is not a tuple", caught.value)
    audit.assert_clean()


def test_transport_configuration_errors_never_quote_secrets() -> None:
    audit = Audit()
    attempts: list[Callable[[], object]] = [
        lambda: Pynector(transport_type="http", headers={"Authorization": BEARER.encode()}),
        lambda: Pynector(transport_type="http", base_url=f"ftp://u:{URL_PASSWORD}@h/"),
        lambda: Pynector(transport_type="http", proxies=f"gopher://u:{URL_PASSWORD}@proxy:1"),
        lambda: Pynector(transport_type="http", bogus=BEARER),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        audit.add("a transport ConfigurationError", caught.value)
    audit.assert_clean()


# -- default headers stay with their origin ---------------------------------------------


async def test_default_headers_never_reach_another_origin(
    client: Pynector, echo: EchoServer, other_origin: EchoServer
) -> None:
    before = len(other_origin.received)
    await client.request({"url": f"{other_origin.url}/absolute"})
    for code in (302, 303, 307, 308):
        target = f"{other_origin.url}/redirected/{code}"
        response = await client.request(
            {
                "path": f"{CONTROL}redirect",
                "params": {"to": target, "code": str(code)},
                "headers": OWN_HEADERS,
            },
            follow_redirects=True,
        )
        assert response.url == target
    # Credentials in a Location URL are not used either.
    await client.request(
        {
            "path": f"{CONTROL}redirect",
            "params": {"to": with_credentials(other_origin.url) + "/credentials"},
        },
        follow_redirects=True,
    )
    arrived = other_origin.headers_seen()[before:]
    assert len(arrived) == 6
    for headers in arrived:
        for name in ["x-team", *SECRET_HEADER_NAMES]:
            assert name not in headers, (name, headers)
        Audit().assert_clean(("headers the other origin received", json.dumps(headers)))
    # Control: the first origin gets them all, including the Basic credential from the URL.
    await client.request({"path": "/same-origin"})
    own = echo.headers_seen()[-1]
    assert own["x-team"] == "blue"
    assert own["authorization"] == f"Bearer {BEARER}"


async def test_url_credentials_are_sent_only_to_their_own_origin(
    echo: EchoServer, other_origin: EchoServer
) -> None:
    before = len(other_origin.received)
    async with Pynector(transport_type="http", base_url=with_credentials(echo.url)) as client:
        await client.request({"path": "/basic"})
        await client.request({"url": f"{other_origin.url}/no-basic"})
        await client.request(
            {"path": f"{CONTROL}redirect", "params": {"to": f"{other_origin.url}/hop"}},
            follow_redirects=True,
        )
    assert echo.headers_seen()[-2]["authorization"] == f"Basic {BASIC}"
    for headers in other_origin.headers_seen()[before:]:
        assert "authorization" not in headers


# -- the SDK transport ---------------------------------------------------------------------


CHAT = {"model": "gpt-audit", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-audit",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "Hi"}],
}


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeAPI]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no developer profiles
    server = FakeAPI().start()
    yield server
    server.stop()


# The openai SDK leaves its SSE generators to be finalised by the event loop;
# trio reports each as a ResourceWarning (nothing stays open). As in tests/sdk.
SDK_STREAM_GENERATORS = pytest.mark.filterwarnings(
    "ignore:Async generator '(openai._streaming|httpx2._models|httpcore2.):ResourceWarning"
)


@SDK_STREAM_GENERATORS
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_sdk_keys_never_leak(
    provider: str,
    fake_api: FakeAPI,
    faults: FaultServerProcess,
    logs: _LogCapture,
    telemetry: Telemetry,
) -> None:
    openai = provider == "openai"
    path, data = ("/v1/chat/completions", CHAT) if openai else ("/v1/messages", MESSAGE)
    base_url = fake_api.url if openai else fake_api.root
    audit = Audit()
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=SDK_KEY, base_url=base_url
    ) as client:
        reply = await client.request(data)
        async with client.stream(data) as events:
            audit.add("an SDK stream", events)
            async for event in events:
                audit.add("an SDK event", event)
        echoed = {"error": {"message": f"Incorrect API key provided: {SDK_KEY}", "type": "x"}}
        for status, error_class, attempts in [
            (401, AuthenticationError, 1),
            (404, NotFoundError, 1),
            (500, ServerError, 2),
            (429, RateLimitError, 2),
        ]:
            fake_api.fail(path, status, body=echoed, headers={"retry-after": "0"}, times=attempts)
            with pytest.raises(error_class) as caught:
                await client.request_with_retry(data, max_retries=1, retry_delay=0.001)
            audit.add(f"the SDK's {status} error", caught.value)
        with pytest.raises(TimeoutError) as timed_out:
            await client.request({**data, "model": "hold"}, timeout=0.2)
        audit.add("the SDK's timeout", timed_out.value)
        audit.add("the SDK client", client, client.transport, reply)
    refused_url = faults.refused_url + ("/v1" if openai else "")
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=SDK_KEY, base_url=refused_url
    ) as refused:
        with pytest.raises(ConnectionError) as refused_error:
            await refused.request(data)
        audit.add("the SDK's connection error", refused_error.value)
    # The key did travel, in the request headers.
    sent = fake_api.requests[0].headers
    assert SDK_KEY in (sent.get("authorization", "") + sent.get("x-api-key", ""))
    assert telemetry.spans.get_finished_spans()
    audit.assert_clean(*logs.texts(), *telemetry.texts())


# -- the command line ---------------------------------------------------------------------


def pynector(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pynector", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


SECRET_OPTIONS = [
    "-H",
    f"Authorization: Bearer {BEARER}",
    "-H",
    f"X-Api-Key: {API_KEY}",
    "-H",
    f"Cookie: session={COOKIE}",
    "-H",
    f"Proxy-Authorization: Basic {PROXY_CREDENTIAL}",
]


def _cli_output(done: subprocess.CompletedProcess[str], *files: Path) -> list[tuple[str, str]]:
    found = [("CLI stdout", done.stdout), ("CLI stderr", done.stderr)]
    found += [(f"CLI output file {file.name}", file.read_text()) for file in files]
    return found


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize("status", ["/quiet", f"{CONTROL}status/401"])
def test_cli_request_never_prints_secret_headers_or_url_credentials(
    echo: EchoServer, output: str, status: str
) -> None:
    done = pynector(
        "request",
        "--format",
        output,
        "--base-url",
        with_credentials(echo.url),
        *SECRET_OPTIONS,
        status,
    )
    assert done.returncode == (0 if status == "/quiet" else 1), done.stderr
    assert echo.headers_seen()[-1]["x-api-key"] == API_KEY  # it was sent
    Audit().assert_clean(*_cli_output(done))


def test_cli_request_never_prints_the_basic_credential_made_from_url_credentials(
    echo: EchoServer,
) -> None:
    done = pynector("request", "--format", "json", with_credentials(echo.url) + "/basic")
    assert done.returncode == 0, done.stderr
    assert echo.headers_seen()[-1]["authorization"] == f"Basic {BASIC}"  # it was sent
    Audit().assert_clean(*_cli_output(done))


def test_cli_request_never_prints_secret_query_parameters(echo: EchoServer) -> None:
    done = pynector(
        "request",
        "--base-url",
        echo.url,
        "-p",
        f"api_key={QUERY_KEY}",
        "-p",
        f"token={QUERY_TOKEN}",
        f"{CONTROL}status/500",
    )
    assert done.returncode == 1
    Audit().assert_clean(*_cli_output(done))


def test_cli_connection_errors_never_print_secrets(faults: FaultServerProcess) -> None:
    done = pynector(
        "request",
        *SECRET_OPTIONS,
        with_credentials(faults.refused_url) + f"/x?api_key={QUERY_KEY}&token={QUERY_TOKEN}",
    )
    assert done.returncode == 1
    assert "connect" in done.stderr
    Audit().assert_clean(*_cli_output(done))


def test_cli_batch_never_writes_secrets_to_the_output_or_the_terminal(
    echo: EchoServer, tmp_path: Path
) -> None:
    lines = [
        {"id": "plain", "path": "/plain"},
        {"id": "denied", "path": f"{CONTROL}status/401"},
        {
            "id": "own-secrets",
            "path": "/own",
            "headers": {"Authorization": f"Bearer {BEARER}", "Cookie": f"session={COOKIE}"},
            "params": {"api_key": QUERY_KEY, "token": QUERY_TOKEN},
        },
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    done = pynector(
        "batch",
        source,
        "-o",
        out,
        "--base-url",
        with_credentials(echo.url),
        "-H",
        f"X-Api-Key: {API_KEY}",
        "-H",
        f"Proxy-Authorization: Basic {PROXY_CREDENTIAL}",
        "--progress",
        "plain",
        "--retries",
        "0",
    )
    assert done.returncode == 1, done.stderr  # the 401 line failed
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(result["id"] for result in results) == ["denied", "own-secrets", "plain"]
    Audit().assert_clean(*_cli_output(done, out))
