"""The HTTP transport on httpx2: one connection pool shared by concurrent requests."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import anyio
import httpx2

from pynector import errors
from pynector.redact import SENSITIVE_HEADERS, redact_url, secret_values
from pynector.registry import hooks

from ._errors import status_error, translate
from ._headers import Headers
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    bool_option,
    check_base_url,
    check_max_connections,
    check_proxies,
    check_timeout,
    check_verify,
    require_module,
    ssl_context,
)
from ._request import (
    IDEMPOTENT_METHODS,
    check_data_keys,
    check_headers,
    check_options,
    fail,
    request_method,
)
from ._response import Request, Response, ResponseStream
from ._version import __version__

__all__ = ["HTTPTransport"]

_ENGINE_ERRORS = (httpx2.HTTPError, httpx2.InvalidURL, httpx2.StreamError, httpx2.CookieConflict)


class _Default:
    def __repr__(self) -> str:
        return "<10 s to connect, no other limit>"


_DEFAULT_TIMEOUT: Any = _Default()
_USER_AGENT = f"pynector-http/{__version__} httpx2/{httpx2.__version__}"


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class HTTPTransport:
    """The ``http`` transport: requests as dicts, replies as :class:`Response`.

    Registered as ``transport_type="http"``; ``Pynector(transport_type="http",
    base_url=..., ...)`` creates one and passes it these options. One
    connection pool serves every concurrent request of the transport; it is
    opened by :meth:`connect` (or on first use) and closed by
    :meth:`disconnect`. The transport sends each request once: deadlines and
    retries belong to the client, which reads the errors' ``retryable`` and
    ``retry_after``.

    Args:
        base_url: Prefix of every ``path``; its origin is the only one that
            receives the default ``headers``. Credentials in it
            (``https://user:pw@host``) become a Basic ``Authorization`` header.
        headers: Default headers, sent only to ``base_url``'s origin (to every
            URL when there is no ``base_url``) and dropped on a redirect to
            another origin.
        timeout: httpx2's own timeouts: seconds for every phase, ``None`` for
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
        http2: Negotiate HTTP/2 over TLS (needs ``pip install 'pynector-http[http2]'``).
        trust_env: Read ``HTTP(S)_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE``
            from the environment.
        engine: The HTTP engine: ``"httpx2"``, or ``"auto"`` for the best
            one installed (today always httpx2).

    Raises:
        ConfigurationError: For an invalid option, naming it and the fix.
    """

    transport_type = "http"

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
        http2: bool = False,
        trust_env: bool = True,
        engine: str = "httpx2",
    ) -> None:
        if engine not in ("httpx2", "auto"):
            raise errors.ConfigurationError(
                f"engine={engine!r} is not available in pynector-http {__version__}: use "
                "engine='httpx2' (the default) or engine='auto'"
            )
        base = check_base_url(base_url)
        defaults = dict(check_headers({} if headers is None else headers, "headers"))
        if base is not None and base.userinfo:
            if not any(name.lower() == "authorization" for name in defaults):
                defaults["Authorization"] = _basic(base.username, base.password)
            base = base.copy_with(username=None, password=None)
        self._base_url = base
        self._base_origin = None if base is None else base.origin
        self._defaults: dict[str, tuple[str, str]] = {
            name.lower(): (name, value) for name, value in defaults.items()
        }
        self._default_pairs = list(self._defaults.values())
        self._secrets = secret_values(self._default_pairs)
        # Dropped from a redirect that leaves the first request's origin.
        self._cross_origin_drop = SENSITIVE_HEADERS | self._defaults.keys()
        self._timeout = (
            httpx2.Timeout(None, connect=DEFAULT_CONNECT_TIMEOUT)
            if timeout is _DEFAULT_TIMEOUT
            else check_timeout(timeout)
        )
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
        self._max_connections = check_max_connections(max_connections)
        self._http2 = bool_option("http2", http2)
        if http2:
            require_module("h2", "http2=True", "'pynector-http[http2]'")
        self._trust_env = bool_option("trust_env", trust_env)
        self._client: httpx2.AsyncClient | None = None
        self._pending: Response | None = None

    # -- lifecycle ---------------------------------------------------------

    def _open(self) -> httpx2.AsyncClient:
        """Create the connection pool (synchronously, so concurrent first uses share it)."""
        if self._client is not None:
            return self._client
        limits = httpx2.Limits(
            max_connections=self._max_connections,
            max_keepalive_connections=self._max_connections,
        )
        context = ssl_context(self._verify, self._trust_env)
        mounts: dict[str, httpx2.AsyncBaseTransport | None] = {
            pattern: None
            if url is None
            else httpx2.AsyncHTTPTransport(
                verify=context,
                http2=self._http2,
                limits=limits,
                trust_env=self._trust_env,
                proxy=httpx2.Proxy(url),
            )
            for pattern, url in self._proxies.items()
        }
        self._client = httpx2.AsyncClient(
            base_url="" if self._base_url is None else self._base_url,
            headers={"User-Agent": _USER_AGENT},
            timeout=self._timeout,
            follow_redirects=False,
            limits=limits,
            verify=context,
            http2=self._http2,
            mounts=mounts or None,
            trust_env=self._trust_env,
        )
        return self._client

    async def connect(self) -> None:
        """Open the connection pool. Idempotent; requests also open it on first use."""
        self._open()

    async def disconnect(self) -> None:
        """Close the pool and every connection in it. Safe to call twice.

        A request made afterwards opens a new pool.
        """
        client, self._client = self._client, None
        self._pending = None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    async def aclose(self) -> None:
        """Same as :meth:`disconnect`."""
        await self.disconnect()

    async def __aenter__(self) -> HTTPTransport:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    @property
    def base_url(self) -> str | None:
        """The base URL, without credentials (``None`` when not set)."""
        return None if self._base_url is None else redact_url(str(self._base_url))

    def __repr__(self) -> str:
        base = "None" if self._base_url is None else repr(redact_url(str(self._base_url)))
        state = "open" if self._client is not None else "closed"
        return f"<HTTPTransport base_url={base} {state}>"

    # -- the minimal protocol ----------------------------------------------

    async def send(self, data: Any, **options: Any) -> None:
        """Send one request; its :class:`Response` is what :meth:`receive` yields.

        Not for concurrent use (the client serialises send/receive pairs);
        :meth:`request` is the concurrency-safe form.
        """
        self._pending = None
        self._pending = await self.request(data, **options)

    async def receive(self) -> AsyncIterator[Response]:
        """Yield the :class:`Response` to the last :meth:`send`."""
        pending, self._pending = self._pending, None
        if pending is None:
            raise errors.TransportError("receive() was called without a successful send() first")
        yield pending

    # -- requests ------------------------------------------------------------

    def _target(self, data: Mapping[str, Any]) -> tuple[str, bool, tuple[str, str] | None]:
        """Return the URL to request, whether the default headers apply, and URL credentials."""
        path = data.get("path")
        url = data.get("url")
        if path is not None:
            if url is not None:
                fail("the request data has both 'path' and 'url'; give one of them")
            if not isinstance(path, str):
                fail(f"'path' must be a string such as '/users', got {type(path).__name__}")
            if "://" in path or path.startswith("//"):
                fail(
                    f"'path' {redact_url(path)!r} is an absolute URL; 'path' is relative to "
                    "base_url. Use {'url': ...} for an absolute URL"
                )
            if self._base_url is None:
                fail(
                    f"'path' {path!r} needs a base_url: create the transport with "
                    "base_url='https://api.example.com', or pass an absolute {'url': ...}"
                )
            return path, True, None
        if url is None:
            if self._base_url is None:
                fail(
                    "the request data has neither 'path' nor 'url'; e.g. "
                    "{'url': 'https://api.example.com/users'} (or set base_url and use 'path')"
                )
            return "", True, None
        if not isinstance(url, str):
            fail(f"'url' must be a string, got {type(url).__name__}")
        if "://" not in url:
            if self._base_url is None:
                fail(
                    f"'url' {url!r} is relative and the transport has no base_url; pass an "
                    "absolute URL such as 'https://api.example.com/users'"
                )
            return url, True, None
        try:
            parsed = httpx2.URL(url)
        except httpx2.InvalidURL as exc:
            fail(f"'url' {redact_url(url)!r} is not a valid URL ({exc})")
        if parsed.scheme not in ("http", "https") or not parsed.host:
            fail(f"'url' {redact_url(url)!r} must be an http:// or https:// URL")
        credentials = None
        if parsed.userinfo:
            credentials = (parsed.username, parsed.password)
            parsed = parsed.copy_with(username=None, password=None)
            url = str(parsed)
        same = self._base_origin is None or parsed.origin == self._base_origin
        return url, same, credentials

    def _build(
        self, client: httpx2.AsyncClient, data: Any, options: Mapping[str, Any]
    ) -> tuple[httpx2.Request, bool, bool | None]:
        """Validate the request dict and options; return the request to send."""
        follow, idempotent = check_options(options) if options else (None, None)
        data = check_data_keys(data)
        method = request_method(data)
        target, same_origin, credentials = self._target(data)
        own = data.get("headers")
        if own:
            own = check_headers(own)
            merged = dict(self._defaults) if same_origin else {}
            for name, value in own.items():
                merged[name.lower()] = (name, value)
            headers = list(merged.values())
        else:
            headers = self._default_pairs if same_origin else []
        if credentials is not None and not any(n.lower() == "authorization" for n, _ in headers):
            headers = [*headers, ("Authorization", _basic(*credentials))]
        try:
            request = client.build_request(
                method,
                target,
                params=data.get("params"),
                headers=headers,
                json=data.get("json"),
                data=data.get("data"),
                content=data.get("content"),
                files=data.get("files"),
            )
        except (TypeError, ValueError) as exc:
            keys = [key for key in ("params", "json", "data", "content", "files") if key in data]
            raise errors.ConfigurationError(
                f"the request data could not be encoded ({type(exc).__name__}: {exc}); check "
                f"{', '.join(repr(k) for k in keys) or 'the values'}: 'json' must be "
                "JSON-serialisable, 'params' and 'data' dicts of strings or numbers, 'files' "
                "a dict of name -> file or (filename, content[, content_type])"
            ) from exc
        except httpx2.InvalidURL as exc:
            raise errors.ConfigurationError(
                f"the request URL is invalid ({exc}); check 'path' / 'url' and base_url"
            ) from exc
        relay = hooks()
        if relay is not None:
            extra: dict[str, str] = {}
            relay.pynector_headers(headers=extra)
            for name, value in extra.items():
                if name not in request.headers:
                    request.headers[name] = value
        return request, self._follow_redirects if follow is None else follow, idempotent

    def _scope_redirect(self, request: httpx2.Request, origin: httpx2.Origin) -> None:
        """Keep credentials and default headers from leaving the first request's origin."""
        if request.url.userinfo:
            request.url = request.url.copy_with(username=None, password=None)
        if request.url.origin != origin:
            for name in self._cross_origin_drop:
                request.headers.pop(name, None)

    async def _send(
        self, client: httpx2.AsyncClient, request: httpx2.Request, follow: bool
    ) -> httpx2.Response:
        """Send ``request``, following redirects ourselves; return the unread response."""
        response = await client.send(request, stream=True, follow_redirects=False)
        hops = 0
        while follow and (next_request := response.next_request) is not None:
            try:
                await response.aread()
            finally:
                await response.aclose()
            hops += 1
            if hops > self._max_redirects:
                raise errors.ProtocolError(
                    f"{request.method} {redact_url(str(request.url))}: more than "
                    f"{self._max_redirects} redirects (a redirect loop?); fix the server's "
                    "Location or raise max_redirects"
                )
            self._scope_redirect(next_request, request.url.origin)
            response = await client.send(next_request, stream=True, follow_redirects=False)
        return response

    def _secrets_of(self, request: httpx2.Request) -> set[str]:
        return self._secrets | secret_values(request.headers.multi_items())

    def replayable(self, data: Any, **options: Any) -> bool:
        """Whether the request may be sent again when its outcome is unknown.

        The client asks this when its own deadline cut a request short: the
        server may already have acted on it. True for idempotent methods, for a
        request with an ``Idempotency-Key`` header, and when ``idempotent=True``
        was passed; ``idempotent=False`` forbids it for any method.
        """
        idempotent = options.get("idempotent")
        if isinstance(idempotent, bool):
            return idempotent
        if not isinstance(data, Mapping):
            return False
        method = str(data.get("method", "GET")).upper()
        headers = data.get("headers") or {}
        keyed = isinstance(headers, Mapping) and any(
            str(name).lower() == "idempotency-key" for name in headers
        )
        return method in IDEMPOTENT_METHODS or keyed

    def _replayable(self, request: httpx2.Request, idempotent: bool | None) -> bool:
        if idempotent is not None:
            return idempotent
        return request.method in IDEMPOTENT_METHODS or "idempotency-key" in request.headers

    def _engine_error(
        self, exc: Exception, request: httpx2.Request, idempotent: bool | None
    ) -> errors.PynectorError:
        try:
            failed = exc.request  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):
            failed = request
        return translate(
            exc,
            method=request.method,
            url=str(failed.url),
            replayable=self._replayable(request, idempotent),
            secrets=self._secrets_of(request),
        )

    def _status_error(
        self, response: Response, request: httpx2.Request, idempotent: bool | None
    ) -> errors.HTTPStatusError:
        return status_error(
            response,
            method=request.method,
            replayable=self._replayable(request, idempotent),
            secrets=self._secrets_of(request),
        )

    async def request(self, data: Any, **options: Any) -> Response:
        """Send one request and return the complete response.

        Safe to call concurrently: every call shares the transport's pool.

        Args:
            data: The request: ``path`` (relative to ``base_url``) or ``url``,
                ``method`` (default ``GET``), ``params``, ``headers``, and at
                most one body: ``json``, ``data`` (form fields, optionally with
                ``files``) or ``content`` (bytes, str or an async iterable).
            **options: ``follow_redirects`` (overrides the transport's) and
                ``idempotent`` (``True`` lets the client retry a POST/PATCH
                whose outcome is unknown; ``False`` forbids it for any method).

        Returns:
            The :class:`Response`, when its status is 2xx.

        Raises:
            HTTPStatusError: For any other status (a subclass chosen by status).
            ConnectionError: When no connection could be made or it broke.
            TimeoutError: When one of httpx2's own timeouts expired.
            ProtocolError: When the server's reply is not valid HTTP.
            ConfigurationError: For invalid request data or options.
        """
        client = self._client or self._open()
        request, follow, idempotent = self._build(client, data, options)
        try:
            raw = await self._send(client, request, follow)
            try:
                await raw.aread()
            except BaseException:
                await raw.aclose()
                raise
        except _ENGINE_ERRORS as exc:
            raise self._engine_error(exc, request, idempotent) from exc
        response = _convert(raw)
        if not 200 <= response.status_code < 300:
            raise self._status_error(response, request, idempotent)
        return response

    def stream(self, data: Any, **options: Any) -> _StreamContext:
        """Open a response whose body is read chunk by chunk.

        ``async with transport.stream(data) as response: async for chunk in
        response: ...``. The status and headers are checked on entry (a non-2xx
        status raises the same errors as :meth:`request`, with its body read);
        leaving the block, even early, closes the response and frees its
        connection.

        Args:
            data: The request, as for :meth:`request`.
            **options: As for :meth:`request`.

        Returns:
            An async context manager yielding a :class:`ResponseStream`.
        """
        return _StreamContext(self, data, options)


def _convert(raw: httpx2.Response) -> Response:
    """Turn a fully read httpx2 response into pynector-http's own."""
    sent = raw.request
    url = str(sent.url)
    return Response(
        raw.status_code,
        headers=Headers.from_raw(raw.headers.raw),
        content=raw.content,
        url=url,
        request=Request(sent.method, url, Headers.from_raw(sent.headers.raw)),
        elapsed=raw.elapsed,
        reason_phrase=raw.reason_phrase,
        http_version=raw.http_version,
    )


async def _abandon(iterator: AsyncIterator[bytes]) -> None:
    """Finish a body iterator that will not be read to the end.

    httpx2's body iterator is a chain of nested async generators. Closing only
    the outermost one leaves the inner ones suspended for the garbage collector
    (trio warns about each). Cancelling the pending read instead unwinds the
    whole chain through its own cleanup, which also closes the connection; a
    body already complete in the buffer just runs to its end.
    """
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            while True:
                await iterator.__anext__()
        except StopAsyncIteration:
            pass
        except _ENGINE_ERRORS:
            pass  # the connection broke: it is being closed anyway


class _Chunks:
    """The body chunks of a streamed response, with engine errors translated."""

    __slots__ = ("_idempotent", "_iterator", "_request", "_transport")

    def __init__(
        self,
        transport: HTTPTransport,
        iterator: AsyncIterator[bytes],
        request: httpx2.Request,
        idempotent: bool | None,
    ) -> None:
        self._transport = transport
        self._iterator = iterator
        self._request = request
        self._idempotent = idempotent

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._iterator.__anext__()
        except _ENGINE_ERRORS as exc:
            raise self._transport._engine_error(exc, self._request, self._idempotent) from exc


class _StreamContext:
    """``async with transport.stream(data) as response``: opens and always closes it."""

    __slots__ = ("_data", "_iterator", "_options", "_raw", "_stream", "_transport")

    def __init__(self, transport: HTTPTransport, data: Any, options: Mapping[str, Any]) -> None:
        self._transport = transport
        self._data = data
        self._options = options
        self._raw: httpx2.Response | None = None
        self._iterator: Any = None
        self._stream: ResponseStream | None = None

    async def __aenter__(self) -> ResponseStream:
        transport = self._transport
        client = transport._client or transport._open()
        request, follow, idempotent = transport._build(client, self._data, self._options)
        try:
            raw = await transport._send(client, request, follow)
        except _ENGINE_ERRORS as exc:
            raise transport._engine_error(exc, request, idempotent) from exc
        if not 200 <= raw.status_code < 300:
            try:
                await raw.aread()
            except _ENGINE_ERRORS as exc:
                raise transport._engine_error(exc, request, idempotent) from exc
            finally:
                await raw.aclose()
            raise transport._status_error(_convert(raw), request, idempotent)
        self._raw = raw
        self._iterator = raw.aiter_bytes()
        sent = raw.request
        url = str(sent.url)
        self._stream = ResponseStream(
            raw.status_code,
            chunks=_Chunks(transport, self._iterator, request, idempotent),
            aclose=self._close,
            headers=Headers.from_raw(raw.headers.raw),
            url=url,
            request=Request(sent.method, url, Headers.from_raw(sent.headers.raw)),
            reason_phrase=raw.reason_phrase,
            http_version=raw.http_version,
        )
        return self._stream

    async def _close(self) -> None:
        raw, self._raw = self._raw, None
        iterator, self._iterator = self._iterator, None
        if raw is None:
            return
        try:
            if iterator is not None:
                await _abandon(iterator)
        finally:
            await raw.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()
