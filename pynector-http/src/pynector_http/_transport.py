"""The HTTP transport: one connection pool shared by concurrent requests, on either engine.

Everything that does not depend on the engine lives here and in the modules it
imports: checking the request, its URL and headers (and which origin gets the
default headers), encoding the body, following redirects, the idempotency
rule, the errors and the ``Response``. An engine (``_httpx2_engine``,
``_aiohttp_engine``) only sends one request at a time over its pool.
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from pynector import errors
from pynector.call import Call
from pynector.redact import is_secret_name, redact_url, scrub, secret_values
from pynector.registry import installed_plugins
from pynector.transport.protocol import CallTransport, LifecycleMixin

if TYPE_CHECKING:
    from pynector.cli import CLISupport

from ._body import Body, StreamedBody, encode_body, has_body, is_streamed
from ._engine import (
    MAX_HEAD_SIZE,
    BodyTooLarge,
    Engine,
    Reply,
    ReplyTooLarge,
    Settings,
    choose_engine,
    open_engine,
)
from ._errors import failure, status_error
from ._options import (
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TIMEOUTS,
    bool_option,
    check_base_url,
    check_engine,
    check_max_connections,
    check_max_response_size,
    check_proxies,
    check_timeout,
    check_verify,
    require_module,
    ssl_context,
)
from ._request import (
    BODY_KEYS,
    IDEMPOTENT_METHODS,
    REQUEST_KEYS,
    HTTPRequest,
    check_data_keys,
    check_headers,
    check_options,
    check_target_text,
    fail,
    request_method,
    unusable_data,
)
from ._response import Request, Response, ResponseStream
from ._semconv import (
    load_known_methods,
    origin_key,
    report_outcome,
    report_reply,
    report_request,
)
from ._urls import (
    REDIRECT_STATUSES,
    Origin,
    is_absolute,
    merge_query,
    origin_of,
    query_secrets,
    redirect,
    split_absolute,
    with_params,
)
from ._version import __version__

__all__ = ["HTTPTransport"]


class _Default:
    def __repr__(self) -> str:
        return "<10 s to connect, no other limit>"


_DEFAULT_TIMEOUT: Any = _Default()
_USER_AGENT = f"pynector-http/{__version__}"
# Dropped on every redirect (as httpx does): the engine's cookie jar decides.
_REDIRECT_DROP = frozenset({"cookie"})
_BODY_HEADERS = frozenset({"content-length", "transfer-encoding"})
# What request data can raise that is the caller's mistake, not the server's.
_DATA_ERRORS = (UnicodeError, RecursionError, TypeError, ValueError)
_STANDARD_REASONS = {status.value: status.phrase for status in HTTPStatus}
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


_NO_BODY_KEYS = REQUEST_KEYS - BODY_KEYS
_PLAIN_KEYS = frozenset({"path", "method"})
_NOT_TRACED: frozenset[str] = frozenset()
# The standard methods as callers write them, upper-cased.
_METHODS = {
    spelling: name
    for name in ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH")
    for spelling in (name, name.lower())
}


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _has_header(headers: list[tuple[str, str]], lower_name: str) -> bool:
    return any(name.lower() == lower_name for name, _ in headers)


def _method_of(data: Mapping[str, Any], method: object) -> str:
    """The request's method (given), upper case: a standard one looked up, any other checked."""
    if type(method) is str and (standard := _METHODS.get(method)) is not None:
        return standard
    return request_method(data)


def _with_checked_params(url: str, params: object) -> str:
    try:
        return with_params(url, params)
    except (TypeError, ValueError) as exc:
        raise errors.ConfigurationError(
            f"the request data could not be encoded ({type(exc).__name__}: {exc}); "
            "check 'params': a dict (list values repeat the key), a list of pairs or "
            "a string"
        ) from exc


def _with_body(
    data: Mapping[str, Any], headers: list[tuple[str, str]]
) -> tuple[Body, list[tuple[str, str]]]:
    """The encoded body, and the headers with its ``Content-Type`` unless they have one."""
    body, content_type = encode_body(data)
    if content_type is not None and not _has_header(headers, "content-type"):
        headers = [*headers, ("Content-Type", content_type)]
    return body, headers


def _with_trace_headers(
    extra: dict[str, str], headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``headers`` with those plugins add (the trace context), never replacing the caller's."""
    # Checked like the caller's own, so both engines refuse the same values.
    check_headers(extra, "pynector_headers")
    present = {name.lower() for name, _ in headers}
    return [*headers, *((n, v) for n, v in extra.items() if n.lower() not in present)]


def _traced(
    extra: dict[str, str], headers: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], frozenset[str]]:
    """The headers with the plugins' trace headers, and the names these added (lower case)."""
    present = {name.lower() for name, _ in headers}
    added = frozenset(n.lower() for n in extra if n.lower() not in present)
    return _with_trace_headers(extra, headers), added


class _Exchange:
    """One request as it goes out, updated hop by hop when redirects are followed."""

    __slots__ = (
        "body",
        "call",
        "deadline",
        "follow",
        "headers",
        "hop",
        "idempotent",
        "method",
        "origin",
        "stream",
        "timeout",
        "traced",
        "url",
        "userinfo",
    )

    def __init__(
        self,
        method: str,
        url: str,
        origin: Origin,
        headers: list[tuple[str, str]],
        body: Body,
        follow: bool,
        idempotent: bool | None,
        call: Call[Any] | None,
        userinfo: bool,
        traced: frozenset[str],
    ) -> None:
        self.method = method
        self.url = url
        self.origin = origin
        self.headers = headers
        self.body = body
        self.follow = follow
        self.idempotent = idempotent
        self.call = call  # where what is learnt is reported
        self.userinfo = userinfo  # the caller's URL had credentials (sent as a header)
        self.traced = traced  # the header names the plugins added
        self.timeout: float | None = None  # a deadline the engine enforces, in seconds
        self.deadline = 0.0  # ... and when it expires (time.monotonic())
        self.hop = 0  # redirects followed so far
        # A body that can be read once, kept for the whole call (a redirect to
        # GET drops the body, not the fact that it was sent).
        self.stream = None if body is None or type(body) is not StreamedBody else body

    def replayable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS or any(
            name.lower() == "idempotency-key" for name, _ in self.headers
        )

    def report_reply(self, reply: Reply) -> None:
        """Report on the call the hop that got ``reply`` (the request side too)."""
        call = self.call
        if call is not None:
            report_reply(call, self.method, self.url, self.origin, self.userinfo, reply, self.hop)

    def report_failure(self) -> None:
        """Report on the call what was known of the request when it failed without a reply."""
        call = self.call
        if call is not None and call.status is None:
            report_request(
                call, self.method, self.url, self.origin, self.headers, self.userinfo, self.hop
            )

    def spent(self) -> bool:
        """Whether the call's one-shot body has been (partly) sent: it cannot be sent again."""
        stream = self.stream
        return stream is not None and stream.started


_SPENT = (
    "; it was not retried because its body is an async iterable, which was sent once "
    "and cannot be sent again: pass the body as bytes to allow retries"
)


def _in_units(size: int) -> str:
    """`` (100 MiB)`` for a size of at least 1 KiB, else nothing."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f" ({size / scale:.4g} {unit})"
    return ""


def _not_resent(error: errors.PynectorError) -> None:
    """Mark an error of a call whose one-shot body is spent as not retryable, saying why."""
    if error.retryable:
        error.retryable = False
        error.args = (f"{error.args[0]}{_SPENT}", *error.args[1:])


class HTTPTransport(LifecycleMixin, CallTransport[HTTPRequest, Response]):
    """The ``http`` transport: :class:`HTTPRequest` dicts in, :class:`Response` replies out.

    Registered as ``transport_type="http"``; ``Pynector(transport_type="http",
    base_url=..., ...)`` creates one and passes it these options.
    ``Pynector(transport=HTTPTransport(...))`` is a
    ``Pynector[HTTPRequest, Response]``. One connection pool serves every
    concurrent request of the transport; it is opened by :meth:`connect` (or
    on first use) and closed by :meth:`disconnect` (also ``aclose()``, and
    leaving ``async with transport:``). The transport sends each request
    once: retries belong to the client, which reads the errors' ``retryable``
    and ``retry_after``. On the aiohttp engine the transport enforces the
    client's deadline itself (:attr:`handles_deadline`), with aiohttp's own
    timer; on httpx2 the client's cancel scope does.

    Two engines send the requests, with the same options, errors and
    :class:`Response`: aiohttp (asyncio only, much less CPU per request) and
    httpx2 (asyncio and trio, HTTP/2, SOCKS proxies). ``engine="auto"`` picks
    when the pool opens, inside the running event loop.

    Args:
        base_url: Prefix of every ``path``; its origin is the only one that
            receives the default ``headers``. A query in it is kept on every
            request, before the path's own query and ``params`` (which replace
            the keys they repeat). Credentials in it
            (``https://user:pw@host``) become a Basic ``Authorization`` header.
        headers: Default headers, sent only to ``base_url``'s origin (to every
            URL when there is no ``base_url``) and dropped on a redirect to
            another origin.
        timeout: Per-phase timeouts: seconds for every phase, ``None`` for
            none, or a mapping of ``connect``/``read``/``write``/``pool``. By
            default 10 s to connect and no other limit: the client's deadline
            bounds each call.
        follow_redirects: Follow 3xx replies (default ``False``: a 3xx reply
            raises an ``HTTPStatusError`` that names the new location).
        max_redirects: Redirects followed before giving up with a ``ProtocolError``.
        verify: ``True`` (the system's trusted CAs), a CA bundle path, an
            ``ssl.SSLContext``, or ``False`` (no verification; never in production).
        proxies: A proxy URL for every request, or a mapping such as
            ``{"http": "http://proxy:8080", "https": "http://proxy:8080"}``
            (keys ``http``, ``https``, ``all`` or httpx2 URL patterns; ``None``
            means no proxy there). Credentials in a proxy URL are sent only to
            the proxy.
        max_connections: Size of the connection pool (``None``: no limit). The
            client passes its ``config["max_connections"]``.
        max_response_size: Largest body :meth:`request` reads, in bytes after
            decompression (default 100 MiB; ``None``: no limit). A larger one
            raises ``ResponseTooLargeError`` as soon as it passes the limit, and
            its connection is closed. :meth:`stream` is not limited. The client
            passes its ``config["max_response_size"]``.
        http2: Negotiate HTTP/2 over TLS (needs ``pip install 'pynector-http[http2]'``
            and the httpx2 engine).
        trust_env: Read ``HTTP(S)_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE``
            from the environment.
        engine: ``"auto"`` (aiohttp on asyncio when it is installed and the
            options allow it, else httpx2), ``"aiohttp"`` (asyncio only; needs
            ``pip install 'pynector-http[aiohttp]'``) or ``"httpx2"``.
        enable_telemetry: Let telemetry plugins add headers (the W3C trace
            context) to requests. A request gets them only when the call's
            ``telemetry`` is on too: a client created with
            ``enable_telemetry=False`` sends none.

    Raises:
        ConfigurationError: For an invalid option, naming it and the fix.
    """

    transport_type = "http"
    client_settings = frozenset({"max_connections", "max_response_size"})
    handles_deadline = False
    """Whether :meth:`handle_request` enforces ``call.deadline`` itself.

    ``True`` while the pool is open on the aiohttp engine, whose own timer
    (``ClientTimeout(total=...)``) ends a request at the deadline for less
    CPU than a cancel scope; ``False`` on httpx2, whose requests the client's
    cancel scope bounds. A plain attribute, set when the pool opens and
    closes: the client reads it on every call.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | Mapping[str, float | None] | None = _DEFAULT_TIMEOUT,
        follow_redirects: bool = False,
        max_redirects: int = 20,
        verify: bool | str | ssl.SSLContext = True,
        proxies: str | Mapping[str, str | None] | None = None,
        max_connections: int | None = 100,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
        http2: bool = False,
        trust_env: bool = True,
        engine: str = "auto",
        enable_telemetry: bool = True,
    ) -> None:
        load_known_methods()  # OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS, as it is now
        base = check_base_url(base_url)
        defaults = dict(check_headers({} if headers is None else headers, "headers"))
        if base is not None and base.userinfo:
            if not any(name.lower() == "authorization" for name in defaults):
                defaults["Authorization"] = _basic(base.username, base.password)
            base = base.copy_with(username=None, password=None)
        self._base_url = base
        self._base_prefix = ""
        self._base_query = ""
        self._base_origin: Origin | None = None
        if base is not None:
            # As httpx: base_url is a prefix that ends with "/" ("https://h/api" +
            # "/users" is "https://h/api/users").
            parts = urlsplit(str(base))
            path = parts.path if parts.path.endswith("/") else parts.path + "/"
            self._base_prefix = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
            # Kept and merged in front of each request's own query (Azure's ?api-version=).
            self._base_query = parts.query
            self._base_origin = origin_of(parts)
        self._defaults: dict[str, tuple[str, str]] = {
            name.lower(): (name, value) for name, value in defaults.items()
        }
        self._default_pairs = list(self._defaults.values())
        self._secrets = secret_values(self._default_pairs)
        # Dropped from a redirect that leaves the first request's origin, with
        # every header pynector.redact.is_secret_name flags.
        self._cross_origin_drop = self._defaults.keys() | {"host"}
        self._timeouts = DEFAULT_TIMEOUTS if timeout is _DEFAULT_TIMEOUT else check_timeout(timeout)
        self._follow_redirects = bool_option("follow_redirects", follow_redirects)
        if (
            isinstance(max_redirects, bool)
            or not isinstance(max_redirects, int)
            or max_redirects < 0
        ):
            raise errors.ConfigurationError(
                f"max_redirects={max_redirects!r} is invalid: it must be a whole number >= 0"
            )
        self._max_redirects = max_redirects
        self._verify = check_verify(verify)
        self._proxies = check_proxies(proxies)
        for proxy_url in self._proxies.values():
            if proxy_url is not None:
                # A proxy may echo the request (Proxy-Authorization included) in an error body.
                self._secrets |= query_secrets(proxy_url)
        self._max_connections = check_max_connections(max_connections)
        self._max_response_size = check_max_response_size(max_response_size)
        self._http2 = bool_option("http2", http2)
        if http2:
            require_module("h2", "http2=True", "'pynector-http[http2]'")
        self._trust_env = bool_option("trust_env", trust_env)
        self._engine_option = check_engine(engine, http2=self._http2, proxies=self._proxies)
        self.enable_telemetry = bool_option("enable_telemetry", enable_telemetry)
        self._ssl_context: ssl.SSLContext | None = None
        self._engine: Engine | None = None
        self._origin_keys: dict[Origin, str] = {}
        # A plain path under base_url -> its URL and origin (engines hash the URL).
        self._plain_urls: dict[str, tuple[str, Origin]] = {}
        base_origin = self._base_origin
        self._base_key = None if base_origin is None else origin_key(base_origin)

    # -- lifecycle ---------------------------------------------------------

    def _open(self) -> Engine:
        """Pick the engine and create its pool (synchronously, so concurrent first uses share it).

        Called inside the running event loop, which decides what ``"auto"`` means.
        """
        engine = self._engine
        if engine is None:
            if self._ssl_context is None:
                self._ssl_context = ssl_context(self._verify, self._trust_env)
            settings = Settings(
                timeouts=self._timeouts,
                ssl_context=self._ssl_context,
                proxies=self._proxies,
                max_connections=self._max_connections,
                http2=self._http2,
                trust_env=self._trust_env,
            )
            name = choose_engine(self._engine_option, settings)
            engine = self._engine = open_engine(name, settings, _USER_AGENT)
            self.handles_deadline = engine.native_deadline
        return engine

    async def connect(self) -> None:
        """Pick the engine and open the connection pool.

        Idempotent; requests also open it on first use.

        Raises:
            ConfigurationError: For ``engine="aiohttp"`` outside asyncio.
        """
        self._open()

    async def disconnect(self) -> None:
        """Close the pool and every connection in it. Safe to call twice.

        A request made afterwards opens a new pool (and picks the engine again).
        """
        engine, self._engine = self._engine, None
        self.handles_deadline = False
        if engine is not None:
            with anyio.CancelScope(shield=True):
                await engine.aclose()

    @property
    def base_url(self) -> str | None:
        """The base URL, without credentials (``None`` when not set)."""
        return None if self._base_url is None else redact_url(str(self._base_url))

    @property
    def engine(self) -> str:
        """The engine in use (``"aiohttp"`` or ``"httpx2"``) while the pool is open.

        Before the pool opens (and after it is closed), the ``engine`` option as
        given: ``"auto"``, ``"aiohttp"`` or ``"httpx2"``.
        """
        return self._engine_option if self._engine is None else self._engine.name

    def __repr__(self) -> str:
        base = "None" if self._base_url is None else repr(redact_url(str(self._base_url)))
        state = "open" if self._engine is not None else "closed"
        return f"<HTTPTransport base_url={base} engine={self.engine} {state}>"

    @staticmethod
    def pynector_cli_support(transport_type: str) -> CLISupport:
        """The ``pynector_cli_support`` hook: how the command line handles HTTP."""
        from ._cli import HTTPCLISupport

        return HTTPCLISupport()

    # -- building a request ------------------------------------------------

    def _target(self, data: Mapping[str, Any]) -> tuple[str, Origin, tuple[str, str] | None]:
        """Return the absolute URL to request, its origin, and credentials from the URL."""
        path = data.get("path")
        url = data.get("url")
        if path is not None:
            if url is not None:
                fail("the request data has both 'path' and 'url'; give one of them")
            return self._path_target(path)
        if url is None:
            if self._base_origin is None:
                fail(
                    "the request data has neither 'path' nor 'url'; e.g. "
                    "{'url': 'https://api.example.com/users'} (or set base_url and use 'path')"
                )
            return self._on_base(""), self._base_origin, None
        return self._url_target(url)

    def _path_target(self, path: object) -> tuple[str, Origin, None]:
        """The target of a ``path``: always under ``base_url``."""
        if not isinstance(path, str):
            fail(f"'path' must be a string such as '/users', got {type(path).__name__}")
        check_target_text("path", path)
        if is_absolute(path):
            fail(
                f"'path' {redact_url(path)!r} is an absolute URL; 'path' is relative to "
                "base_url. Use {'url': ...} for an absolute URL"
            )
        if self._base_origin is None:
            fail(
                f"'path' {redact_url(path)!r} needs a base_url: create the transport with "
                "base_url='https://api.example.com', or pass an absolute {'url': ...}"
            )
        return self._on_base(path), self._base_origin, None

    def _url_target(self, url: object) -> tuple[str, Origin, tuple[str, str] | None]:
        """The target of a ``url``: absolute, or relative to ``base_url``."""
        if not isinstance(url, str):
            fail(f"'url' must be a string, got {type(url).__name__}")
        check_target_text("url", url)
        if not is_absolute(url):
            if self._base_origin is None:
                fail(
                    f"'url' {redact_url(url)!r} is relative and the transport has no base_url; "
                    "pass an absolute URL such as 'https://api.example.com/users'"
                )
            return self._on_base(url), self._base_origin, None
        try:
            target = split_absolute(url)
        except ValueError as exc:
            fail(f"'url' {redact_url(url)!r} is not a valid URL ({exc})")
        if target.origin.scheme not in ("http", "https") or not target.origin.host:
            fail(f"'url' {redact_url(url)!r} must be an http:// or https:// URL")
        host = target.origin.host
        if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
            fail(
                f"'url' {redact_url(url)!r} has an invalid host name: DNS allows at most 63 "
                "characters between dots and 253 in all; check the host"
            )
        return target

    def _on_base(self, path: str) -> str:
        """The URL of ``path`` under ``base_url``, with ``base_url``'s query in front of its own."""
        url = self._base_prefix + path.lstrip("/")
        return merge_query(self._base_query, url) if self._base_query else url

    def _prepare(
        self, data: Any, options: Mapping[str, Any], call: Call[Any] | None = None
    ) -> _Exchange:
        """Validate the request dict and options; return the request to send.

        The one place where request data is turned into a request: whatever
        it raises about the data (an encoding, type or value error, a
        structure too deep to encode) becomes a ``ConfigurationError``. With
        a ``call``, the plugins' trace headers are added and the call is
        where the request reports what it learns.
        """
        # One function, the common request (a dict without a body, a standard
        # method, a 'path') the short way through it: this runs for every request.
        try:
            follow, idempotent = check_options(options) if options else (None, None)
            simple = type(data) is dict and data.keys() <= _NO_BODY_KEYS
            request = data if simple else check_data_keys(data)
            method = request.get("method")
            if method is not None:
                method = _method_of(request, method)
            path = request.get("path")
            if (
                type(path) is str
                and (seen := self._plain_urls.get(path)) is not None
                and request.keys() <= _PLAIN_KEYS
            ):
                # A plain path seen before and nothing to merge: base_url's own headers.
                (url, origin), credentials, headers = seen, None, self._default_pairs
            else:
                url, origin, credentials = self._url_of(request)
                headers = self._headers_for(request, origin, credentials)
            body: Body = None
            if not simple and not BODY_KEYS.isdisjoint(request):
                body, headers = _with_body(request, headers)
            if method is None:
                # As curl and the CLI: a request with a body and no method is a POST.
                method = "GET" if body is None else "POST"
            traced = _NOT_TRACED
            if (
                call is not None
                and call.observed
                and self.enable_telemetry
                and (extra := call.trace_headers())
            ):
                headers, traced = _traced(extra, headers)
        except errors.PynectorError:
            raise
        except _DATA_ERRORS as exc:
            raise unusable_data(exc, data) from exc
        return _Exchange(
            method,
            url,
            origin,
            headers,
            body,
            self._follow_redirects if follow is None else follow,
            idempotent,
            call,
            credentials is not None,
            traced,
        )

    def _url_of(self, data: Mapping[str, Any]) -> tuple[str, Origin, tuple[str, str] | None]:
        """The absolute URL with ``params`` applied, its origin, and credentials from the URL."""
        path = data.get("path")
        if (
            type(path) is str
            and self._base_origin is not None
            and "url" not in data
            and "://" not in path
            and not path.startswith("//")
            and path.isprintable()
            and not self._base_query
        ):
            # A plain path under a base_url without a query: nothing to check or merge.
            url, origin, credentials = self._base_prefix + path.lstrip("/"), self._base_origin, None
            plain = self._plain_urls
            if len(plain) >= 256:
                plain.clear()
            plain[path] = (url, origin)  # for _prepare: the same string (and hash) next time
        else:
            url, origin, credentials = self._target(data)
        params = data.get("params")
        if params is not None:
            url = _with_checked_params(url, params)
        return url, origin, credentials

    def _headers_for(
        self, data: Mapping[str, Any], origin: Origin, credentials: tuple[str, str] | None
    ) -> list[tuple[str, str]]:
        """The request's headers: the defaults (for their origin only), its own, credentials."""
        base = self._base_origin
        same_origin = origin is base or base is None or origin == base
        own = data.get("headers")
        if own:
            own = check_headers(own)
            merged = dict(self._defaults) if same_origin else {}
            for name, value in own.items():
                merged[name.lower()] = (name, value)
            headers = list(merged.values())
        else:
            headers = self._default_pairs if same_origin else []
        if credentials is not None and not _has_header(headers, "authorization"):
            headers = [*headers, ("Authorization", _basic(*credentials))]
        return headers

    # -- sending -------------------------------------------------------------

    async def _exchange(
        self, engine: Engine, exchange: _Exchange, timeout: float | None = None
    ) -> Reply:
        """Send the request, following redirects if asked; return the unread reply.

        ``timeout``: the seconds left for the first hop, when the engine
        enforces the deadline (each later hop gets what is left then).
        """
        reply = await engine.send(
            exchange.method,
            exchange.url,
            exchange.headers,
            exchange.body,
            exchange.origin,
            timeout,
        )
        if not exchange.follow:
            return reply
        first_method, first_url, first_origin = exchange.method, exchange.url, exchange.origin
        hops = 0
        call = exchange.call
        while reply.status_code in REDIRECT_STATUSES and (location := reply.location()) is not None:
            if call is not None and self.enable_telemetry:
                exchange.report_reply(reply)  # the hop that ended: a span of its own
            try:
                content = await reply.read(self._max_response_size)
            finally:
                await reply.aclose()
            hops += 1
            if hops > self._max_redirects:
                raise errors.ProtocolError(
                    f"{first_method} {redact_url(first_url)}: more than "
                    f"{self._max_redirects} redirects (a redirect loop?); fix the server's "
                    "Location or raise max_redirects"
                )
            self._redirect(exchange, reply, content, location, first_origin)
            exchange.userinfo = False  # credentials are never taken to another hop's URL
            exchange.hop = hops
            if call is not None and self.enable_telemetry:
                self._next_hop(exchange, call)
            timeout = self._time_left(exchange)
            reply = await engine.send(
                exchange.method,
                exchange.url,
                exchange.headers,
                exchange.body,
                exchange.origin,
                timeout,
            )
        return reply

    def _next_hop(self, exchange: _Exchange, call: Call[Any]) -> None:
        """Start the next hop's span; its trace context replaces the one the plugins added."""
        extra = call.next_hop()
        if not extra:
            return
        added = exchange.traced
        kept = [(n, v) for n, v in exchange.headers if n.lower() not in added]
        exchange.headers, exchange.traced = _traced(extra, kept)

    def _redirect(
        self,
        exchange: _Exchange,
        reply: Reply,
        content: bytes,
        location: str,
        first_origin: Origin,
    ) -> None:
        """Turn ``exchange`` into the next hop, keeping credentials within the first origin.

        Raises:
            HTTPStatusError: For a redirect that would send again a body that
                can be sent once only (307, 308: the method and body are kept).
        """
        status = reply.status_code
        method, url = redirect(exchange.method, exchange.url, status, location)
        origin = origin_of(urlsplit(url))
        drop = _REDIRECT_DROP
        cross_origin = origin != first_origin
        if cross_origin:
            drop = drop | self._cross_origin_drop
        if method != exchange.method and method == "GET":
            drop = drop | _BODY_HEADERS
            exchange.body = None
        elif exchange.body is not None and not isinstance(exchange.body, bytes):
            response = self._response(reply, content, exchange)
            raise errors.status_error_class(status)(
                f"{exchange.method} {redact_url(exchange.url)} -> {status} "
                f"{reply.reason_phrase}: the server redirected to {redact_url(location)}, "
                "but the request's body is an async iterable, which cannot be sent twice: "
                "send the body as bytes to follow this redirect",
                status_code=status,
                response=response,
                retryable=False,
            )
        exchange.headers = [
            (n, v)
            for n, v in exchange.headers
            if n.lower() not in drop and not (cross_origin and is_secret_name(n))
        ]
        exchange.method, exchange.url, exchange.origin = method, url, origin

    def _time_left(self, exchange: _Exchange) -> float | None:
        """Seconds left before the deadline the engine enforces (``None``: it enforces none).

        Raises:
            TimeoutError: When none is left.
        """
        if exchange.timeout is None:
            return None
        left = exchange.deadline - time.monotonic()
        if left <= 0:
            raise self._deadline_error(exchange)
        return left

    def _deadline_error(self, exchange: _Exchange) -> errors.TimeoutError:
        """The error for a request its call's deadline cut short, as the client words it."""
        timeout = exchange.timeout
        error = errors.TimeoutError(
            f"request timed out after {timeout:g} s; pass a larger timeout=... or set "
            "config={'timeout': ...}",
            timeout=timeout,
        )
        # The server may have acted on it: retry only what may be repeated.
        error.retryable = exchange.replayable()
        if exchange.spent():
            _not_resent(error)
        return error

    def _too_large(self, exc: ReplyTooLarge, exchange: _Exchange) -> errors.TransportError:
        """The error for a reply that went past a limit (its connection is closed)."""
        where = f"{exchange.method} {redact_url(exchange.url)}"
        if isinstance(exc, BodyTooLarge):
            return errors.ResponseTooLargeError(
                f"{where}: the response body is larger than max_response_size={exc.limit} "
                f"bytes{_in_units(exc.limit)} (counted after decompression), so it was not "
                "read to the end. Raise the limit with config={'max_response_size': ...} "
                "(or the transport option max_response_size=..., or the environment "
                "variable PYNECTOR_MAX_RESPONSE_SIZE), None for no limit, or read the body "
                "chunk by chunk with stream()",
                limit=exc.limit,
            )
        return errors.ProtocolError(
            f"{where}: the server sent an invalid HTTP reply (its header lines are larger "
            f"than {MAX_HEAD_SIZE} bytes, the limit of both engines)"
        )

    def _secrets_of(self, exchange: _Exchange) -> set[str]:
        """The secrets a message about this request must not show."""
        found = self._secrets | secret_values(exchange.headers) | query_secrets(exchange.url)
        if self._trust_env and not self._proxies:
            # Credentials of a proxy from the environment (HTTPS_PROXY=http://u:pw@...).
            for name in _PROXY_VARIABLES:
                for value in (os.environ.get(name), os.environ.get(name.upper())):
                    if value and "@" in value:
                        found |= query_secrets(value if "://" in value else f"http://{value}")
        return found

    def _failure(
        self, engine: Engine, exc: BaseException, exchange: _Exchange
    ) -> errors.PynectorError:
        secrets = self._secrets_of(exchange)
        engine.hide(exc, secrets)  # it becomes the __cause__: tracebacks show its text
        mistake = _caller_mistake(exc)
        if mistake is not None:
            # The body iterator (or another piece of request data) failed inside
            # the engine, which reports it as a broken connection.
            return errors.ConfigurationError(str(mistake))
        if exchange.timeout is not None and engine.deadline_expired(exc, exchange.deadline):
            return self._deadline_error(exchange)
        spent = exchange.spent()
        error = failure(
            engine.classify(exc),
            exc,
            method=exchange.method,
            url=exchange.url,
            # A spent body, not the method, is then why it is not retried.
            replayable=spent or exchange.replayable(),
            secrets=secrets,
        )
        if spent:
            _not_resent(error)
        return error

    def _reason(self, reply: Reply, exchange: _Exchange) -> str:
        """The reply's reason phrase; one of the server's own words is scrubbed of secrets."""
        reason = reply.reason_phrase
        if reason and reason != _STANDARD_REASONS.get(reply.status_code):
            # A server may echo credentials there; the repr of a Response shows it.
            reason = scrub(reason, self._secrets_of(exchange))
        return reason

    def _response(self, reply: Reply, content: bytes, exchange: _Exchange) -> Response:
        return Response._from_engine(
            reply.status_code,
            content,
            self._reason(reply, exchange),
            reply.http_version,
            exchange.method,
            reply,
        )

    def _status_error(self, response: Response, exchange: _Exchange) -> errors.HTTPStatusError:
        spent = exchange.spent()
        error = status_error(
            response,
            method=exchange.method,
            replayable=spent or exchange.replayable(),
            secrets=self._secrets_of(exchange),
        )
        if spent:
            _not_resent(error)
        return error

    def replayable(self, call: Call[HTTPRequest]) -> bool:
        """Whether the call's request may be sent again when its outcome is unknown.

        The client asks this when its own deadline cut a request short: the
        server may already have acted on it. True for idempotent methods, for a
        request with an ``Idempotency-Key`` header, and when ``idempotent=True``
        was passed; ``idempotent=False`` forbids it for any method. Never for
        a body given as an async iterable, which can be sent once only.
        """
        data: Any = call.data
        if not isinstance(data, Mapping) or is_streamed(data.get("content")):
            return False
        idempotent = call.options.get("idempotent")
        if isinstance(idempotent, bool):
            return idempotent
        method = data.get("method")
        method = ("POST" if has_body(data) else "GET") if method is None else str(method).upper()
        headers = data.get("headers") or {}
        keyed = isinstance(headers, Mapping) and any(
            str(name).lower() == "idempotency-key" for name in headers
        )
        return method in IDEMPOTENT_METHODS or keyed

    def limit_key(self, call: Call[HTTPRequest]) -> str | None:
        """The origin the call's request goes to, ``scheme://host[:port]``.

        What a rate limiter or circuit breaker groups requests under: never a
        path, query or credentials; the port only when it is not the scheme's
        default. ``None`` for request data that names no valid target.
        """
        if call.limit_key is not None:
            return call.limit_key
        data: Any = call.data
        try:
            _url, origin, _credentials = self._target(data if isinstance(data, Mapping) else {})
        except errors.ConfigurationError:
            return None
        return self._origin_key(origin)

    def _origin_key(self, origin: Origin) -> str:
        key = self._origin_keys.get(origin)
        if key is None:
            if len(self._origin_keys) >= 256:
                self._origin_keys.clear()
            key = self._origin_keys[origin] = origin_key(origin)
        return key

    def validate(self, data: Any, **options: Any) -> None:
        """Check a request as :meth:`request` would, without sending anything.

        Needs no connection and no event loop; ``pynector batch --dry-run`` calls
        it for every line.

        Raises:
            ConfigurationError: For data or options that :meth:`request` would
                reject (an unknown key, a ``path`` without ``base_url``, ...).
        """
        self._prepare(data, options)

    async def request(self, data: HTTPRequest, **options: Any) -> Response:
        """Send one request and return the complete response.

        For using the transport without a client: the same as the client's
        :meth:`handle_request` with a call of its own (no deadline; the
        installed plugins add their headers). Safe to call concurrently:
        every call shares the transport's pool.

        Args:
            data: The request (:class:`HTTPRequest`): ``path`` (relative to
                ``base_url``) or ``url``, ``method`` (default ``GET``, or
                ``POST`` when there is a body), ``params``, ``headers``, and at
                most one body: ``json``, ``data`` (form fields, optionally with
                ``files``) or ``content`` (bytes, str or an async iterable,
                which is sent once: no error of the call is then retryable
                once it has been read).
            **options: ``follow_redirects`` (overrides the transport's) and
                ``idempotent`` (``True`` lets the client retry a POST/PATCH
                whose outcome is unknown; ``False`` forbids it for any method).

        Returns:
            The :class:`Response`, when its status is 2xx.

        Raises:
            HTTPStatusError: For any other status (a subclass chosen by status).
            ResponseTooLargeError: When the body passes ``max_response_size``.
            ConnectionError: When no connection could be made or it broke.
            TimeoutError: When one of the transport's own timeouts expired.
            ProtocolError: When the server's reply is not valid HTTP (or its header
                lines pass 64 KiB).
            ConfigurationError: For invalid request data or options, or
                ``engine="aiohttp"`` outside asyncio.
        """
        call = Call.standalone(data, options, transport=self, plugins=installed_plugins())
        return await self.handle_request(call)

    async def handle_request(self, call: Call[HTTPRequest]) -> Response:
        """Send ``call.data`` with ``call.options``; return the complete response.

        What the client calls for every attempt; :meth:`request` is the same
        for direct use. Reports on ``call`` the URL sent (the last hop's), the
        server, the status, the headers both ways, the span name and the HTTP
        span attributes, also when the request fails. When
        :attr:`handles_deadline` is true the engine gets ``call.remaining()``
        for the whole request (waiting for a pooled connection, connecting,
        every redirect, reading the body).

        Raises:
            TimeoutError: When ``call.deadline`` passed (``retryable`` only if
                :meth:`replayable`), and the errors of :meth:`request`.
        """
        engine = self._engine or self._open()
        data: Any = call.data
        exchange = self._prepare(data, call.options, call)
        origin = exchange.origin
        call.limit_key = (
            self._base_key
            if origin is self._base_origin
            else self._origin_keys.get(origin) or self._origin_key(origin)
        )
        # A try rather than ``with _EngineErrors(...)``: nothing to build or
        # enter on the way through (this is the hot path).
        try:
            timeout = None
            deadline = call.deadline
            if deadline is not None and engine.native_deadline:
                exchange.timeout = call.timeout
                exchange.deadline = deadline
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise self._deadline_error(exchange)
            # Awaited directly when no redirect is followed: one coroutine less
            # on every suspension of the request.
            reply = await (
                self._exchange(engine, exchange, timeout)
                if exchange.follow
                else engine.send(
                    exchange.method,
                    exchange.url,
                    exchange.headers,
                    exchange.body,
                    exchange.origin,
                    timeout,
                )
            )
            # Reported here, once the last hop answered (a failure before: below).
            if call.observed:
                report_reply(
                    call,
                    exchange.method,
                    exchange.url,
                    exchange.origin,
                    exchange.userinfo,
                    reply,
                    exchange.hop,
                )
            else:
                report_outcome(call, exchange.url, origin, reply)
            try:
                content = await reply.read(self._max_response_size)
            except BaseException:
                await reply.aclose()
                raise
        except BaseException as exc:
            self._translate(exc, engine, exchange, data)
            raise
        status = reply.status_code
        reason = reply.reason_phrase
        if reason and reason != _STANDARD_REASONS.get(status):
            reason = self._reason(reply, exchange)
        response = Response._from_engine(
            status, content, reason, reply.http_version, exchange.method, reply
        )
        if not 200 <= status < 300:
            raise self._status_error(response, exchange)
        return response

    def _translate(
        self, exc: BaseException, engine: Engine, exchange: _Exchange, data: Any
    ) -> None:
        """Raise pynector's error for what ``engine`` raised; return for what passes unchanged.

        Around each call into an engine (sending a request and following its
        redirects, reading a body, reading the next chunk of a stream), as
        httpx wraps every call into httpcore in ``map_httpcore_exceptions``:

        * pynector's own errors pass unchanged;
        * a reply past a limit (``ReplyTooLarge``) becomes ``ResponseTooLargeError``
          or ``ProtocolError`` (the engine's exception is not chained: it says no more);
        * one of the engine's failures becomes the error its kind calls for
          (:func:`pynector_http._errors.failure`), with its text cleaned of secrets,
          chained as ``__cause__``;
        * a ``UnicodeError`` (the engine could not encode a URL or a header) is
          the caller's ``ConfigurationError``;
        * anything else (a cancellation, a bug) propagates unchanged.
        """
        exchange.report_failure()
        if isinstance(exc, errors.PynectorError):
            return
        if isinstance(exc, ReplyTooLarge):
            raise self._too_large(exc, exchange) from None
        if isinstance(exc, engine.failures):
            raise self._failure(engine, exc, exchange) from exc
        if isinstance(exc, UnicodeError):
            raise unusable_data(exc, data) from exc

    def stream(self, data: HTTPRequest, **options: Any) -> _StreamContext:
        """Open a response whose body is read chunk by chunk.

        ``async with transport.stream(data) as response: async for chunk in
        response: ...``. The status and headers are checked on entry (a non-2xx
        status raises the same errors as :meth:`request`, with its body read);
        leaving the block, even early, closes the response and frees its
        connection. For direct use: the client calls :meth:`handle_stream`.

        Args:
            data: The request, as for :meth:`request`.
            **options: As for :meth:`request`.

        Returns:
            An async context manager yielding a :class:`ResponseStream`.
        """
        call = Call.standalone(
            data, options, transport=self, streaming=True, plugins=installed_plugins()
        )
        return _StreamContext(self, call)

    def handle_stream(self, call: Call[HTTPRequest]) -> _StreamContext:
        """Open the call's response for reading chunk by chunk, as :meth:`stream` does.

        Reports on ``call`` what :meth:`handle_request` reports. The client
        bounds the whole stream with its own deadline.
        """
        return _StreamContext(self, call)


def _caller_mistake(exc: BaseException) -> errors.ConfigurationError | None:
    """A ``ConfigurationError`` raised by request data somewhere in ``exc``'s chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, errors.ConfigurationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _EngineErrors:
    """``with _EngineErrors(...):`` around engine calls (:meth:`HTTPTransport._translate`)."""

    __slots__ = ("_data", "_engine", "_exchange", "_transport")

    def __init__(
        self, transport: HTTPTransport, engine: Engine, exchange: _Exchange, data: Any
    ) -> None:
        self._transport = transport
        self._engine = engine
        self._exchange = exchange
        self._data = data

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._transport._translate(exc, self._engine, self._exchange, self._data)


class _Chunks:
    """The body chunks of a streamed response, with engine errors translated."""

    __slots__ = ("_errors", "_iterator")

    def __init__(self, iterator: AsyncIterator[bytes], engine_errors: _EngineErrors) -> None:
        self._iterator = iterator
        self._errors = engine_errors

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        with self._errors:
            return await self._iterator.__anext__()


class _StreamContext:
    """``async with transport.stream(data) as response``: opens and always closes it."""

    __slots__ = ("_call", "_iterator", "_reply", "_stream", "_transport")

    def __init__(self, transport: HTTPTransport, call: Call[HTTPRequest]) -> None:
        self._transport = transport
        self._call = call
        self._reply: Reply | None = None
        self._iterator: AsyncIterator[bytes] | None = None
        self._stream: ResponseStream | None = None

    async def __aenter__(self) -> ResponseStream:
        transport = self._transport
        call = self._call
        engine = transport._engine or transport._open()
        data: Any = call.data
        exchange = transport._prepare(data, call.options, call)
        call.limit_key = transport._origin_key(exchange.origin)
        engine_errors = _EngineErrors(transport, engine, exchange, data)
        with engine_errors:
            reply = await transport._exchange(engine, exchange)
        exchange.report_reply(reply)
        if not 200 <= reply.status_code < 300:
            try:
                with engine_errors:
                    content = await reply.read(transport._max_response_size)
            finally:
                await reply.aclose()
            raise transport._status_error(transport._response(reply, content, exchange), exchange)
        self._reply = reply
        self._iterator = reply.chunks()
        url = reply.url
        self._stream = ResponseStream(
            reply.status_code,
            chunks=_Chunks(self._iterator, engine_errors),
            aclose=self._close,
            headers=reply.headers(),
            url=url,
            request=Request(exchange.method, url, reply.sent_headers()),
            reason_phrase=transport._reason(reply, exchange),
            http_version=reply.http_version,
        )
        return self._stream

    async def _close(self) -> None:
        reply, self._reply = self._reply, None
        iterator, self._iterator = self._iterator, None
        if reply is not None:
            await reply.aclose(iterator)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()
