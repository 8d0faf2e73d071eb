"""The httpx2 engine: runs on every AnyIO backend (asyncio and trio), speaks HTTP/2."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import anyio
import httpx2

from pynector.redact import redact_url

from . import _errors as kinds
from ._body import Body
from ._engine import MAX_HEAD_SIZE, BodyTooLarge, HeadTooLarge, Settings, head_size
from ._headers import Headers
from ._urls import Origin

__all__ = ["Httpx2Engine"]


class _RedactedRequestLog(logging.Filter):
    """httpx2 logs every request at INFO with its URL: show it as pynector shows URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx2.URL) for arg in record.args
        ):
            record.args = tuple(
                redact_url(str(arg)) if isinstance(arg, httpx2.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx2").addFilter(_RedactedRequestLog())


class _Feed(httpx2.AsyncByteStream):
    """Hands the chunks of an iterator to an ``httpx2.Response`` that decodes them."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source

    def __aiter__(self) -> _Feed:
        # Itself, not the source: httpx2 closes a generator it iterates when it
        # stops early, which would leave the source's inner generators suspended.
        return self

    async def __anext__(self) -> bytes:
        return await self._source.__anext__()


class _Reply:
    """An httpx2 response whose body has not been read."""

    __slots__ = ("_raw", "http_version", "reason_phrase", "status_code", "url")

    def __init__(self, raw: httpx2.Response) -> None:
        self._raw = raw
        self.status_code = raw.status_code
        self.reason_phrase = raw.reason_phrase
        self.http_version = raw.http_version
        self.url = str(raw.request.url)

    def headers(self) -> Headers:
        return Headers.from_raw(self._raw.headers.raw)

    def sent_headers(self) -> Headers:
        return Headers.from_raw(self._raw.request.headers.raw)

    def location(self) -> str | None:
        return self._raw.headers.get("location")

    def elapsed(self) -> timedelta:
        return self._raw.elapsed

    async def read(self, limit: int | None) -> bytes:
        raw = self._raw
        if limit is not None:
            return await self._read_at_most(limit)
        if "content-encoding" not in raw.headers:
            return await raw.aread()
        # Decoded after the read rather than by aread(): a body that fails to
        # decode would otherwise leave httpx2's inner body iterator suspended
        # (trio warns about it when it is collected).
        body = b"".join([part async for part in raw.aiter_raw()])
        return httpx2.Response(raw.status_code, headers=raw.headers, content=body).content

    async def _read_at_most(self, limit: int) -> bytes:
        """Read the body as it arrives (decoded), giving up once it passes ``limit`` bytes."""
        raw = self._raw
        headers = raw.headers
        if "content-encoding" not in headers:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) <= limit:
                return await raw.aread()  # the length is known and allowed: no counting
        # The raw body is decoded as it arrives by a response of our own that
        # reads from it: when the limit is passed or the body does not decode,
        # the raw iterator (a chain of httpx2's nested generators) is still ours
        # to unwind, which a failed aiter_bytes() of the real response would leave
        # suspended (trio warns about each when it is collected).
        wire = raw.aiter_raw()
        decoding = httpx2.Response(raw.status_code, headers=headers, stream=_Feed(wire))
        parts: list[bytes] = []
        size = 0
        complete = False
        try:
            async with contextlib.aclosing(decoding.aiter_bytes()) as chunks:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(limit)
                    parts.append(chunk)
            complete = True
        finally:
            if not complete:
                await _abandon(wire)
        return b"".join(parts)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._raw.aiter_bytes()

    async def aclose(self, chunks: AsyncIterator[bytes] | None = None) -> None:
        try:
            if chunks is not None:
                await _abandon(chunks)
        finally:
            await self._raw.aclose()


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
        except Httpx2Engine.failures:
            pass  # the connection broke: it is being closed anyway


class Httpx2Engine:
    """One ``httpx2.AsyncClient``: a pool per proxy route, redirects left to the transport."""

    name = "httpx2"
    failures: tuple[type[BaseException], ...] = (
        httpx2.HTTPError,
        httpx2.InvalidURL,
        httpx2.StreamError,
        httpx2.CookieConflict,
    )

    native_deadline = False

    def __init__(self, settings: Settings, user_agent: str) -> None:
        timeouts = settings.timeouts
        limits = httpx2.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        mounts: dict[str, httpx2.AsyncBaseTransport | None] = {
            pattern: None
            if url is None
            else httpx2.AsyncHTTPTransport(
                verify=settings.ssl_context,
                http2=settings.http2,
                limits=limits,
                trust_env=settings.trust_env,
                proxy=httpx2.Proxy(url),
            )
            for pattern, url in settings.proxies.items()
        }
        self._client = httpx2.AsyncClient(
            headers={"User-Agent": f"{user_agent} httpx2/{httpx2.__version__}"},
            timeout=httpx2.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.pool,
            ),
            follow_redirects=False,
            limits=limits,
            verify=settings.ssl_context,
            http2=settings.http2,
            mounts=mounts or None,
            trust_env=settings.trust_env,
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: Body,
        origin: Origin,
        timeout: float | None = None,
    ) -> _Reply:
        client = self._client
        request = client.build_request(method, url, headers=headers, content=body)
        raw = await client.send(request, stream=True, follow_redirects=False)
        # h11 bounds the head only by its buffer (100 KiB in httpcore2): the
        # documented limit, the aiohttp engine's, is checked here.
        if head_size(raw.headers.raw) > MAX_HEAD_SIZE:
            with anyio.CancelScope(shield=True):
                await raw.aclose()
            raise HeadTooLarge(MAX_HEAD_SIZE)
        return _Reply(raw)

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, httpx2.TimeoutException):
            if isinstance(exc, httpx2.ConnectTimeout):
                return kinds.CONNECT_TIMEOUT
            if isinstance(exc, httpx2.PoolTimeout):
                return kinds.POOL_TIMEOUT
            if isinstance(exc, httpx2.WriteTimeout):
                return kinds.WRITE_TIMEOUT
            return kinds.READ_TIMEOUT
        if isinstance(exc, httpx2.ConnectError):
            return kinds.CONNECT
        if isinstance(exc, httpx2.ProxyError):
            return kinds.PROXY
        if isinstance(exc, httpx2.RemoteProtocolError):
            text = str(exc)
            if "disconnect" in text or "closed connection" in text:
                return kinds.BROKEN
            return kinds.PROTOCOL
        if isinstance(exc, httpx2.NetworkError):
            return kinds.BROKEN
        if isinstance(exc, httpx2.UnsupportedProtocol):
            return kinds.UNSUPPORTED
        if isinstance(exc, httpx2.LocalProtocolError):
            return kinds.LOCAL_PROTOCOL
        if isinstance(exc, httpx2.DecodingError):
            return kinds.DECODE
        if isinstance(exc, httpx2.InvalidURL):
            return kinds.INVALID_URL
        return kinds.OTHER

    def hide(self, exc: BaseException, secrets: set[str]) -> None:
        pass  # httpx2's messages name neither the URL nor the headers

    def deadline_expired(self, exc: BaseException, deadline: float) -> bool:
        return False  # the transport's cancel scope enforces deadlines for httpx2

    async def aclose(self) -> None:
        await self._client.aclose()
