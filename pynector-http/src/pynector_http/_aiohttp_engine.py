"""The aiohttp engine: asyncio only, several times less CPU per request than httpx2.

Imported only when a transport picks it. One ``aiohttp.ClientSession`` per
proxy route (direct included), each with a pool of ``max_connections``, as
httpx2 has one pool per mount; the cookie jar is shared. Redirects, headers,
bodies and errors are the transport's: this module only sends one request and
says what kind of failure each aiohttp exception is.

Two private aiohttp APIs are used. ``TCPConnector._get(key, traces)`` and
the idle pool ``_conns`` (key -> deque of ``(protocol, released_at)``) drop a
pooled connection that the server closed while it was idle (read through the
socket descriptor of asyncio's selector transports, ``_sock_fd``, when there
is one). ``ClientSession._request``, the coroutine that ``session.request()``
wraps, is called directly: one wrapper less per request. Each is checked when
a pool opens (the signature) and the pool's shape is guarded while in use: if
aiohttp changes them, the engine falls back to the public API (or loses the
idle check), and ``tests/http/test_dependencies.py`` says which API changed.
The User-Agent goes among ``ClientRequest.DEFAULT_HEADERS`` (of a subclass
passed as the session's ``request_class``), not in the session's default
headers, which aiohttp would merge into every request.
"""

from __future__ import annotations

import base64
import inspect
import logging
import math
import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import anyio
from aiohttp.http_exceptions import ContentEncodingError, DecompressSizeError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pynector.redact import redact_url

from . import _errors as kinds
from ._body import Body
from ._engine import MAX_HEAD_SIZE, BodyTooLarge, HeadTooLarge, Settings, head_size
from ._headers import Headers
from ._urls import Origin

if TYPE_CHECKING:
    from ._patterns import ProxyPattern

__all__ = ["AiohttpEngine", "pool_hook_available", "request_coroutine_available"]

# aiohttp adds "Content-Type: application/octet-stream" to a body or a
# POST/PUT/PATCH without one; httpx2 sends none, and so do we.
_NO_CONTENT_TYPE = ("Content-Type",)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_HTTP_11 = aiohttp.HttpVersion11
# The same reply-head limits as the httpx2 engine: one line may be as long as the
# whole head (aiohttp's default is 8190 bytes per line); the total is checked
# after the head arrived. The count of lines is bounded by the total only
# (aiohttp >= 3.13.4 has a count limit of its own, 128 by default).
_HEAD_LIMITS: dict[str, Any] = {"max_line_size": MAX_HEAD_SIZE, "max_field_size": MAX_HEAD_SIZE}
if "max_headers" in inspect.signature(aiohttp.ClientSession).parameters:
    _HEAD_LIMITS["max_headers"] = MAX_HEAD_SIZE // 4  # the shortest header line: "a:" CRLF
_log = logging.getLogger("pynector.http")
_REQUEST_KEYWORDS = frozenset(
    {
        "headers",
        "data",
        "allow_redirects",
        "proxy",
        "proxy_headers",
        "skip_auto_headers",
        "timeout",
    }
)


class _Route(NamedTuple):
    """How requests to one origin go out: the session and the proxy, if any."""

    session: aiohttp.ClientSession
    proxy: str | None
    # For a plain-HTTP request through a proxy, the request itself goes to the
    # proxy, so the proxy's credentials ride on it (as aiohttp itself does).
    request_headers: tuple[tuple[str, str], ...]
    # For HTTPS through a proxy, they go on the CONNECT only.
    proxy_headers: dict[str, str] | None


async def _settle() -> None:
    """Let the event loop run once, even in a cancelled scope.

    aiohttp closes a connection by scheduling the socket's closing for the
    next loop iteration; after a failure or a cancellation the connection is
    then really closed when the call returns, as with httpx2.
    """
    with anyio.CancelScope(shield=True):
        await anyio.lowlevel.checkpoint()


def pool_hook_available() -> bool:
    """Whether aiohttp's ``TCPConnector._get`` is the coroutine ``(self, key, traces)`` we wrap."""
    get = getattr(aiohttp.TCPConnector, "_get", None)
    if get is None or not inspect.iscoroutinefunction(get):
        return False
    try:
        parameters = list(inspect.signature(get).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["self", "key", "traces"]


_aiohttp_get = aiohttp.TCPConnector._get


def _with_user_agent(user_agent: str) -> type[aiohttp.ClientRequest] | None:
    """aiohttp's ``ClientRequest`` whose default headers include ``user_agent``.

    ``None`` when aiohttp has no ``ClientRequest.DEFAULT_HEADERS`` mapping.
    """
    defaults = getattr(aiohttp.ClientRequest, "DEFAULT_HEADERS", None)
    if not isinstance(defaults, dict):
        return None
    return type(
        "ClientRequest",
        (aiohttp.ClientRequest,),
        {"DEFAULT_HEADERS": {**defaults, "User-Agent": user_agent}, "__module__": __name__},
    )


def request_coroutine_available() -> bool:
    """Whether ``ClientSession._request`` is the coroutine ``session.request()`` wraps.

    Checked for the keywords the engine passes; without it the engine calls
    ``session.request()``, which costs a wrapper per request.
    """
    request = getattr(aiohttp.ClientSession, "_request", None)
    if request is None or not inspect.iscoroutinefunction(request):
        return False
    try:
        parameters = inspect.signature(request).parameters
    except (TypeError, ValueError):
        return False
    return parameters.keys() >= _REQUEST_KEYWORDS


class _Connector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that never reuses a connection the server closed while idle."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.idle_check = isinstance(getattr(self, "_conns", None), dict)

    # aiohttp's own hook for taking a pooled connection (see the module docstring).
    # Not a coroutine itself: it hands aiohttp's back, one frame less per request.
    def _get(self, key: Any, traces: Any) -> Any:
        """Close the pooled connections the server hung up on while idle; then aiohttp's ``_get``.

        aiohttp learns that a server closed an idle connection only when the
        event loop next polls; a request sent on it before that fails. httpx2
        checks a pooled connection's socket before reusing it, and so do we:
        aiohttp reuses from the left, so the connections are checked from
        there up to the first healthy one (one ``select`` call, usually); a
        closed one is skipped by aiohttp.
        """
        if self.idle_check:
            try:
                for protocol, _ in self._conns.get(key) or ():
                    transport = protocol.transport
                    if transport is None or transport.is_closing():
                        continue  # aiohttp skips it
                    # asyncio's selector transports keep the descriptor (two calls less
                    # than the socket object); any other transport: its socket.
                    sock = getattr(transport, "_sock_fd", None)
                    if sock is None:
                        sock = transport.get_extra_info("socket")
                    if sock is None or not select.select((sock,), (), (), 0)[0]:
                        break  # idle and quiet: this is the one aiohttp reuses
                    protocol.close()  # readable while idle: the server closed it (or broke HTTP)
            except (AttributeError, TypeError, ValueError) as exc:
                # aiohttp changed the pool's shape: keep sending, without the check.
                self.idle_check = False
                _log.warning(
                    "aiohttp %s changed its connection pool (%s: %s); pynector-http no "
                    "longer checks pooled connections for a server-side close",
                    aiohttp.__version__,
                    type(exc).__name__,
                    exc,
                )
        return _aiohttp_get(self, key, traces)  # no super object per request


def _close_connectors(connectors: list[aiohttp.TCPConnector]) -> None:
    """Close every connection at once, without waiting (for an engine never closed).

    What aiohttp's own finalizer does before it warns about the connector
    (``_close()``, the synchronous part of ``close()``): here the owner of the
    transport (the ``Pynector`` client) is the one that warns.
    """
    for connector in connectors:
        close = getattr(connector, "_close", None)
        if close is not None and not connector.closed:
            close()


def _address(name: object) -> tuple[str, int] | None:
    """``(host, port)`` of a socket address (IPv4 or IPv6 tuple), else ``None``."""
    if isinstance(name, tuple) and len(name) >= 2:
        host, port = name[0], name[1]
        if isinstance(host, str) and isinstance(port, int):
            return host, port
    return None


class _Reply:
    """An aiohttp response whose body has not been read."""

    __slots__ = (
        "_complete",
        "_finished",
        "_raw",
        "_raw_headers",
        "_started",
        "http_version",
        "reason_phrase",
        "status_code",
    )

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        started: float,
        raw_headers: Sequence[tuple[bytes, bytes]],
    ) -> None:
        self._raw = raw
        self._raw_headers = raw_headers  # a property of aiohttp's: read once
        self._started = started
        self._finished = started
        self._complete = False
        self.status_code = raw.status
        self.reason_phrase = raw.reason or ""
        version = raw.version
        self.http_version = (
            "HTTP/1.1"
            if version is _HTTP_11 or version == _HTTP_11 or version is None  # the parser's own
            else f"HTTP/{version.major}.{version.minor}"
        )

    @property
    def url(self) -> str:
        return str(self._raw.url)

    def headers(self) -> Headers:
        return Headers.from_raw(self._raw_headers, self._raw.headers)

    def header_map(self) -> Mapping[str, str]:
        return self._raw.headers  # aiohttp's own CIMultiDictProxy

    def sent_headers(self) -> Headers:
        return Headers.from_loader(self._sent)

    def peer(self) -> tuple[str, int] | None:
        # The connection goes back to the pool as soon as a small body has
        # arrived; the protocol the response read from keeps its transport.
        connection = self._raw.connection
        protocol = (
            getattr(self._raw, "_protocol", None) if connection is None else connection.protocol
        )
        transport = getattr(protocol, "transport", None)
        try:
            return _address(None if transport is None else transport.get_extra_info("peername"))
        except OSError:  # the connection is closed already
            return None

    def _sent(self) -> Iterable[tuple[str, str]]:
        return self._raw.request_info.headers.items()

    def location(self) -> str | None:
        return self._raw.headers.get("Location")

    def elapsed(self) -> timedelta:
        return timedelta(seconds=self._finished - self._started)

    async def read(self, limit: int | None) -> bytes:
        raw = self._raw
        content = raw.content
        if (
            limit is None
            or (content.is_eof() and content.total_bytes <= limit)  # all of it is here
            or (
                (length := raw.content_length) is not None
                and length <= limit
                and "Content-Encoding" not in raw.headers
            )
        ):
            body = await raw.read()  # the (decoded) size is known and allowed: no counting
        else:
            body = await self._read_at_most(limit)
        self._finished = time.perf_counter()
        self._complete = True
        return body

    async def _read_at_most(self, limit: int) -> bytes:
        """Read the body as it arrives (decoded), giving up once it passes ``limit`` bytes."""
        raw = self._raw
        content = raw.content
        parts: list[bytes] = []
        size = 0
        while chunk := await content.readany():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        await raw.read()  # at the end of the body: lets aiohttp release the connection
        return b"".join(parts)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._raw.content.iter_any()

    async def aclose(self, chunks: AsyncIterator[bytes] | None = None) -> None:
        # A body read to the end has already given its connection back to the
        # pool; one left unread is closed with its connection.
        self._raw.close()
        if not self._complete:
            await _settle()


def _basic(userinfo: str) -> str:
    username, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(username)}:{unquote(password)}".encode()).decode()
    return f"Basic {token}"


def _proxy_patterns(settings: Settings) -> list[tuple[ProxyPattern, str | None]]:
    """The proxy mounts in httpx2's matching order, so both engines route alike."""
    from ._patterns import environment_has_proxies, environment_proxies, route_table

    mounts = settings.proxies
    if not mounts and settings.trust_env and environment_has_proxies():
        mounts = environment_proxies()
    return route_table(mounts) if mounts else []


class AiohttpEngine:
    """aiohttp sessions, one per proxy route; redirects left to the transport."""

    name = "aiohttp"
    native_deadline = True
    # ServerTimeoutError and aiohttp's own timeouts are TimeoutError, a broken
    # socket may surface as a plain OSError.
    failures: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)

    def __init__(self, settings: Settings, user_agent: str) -> None:
        self._settings = settings
        self._user_agent = f"{user_agent} aiohttp/{aiohttp.__version__}"
        # The User-Agent among aiohttp's own default headers (its request class
        # adds them without merging a session's defaults into every request);
        # sent by the session when that class attribute is not there.
        self._request_class = _with_user_agent(self._user_agent)
        self._default_headers = (
            None if self._request_class is not None else {"User-Agent": self._user_agent}
        )
        timeouts = settings.timeouts
        # aiohttp's "connect" covers waiting for a free connection and opening a
        # new one; "sock_connect" the TCP connect alone. So "pool" bounds both.
        pool = timeouts.pool
        # No rounding up to whole seconds (aiohttp's default above 5 s): a
        # deadline fires when it is due.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=pool,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
            ceil_threshold=math.inf,
        )
        # The same timeouts plus a total, by the whole milliseconds left of a deadline.
        self._totals: dict[int, aiohttp.ClientTimeout] = {}
        self._jar = aiohttp.CookieJar(unsafe=True)  # as httpx2: cookies from IP hosts too
        self._sessions: dict[str | None, aiohttp.ClientSession] = {}
        # Closed when the engine is collected without aclose(): the sockets go,
        # and aiohttp does not warn about its session and connector internals.
        self._connectors: list[aiohttp.TCPConnector] = []
        weakref.finalize(self, _close_connectors, self._connectors)
        self._routes: dict[Origin, _Route] = {}
        self._last_origin: Origin | None = None
        self._last_route: _Route | None = None
        self._patterns: list[tuple[ProxyPattern, str | None]] | None = None
        self._connector_class = _Connector if pool_hook_available() else aiohttp.TCPConnector
        # aiohttp's coroutine behind session.request(): no wrapper to build and await.
        self._request: Callable[..., Awaitable[aiohttp.ClientResponse]] = (
            aiohttp.ClientSession._request
            if request_coroutine_available()
            else aiohttp.ClientSession.request
        )
        self._direct = self._session(None)

    @property
    def idle_check(self) -> bool:
        """Whether pooled connections are checked for a server-side close before reuse."""
        connector = self._direct.connector
        return isinstance(connector, _Connector) and connector.idle_check

    def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        session = self._sessions.get(proxy)
        if session is None:
            limit = self._settings.max_connections or 0  # aiohttp: 0 is no limit
            connector = self._connector_class(
                limit=limit,
                limit_per_host=0,
                ssl=self._settings.ssl_context,
                keepalive_timeout=5.0,  # as httpx2's keep-alive expiry
            )
            self._connectors.append(connector)
            session = self._sessions[proxy] = aiohttp.ClientSession(
                connector=connector,
                request_class=self._request_class or aiohttp.ClientRequest,
                headers=self._default_headers,
                timeout=self._timeout,
                cookie_jar=self._jar,
                auto_decompress=True,
                **_HEAD_LIMITS,
                trust_env=False,  # proxies are routed here; aiohttp's would also read .netrc
            )
        return session

    def _route(self, origin: Origin) -> _Route:
        patterns = self._patterns
        if patterns is None:
            patterns = self._patterns = _proxy_patterns(self._settings)
        proxy = None
        for pattern, target in patterns:
            if pattern.matches(origin.scheme, origin.host, origin.port):
                proxy = target
                break
        if proxy is None:
            route = _Route(self._direct, None, (), None)
        else:
            parts = urlsplit(proxy)
            credentials = None
            if "@" in parts.netloc:
                userinfo, _, hostport = parts.netloc.rpartition("@")
                credentials = _basic(userinfo)
                proxy = urlunsplit((parts.scheme, hostport, parts.path, "", ""))
            auth = () if credentials is None else (("Proxy-Authorization", credentials),)
            if origin.scheme == "https":
                route = _Route(self._session(proxy), proxy, (), dict(auth) or None)
            else:
                route = _Route(self._session(proxy), proxy, auth, None)
        self._routes[origin] = route
        return route

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: Body,
        origin: Origin,
        timeout: float | None = None,
    ) -> _Reply:
        # The same origin as the last request (the base_url's, usually): no hashing.
        route = self._last_route
        if origin is not self._last_origin or route is None:
            route = self._routes.get(origin) or self._route(origin)
            self._last_origin, self._last_route = origin, route
        limits = self._timeout
        if timeout is not None:
            limits = self._totals.get(int(timeout * 1000) or 1) or self._total(timeout)
        if route.request_headers:
            headers = [*headers, *route.request_headers]
        skip: Iterable[str] | None = None
        if (body is not None or method in _BODY_METHODS) and not any(
            name.lower() == "content-type" for name, _ in headers
        ):
            skip, headers = _NO_CONTENT_TYPE, self._with_agent(headers)
        request = self._request
        started = time.perf_counter()
        try:
            # Only the arguments that differ from aiohttp's defaults: each
            # keyword costs, on every request.
            if body is None and skip is None and route.proxy is None:
                raw = await request(
                    route.session,
                    method,
                    url,
                    headers=headers or None,
                    allow_redirects=False,
                    timeout=limits,
                )
            else:
                raw = await request(
                    route.session,
                    method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    proxy=route.proxy,
                    proxy_headers=route.proxy_headers,
                    skip_auto_headers=skip,
                    timeout=limits,
                )
        except BaseException:
            await _settle()  # aiohttp has closed the connection: let the socket go now
            raise
        raw_headers = raw.raw_headers
        if head_size(raw_headers) > MAX_HEAD_SIZE:
            raw.close()
            await _settle()
            raise HeadTooLarge(MAX_HEAD_SIZE)
        return _Reply(raw, started, raw_headers)

    def _with_agent(self, headers: Sequence[tuple[str, str]]) -> Sequence[tuple[str, str]]:
        """``headers`` with the User-Agent, for a request with headers aiohttp skips.

        With headers to skip aiohttp sets its own User-Agent over a default
        one: ours goes with the request's (unless it has its own).
        """
        if self._request_class is None or any(name.lower() == "user-agent" for name, _ in headers):
            return headers
        return [*headers, ("User-Agent", self._user_agent)]

    def _total(self, seconds: float) -> aiohttp.ClientTimeout:
        """The pool's timeouts plus a total: what is left of the call's deadline.

        Rounded down to whole milliseconds, so the requests started within
        the same millisecond share one ``ClientTimeout``: a deadline fires at
        most 1 ms early, which :meth:`deadline_expired` still recognises.
        """
        key = int(seconds * 1000) or 1  # under a millisecond left: one
        timeout = self._totals.get(key)
        if timeout is None:
            base = self._timeout
            timeout = aiohttp.ClientTimeout(
                total=key / 1000,
                connect=base.connect,
                sock_connect=base.sock_connect,
                sock_read=base.sock_read,
                ceil_threshold=math.inf,
            )
            if len(self._totals) >= 64:
                self._totals.clear()
            self._totals[key] = timeout
        return timeout

    def hide(self, exc: BaseException, secrets: set[str]) -> None:
        # aiohttp's messages quote the request URL (query included) and header
        # lines of a malformed reply, and its response errors carry the
        # request's headers: mask them in the whole chain.
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, aiohttp.ClientResponseError):
                info = current.request_info
                if info is not None:
                    url = URL(redact_url(str(info.real_url)), encoded=True)
                    current.request_info = aiohttp.RequestInfo(
                        url, info.method, CIMultiDictProxy(CIMultiDict()), url
                    )
            current = current.__cause__ or current.__context__
        kinds.hide_in_chain(exc, secrets)

    def deadline_expired(self, exc: BaseException, deadline: float) -> bool:
        # aiohttp's total timeout raises a TimeoutError (a ConnectionTimeoutError
        # while connecting); the time tells it from the per-phase timeouts. The
        # total is rounded down to whole milliseconds (_total): it may fire 1 ms early.
        return isinstance(exc, TimeoutError) and time.monotonic() >= deadline - 0.002

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            return kinds.PROXY
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return kinds.CONNECT_TIMEOUT
        if isinstance(exc, aiohttp.ClientConnectorError):
            return kinds.CONNECT  # refused, DNS, TLS (told apart by the cause), proxy down
        if isinstance(exc, TimeoutError):
            return kinds.READ_TIMEOUT  # sock_read (SocketTimeoutError), aiohttp's other timers
        if isinstance(exc, aiohttp.ClientPayloadError):
            cause = exc.__cause__
            if isinstance(cause, ContentEncodingError | DecompressSizeError):
                return kinds.DECODE
            return kinds.BROKEN
        if isinstance(exc, aiohttp.InvalidURL):
            return kinds.INVALID_URL
        if isinstance(exc, aiohttp.NonHttpUrlClientError):
            return kinds.UNSUPPORTED
        if isinstance(exc, aiohttp.ClientResponseError):
            return kinds.PROTOCOL  # bad status line, oversized headers, too many redirects
        if isinstance(exc, aiohttp.ClientConnectionError | OSError):
            return kinds.BROKEN  # server disconnected, reset, a write that failed
        return kinds.OTHER

    async def aclose(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._routes.clear()
        self._last_origin = self._last_route = None
        for session in sessions:
            await session.close()
