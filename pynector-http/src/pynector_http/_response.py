"""The engine-neutral request and response types that pynector-http returns.

They carry plain Python values only (``str``, ``bytes``, ``int``,
:class:`~datetime.timedelta`, :class:`Headers`), so every HTTP engine produces
the same objects and no engine's types leak into user code.
"""

from __future__ import annotations

import codecs
import json as _json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Protocol

from pynector.redact import redact_url

from ._headers import Headers

__all__ = ["Request", "Response", "ResponseStream"]

_NO_TIME = timedelta(0)


class _Source(Protocol):
    """Where a response built by an engine gets what it computes on first use."""

    @property
    def url(self) -> str: ...

    def headers(self) -> Headers: ...

    def sent_headers(self) -> Headers: ...

    def elapsed(self) -> timedelta: ...


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


def _as_headers(
    headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


class Request:
    """The request a response answers: method, final URL and the headers sent.

    Attributes:
        method: The HTTP method, upper case.
        url: The URL requested (after redirects, the last one).
        headers: The headers sent. Credentials are in it, but never in its repr.
    """

    __slots__ = ("headers", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = _as_headers(headers)

    def __repr__(self) -> str:
        return f"<Request {self.method} {redact_url(self.url)}>"


class _StatusMixin:
    __slots__ = ()
    status_code: int

    @property
    def is_success(self) -> bool:
        """``True`` for a 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """``True`` for a 3xx status."""
        return 300 <= self.status_code < 400

    @property
    def is_client_error(self) -> bool:
        """``True`` for a 4xx status."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """``True`` for a 5xx status."""
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        """``True`` for a 4xx or 5xx status."""
        return 400 <= self.status_code < 600


class Response(_StatusMixin):
    """A complete HTTP response, with httpx's attribute names.

    Args:
        status_code: The status code.
        headers: The response headers (a :class:`Headers`, mapping or pairs).
        content: The body, decoded from any ``Content-Encoding``.
        url: The URL that answered (after redirects).
        request: The request this answers.
        elapsed: Time from sending the request to reading the whole body.
        reason_phrase: The status line's reason; defaults to the standard one.
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"``, ...

    Attributes:
        status_code: The status code.
        content: The body as bytes.
        url: The URL that answered, as a string.
        request: The :class:`Request` this answers, or ``None``.
        elapsed: A :class:`~datetime.timedelta`.
        reason_phrase: The reason phrase.
        http_version: The protocol version.
    """

    __slots__ = (
        "_elapsed",
        "_headers",
        "_method",
        "_request",
        "_source",
        "_url",
        "content",
        "http_version",
        "reason_phrase",
        "status_code",
    )

    def __init__(
        self,
        status_code: int,
        *,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes = b"",
        url: str = "",
        request: Request | None = None,
        elapsed: timedelta = _NO_TIME,
        reason_phrase: str | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        self.status_code = status_code
        self._headers: Headers | None = _as_headers(headers)
        self.content = content
        self._url: str | None = url
        self._request = request
        self._elapsed = elapsed
        self._source: _Source | None = None
        self._method = ""
        self.reason_phrase = _reason(status_code) if reason_phrase is None else reason_phrase
        self.http_version = http_version

    @classmethod
    def _from_engine(
        cls,
        status_code: int,
        content: bytes,
        reason_phrase: str,
        http_version: str,
        method: str,
        source: _Source,
    ) -> Response:
        """A response whose URL, headers, request and elapsed time ``source`` gives on first use.

        Most callers read the status and the body only; building the header
        and request objects when they are asked for keeps each request cheap.
        """
        self = cls.__new__(cls)
        self.status_code = status_code
        self.content = content
        self._url = None
        self.reason_phrase = reason_phrase
        self.http_version = http_version
        self._method = method
        self._source = source
        self._headers = None
        self._request = None
        self._elapsed = _NO_TIME
        return self

    @property
    def url(self) -> str:
        """The URL that answered (after redirects), as a string."""
        url = self._url
        if url is None:
            assert self._source is not None
            url = self._url = self._source.url
        return url

    @url.setter
    def url(self, url: str) -> None:
        self._url = url

    @property
    def headers(self) -> Headers:
        """The response headers (case-insensitive, read-only)."""
        headers = self._headers
        if headers is None:
            assert self._source is not None
            headers = self._headers = self._source.headers()
        return headers

    @property
    def request(self) -> Request | None:
        """The :class:`Request` this answers (``None`` for a response built by hand without one)."""
        source = self._source
        if self._request is None and source is not None:
            self._request = Request(self._method, self.url, source.sent_headers())
        return self._request

    @request.setter
    def request(self, request: Request | None) -> None:
        self._request = request

    @property
    def elapsed(self) -> timedelta:
        """Time from sending the request to reading the whole body."""
        source = self._source
        if source is not None and self._elapsed is _NO_TIME:
            self._elapsed = source.elapsed()
        return self._elapsed

    @elapsed.setter
    def elapsed(self, elapsed: timedelta) -> None:
        self._elapsed = elapsed

    @property
    def encoding(self) -> str:
        """The body's character set: ``Content-Type``'s charset, else UTF-8."""
        return _charset(self.headers.get("content-type")) or "utf-8"

    @property
    def text(self) -> str:
        """The body decoded as text (undecodable bytes become U+FFFD)."""
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """Parse the body as JSON.

        Args:
            **kwargs: Passed to :func:`json.loads`.

        Raises:
            json.JSONDecodeError: If the body is not JSON (a ``ValueError``).
        """
        return _json.loads(self.content, **kwargs)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip("'")
            try:
                return codecs.lookup(charset).name
            except LookupError:
                return None
    return None


class ResponseStream(_StatusMixin):
    """A response whose body is read as it arrives: ``async for chunk in stream``.

    Yielded by ``transport.stream(...)`` (the client's ``stream`` yields an
    iterator over the same chunks). Status and headers are known when it is
    handed out; the body is not read until iterated. The context manager that
    produced it closes it, which releases the connection even when the body
    was not read to the end.

    Attributes:
        status_code: The status code.
        headers: The response headers.
        url: The URL that answered (after redirects).
        request: The :class:`Request` this answers.
        reason_phrase: The reason phrase.
        http_version: The protocol version.
    """

    __slots__ = (
        "_aclose",
        "_chunks",
        "_closed",
        "headers",
        "http_version",
        "reason_phrase",
        "request",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        *,
        chunks: AsyncIterator[bytes],
        aclose: Callable[[], Awaitable[None]],
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        url: str = "",
        request: Request | None = None,
        reason_phrase: str | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        self.status_code = status_code
        self.headers = _as_headers(headers)
        self.url = url
        self.request = request
        self.reason_phrase = _reason(status_code) if reason_phrase is None else reason_phrase
        self.http_version = http_version
        self._chunks = chunks
        self._aclose = aclose
        self._closed = False

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        return await self._chunks.__anext__()

    async def aread(self) -> bytes:
        """Read the rest of the body and return it."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Stop reading and release the connection. Safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._aclose()

    def __repr__(self) -> str:
        return f"<ResponseStream [{self.status_code} {self.reason_phrase}]>"
