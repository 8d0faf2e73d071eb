"""The httpx2 engine: runs on every AnyIO backend (asyncio and trio), speaks HTTP/2."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from http import HTTPStatus

import anyio
import httpx2

from pynector.redact import REDACTED, is_secret_name, redact_url

from . import _errors as kinds
from ._body import Body
from ._engine import MAX_HEAD_SIZE, BodyTooLarge, HeadTooLarge, Settings, head_size
from ._headers import Headers
from ._urls import Origin

__all__ = ["Httpx2Engine"]


_STANDARD_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _RedactedRequestLog(logging.Filter):
    """httpx2 logs every request at INFO with its URL: show it as pynector shows URLs.

    The line ends with the reply's reason phrase; one in the server's own
    words (which may echo a credential) is shown as ``[redacted]``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, httpx2.URL) for arg in args):
            shown = [redact_url(str(arg)) if isinstance(arg, httpx2.URL) else arg for arg in args]
            status, reason = (shown[3], shown[4]) if len(shown) == 5 else (0, None)
            standard = _STANDARD_REASONS.get(status) if isinstance(status, int) else None
            if isinstance(reason, str) and reason and reason != standard:
                shown[4] = REDACTED
            record.args = tuple(shown)
        return True


# A (name, value) header pair as httpcore2 and hpack print them: (b'Set-Cookie', b'...').
_HEADER_PAIR = re.compile(
    r"""\(\s*b?(['"])([!#$%&*+.^_`|~0-9A-Za-z-]+)\1\s*,\s*b?(['"])((?:\\.|(?!\3).)*)\3\s*\)"""
)


def _masked_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match.group(2)):
        return match.group()
    quote = match.group(3)
    prefix = match.group()[: match.start(4) - match.start()]
    return f"{prefix}{REDACTED}{quote})"


class _SecretHeadersLog(logging.Filter):
    """httpcore2 logs the reply's headers at DEBUG (``Set-Cookie`` values too): mask them.

    Installed on httpcore2's loggers when this engine is imported; it applies
    to every httpx2 client in the process. A record is formatted here only
    when DEBUG is on for its logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "(" in message:
            masked = _HEADER_PAIR.sub(_masked_pair, message)
            if ".failed exception=" in masked:
                # h11's error quotes the malformed header line it refused.
                masked = kinds.clean_text(masked, ())
            if masked != message:
                record.msg, record.args = masked, ()
        return True


def _hpack_arg(arg: object) -> object:
    if isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[0], bytes):
        # A decoded (name, value) header.
        if is_secret_name(arg[0].decode("latin-1")):
            return (arg[0], REDACTED.encode())
        return arg
    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{len(arg)} bytes>"  # a raw header block: values may be in plain text
    return arg


class _HpackLog(logging.Filter):
    """hpack (HTTP/2) logs each header it encodes or decodes at DEBUG: mask the secret ones.

    ``Adding name=value to the header table`` loses the value of a secret
    header, a decoded ``(name, value)`` likewise, and a raw header block is
    shown by its length only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or not args:
            return True
        name = args[0]
        if str(record.msg).startswith("Adding ") and isinstance(name, bytes | str):
            text = name.decode("latin-1") if isinstance(name, bytes) else name
            if len(args) > 1 and is_secret_name(text):
                record.args = (name, REDACTED, *args[2:])
            return True
        record.args = tuple(_hpack_arg(arg) for arg in args)
        return True


logging.getLogger("httpx2").addFilter(_RedactedRequestLog())
for _name in (
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
):
    logging.getLogger(_name).addFilter(_SecretHeadersLog())
logging.getLogger("hpack.hpack").addFilter(_HpackLog())


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

    __slots__ = ("_raw", "_wire", "http_version", "reason_phrase", "status_code", "url")

    def __init__(self, raw: httpx2.Response) -> None:
        self._raw = raw
        self._wire: AsyncIterator[bytes] | None = None  # the raw body under a decoded stream
        self.status_code = raw.status_code
        self.reason_phrase = raw.reason_phrase
        self.http_version = raw.http_version
        self.url = str(raw.request.url)

    def headers(self) -> Headers:
        return Headers.from_raw(self._raw.headers.raw)

    def header_map(self) -> Mapping[str, str]:
        return self._raw.headers  # httpx2's own: case-insensitive

    def sent_headers(self) -> Headers:
        return Headers.from_raw(self._raw.request.headers.raw)

    def peer(self) -> tuple[str, int] | None:
        stream = self._raw.extensions.get("network_stream")
        try:
            name = None if stream is None else stream.get_extra_info("server_addr")
        except OSError:  # the connection is closed already
            return None
        if isinstance(name, tuple) and len(name) >= 2:
            host, port = name[0], name[1]
            if isinstance(host, str) and isinstance(port, int):
                return host, port
        return None

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
        raw = self._raw
        if "content-encoding" not in raw.headers:
            return raw.aiter_bytes()
        # Decoded by a response of our own, as in _read_at_most: when the body
        # does not decode, the raw iterator is still ours to unwind in aclose().
        wire = self._wire = raw.aiter_raw()
        decoding = httpx2.Response(raw.status_code, headers=raw.headers, stream=_Feed(wire))
        return decoding.aiter_bytes()

    async def aclose(self, chunks: AsyncIterator[bytes] | None = None) -> None:
        try:
            if chunks is not None:
                await _abandon(chunks)
            if self._wire is not None:
                await _abandon(self._wire)
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
        # h11 quotes the header line of a malformed reply (a Set-Cookie, say).
        kinds.hide_in_chain(exc, secrets)

    def deadline_expired(self, exc: BaseException, deadline: float) -> bool:
        return False  # the transport's cancel scope enforces deadlines for httpx2

    async def aclose(self) -> None:
        await self._client.aclose()
