"""What an HTTP engine provides, and which engine a transport gets.

The transport does everything engine-neutral (checking the request, the URL,
headers and their origin rules, the body, redirects, errors, the
``Response``); an engine only opens a connection pool, sends one request
(one hop: it never follows redirects), hands back the reply's head and body,
and says what kind of failure each of its exceptions is. Two engines exist:
httpx2 (every AnyIO backend) and aiohttp (asyncio only, less CPU per request).
"""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from itertools import chain
from typing import NamedTuple, Protocol

from pynector.errors import ConfigurationError

from ._body import Body
from ._headers import Headers
from ._options import Timeouts
from ._urls import Origin

__all__ = [
    "MAX_HEAD_SIZE",
    "BodyTooLarge",
    "Engine",
    "HeadTooLarge",
    "Reply",
    "ReplyTooLarge",
    "Settings",
    "choose_engine",
    "head_size",
    "open_engine",
]

MAX_HEAD_SIZE = 64 * 1024
"""Most bytes of header lines a reply may have, on both engines (a line may use them all)."""


class ReplyTooLarge(Exception):
    """A reply went past one of the transport's limits; the engine has closed its connection.

    The transport turns it into the pynector error, with the request named.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class BodyTooLarge(ReplyTooLarge):
    """The body, as decoded, went past ``max_response_size``."""


class HeadTooLarge(ReplyTooLarge):
    """The header lines went past :data:`MAX_HEAD_SIZE`."""


def head_size(raw_headers: Sequence[tuple[bytes, bytes]]) -> int:
    """The size of the header lines on the wire (``name: value`` and CRLF)."""
    # Counted in C (no generator): this runs for every reply.
    return sum(map(len, chain.from_iterable(raw_headers))) + 4 * len(raw_headers)


class Settings(NamedTuple):
    """The transport's checked options that an engine needs to build its pool."""

    timeouts: Timeouts
    ssl_context: ssl.SSLContext
    proxies: dict[str, str | None]
    max_connections: int | None
    http2: bool
    trust_env: bool


class Reply(Protocol):
    """One response whose head has arrived and whose body is not read yet."""

    @property
    def status_code(self) -> int:
        """The status code."""

    @property
    def reason_phrase(self) -> str:
        """The status line's reason."""

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"``, ``"HTTP/2"``, ..."""

    @property
    def url(self) -> str:
        """The URL that answered."""

    def headers(self) -> Headers:
        """The response headers."""

    def header_map(self) -> Mapping[str, str]:
        """The response headers as the engine holds them: a case-insensitive mapping.

        What the client alone reads on a call no plugin sees (its rate-limit
        hint check), without building :class:`Headers`.
        """

    def sent_headers(self) -> Headers:
        """The headers that went out with the request, the engine's own included."""

    def location(self) -> str | None:
        """The ``Location`` header, if any."""

    def peer(self) -> tuple[str, int] | None:
        """The address and port of the socket's other end (``None`` when unknown)."""

    def elapsed(self) -> timedelta:
        """Time from sending the request to reading the whole body."""

    async def read(self, limit: int | None) -> bytes:
        """Read the whole (content-decoded) body; the connection returns to the pool.

        Raises:
            BodyTooLarge: When the decoded body goes past ``limit`` bytes (the
                reply is then closed by the caller, with its connection).
        """

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, content-decoded, as it arrives."""

    async def aclose(self, chunks: AsyncIterator[bytes] | None = None) -> None:
        """Release the reply: an unread body closes its connection.

        Args:
            chunks: The iterator from :meth:`chunks`, when the body was being
                streamed, so the engine can unwind it.
        """


class Engine(Protocol):
    """An engine's connection pool, created inside the event loop by :func:`open_engine`."""

    name: str
    failures: tuple[type[BaseException], ...]
    native_deadline: bool
    """Whether :meth:`send` enforces a ``timeout`` itself (else: a cancel scope does)."""

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: Body,
        origin: Origin,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request (no redirects followed) and return once the head arrived.

        ``timeout``, for an engine with ``native_deadline``, is the seconds
        this request and the reading of its body may take in all.

        Raises:
            HeadTooLarge: When the reply's header lines go past
                :data:`MAX_HEAD_SIZE` (the reply is closed, with its connection).
        """

    def deadline_expired(self, exc: BaseException, deadline: float) -> bool:
        """Whether ``exc`` is the engine enforcing ``deadline`` (``time.monotonic()`` seconds)."""

    def classify(self, exc: BaseException) -> str:
        """The kind of failure (``pynector_http._errors.CONNECT``, ...) ``exc`` is."""

    def hide(self, exc: BaseException, secrets: set[str]) -> None:
        """Remove ``secrets`` from what ``exc`` (and what it chains) shows when printed."""

    async def aclose(self) -> None:
        """Close the pool and every connection in it."""


def _event_loop() -> str:
    import sniffio

    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "asyncio"  # called from a running loop sniffio does not know: asyncio-based


def _aiohttp_installed() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


def choose_engine(requested: str, settings: Settings) -> str:
    """Resolve ``engine`` to ``"aiohttp"`` or ``"httpx2"``, inside the running event loop.

    ``"auto"`` picks aiohttp on asyncio when it is installed and the options
    allow it (no ``http2``, no SOCKS proxy), else httpx2; trio always gets
    httpx2.

    Raises:
        ConfigurationError: For ``engine="aiohttp"`` outside asyncio.
    """
    if requested == "httpx2":
        return "httpx2"
    loop = _event_loop()
    if requested == "aiohttp":
        if loop != "asyncio":
            raise ConfigurationError(
                f"engine='aiohttp' runs on asyncio only, and this code runs on {loop}: pass "
                f"engine='httpx2' (or engine='auto', which picks httpx2 on {loop})"
            )
        return "aiohttp"
    socks = any(url is not None and url.startswith("socks") for url in settings.proxies.values())
    if loop == "asyncio" and not settings.http2 and not socks and _aiohttp_installed():
        return "aiohttp"
    return "httpx2"


def open_engine(name: str, settings: Settings, user_agent: str) -> Engine:
    """Create the named engine's pool (importing the engine's library only now)."""
    if name == "aiohttp":
        from ._aiohttp_engine import AiohttpEngine

        return AiohttpEngine(settings, user_agent)
    from ._httpx2_engine import Httpx2Engine

    return Httpx2Engine(settings, user_agent)
