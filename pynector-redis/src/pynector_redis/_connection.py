"""The connection to Redis: one coredis client in a task of its own, every round trip bounded.

coredis (6 and later) ties a client's connections to a task group that must be
entered and left by one task. A store is used from whichever tasks its client's
calls run in and is opened on first use, so the coredis client lives in a
host task of the event loop's own (a trio system task, an asyncio task) that
enters it, waits until the store is closed, and leaves it. Calls from any task
then share its connections. A host whose client failed is replaced by the next
round trip, which is also how the store reconnects after Redis comes back.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.lowlevel
import coredis
import coredis.exceptions
from coredis.commands.script import Script

from pynector.errors import ConfigurationError, StoreUnavailableError
from pynector.redact import redact_url

__all__ = ["DEFAULT_TIMEOUT", "Connection"]

DEFAULT_TIMEOUT = 2.0
"""Seconds a round trip to Redis may take (connecting included) before the store is unavailable."""

_SCHEMES = ("redis", "rediss", "unix")

# What a failed round trip can raise besides coredis's own errors: the socket's
# errors and AnyIO's stream errors, when a connection breaks under a command.
_FAILURES: tuple[type[BaseException], ...] = (
    coredis.exceptions.RedisError,
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


def parse_url(url: str, timeout: float | None) -> tuple[str, float]:
    """Check a store URL; return it for coredis (without ``timeout=``) and the timeout.

    Raises:
        ConfigurationError: If the scheme is not one of Redis's or a timeout is invalid.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"store URL {shown!r} is not a valid URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"store URL {shown!r}: pynector-redis serves redis://, rediss:// and unix:// "
            "(for example 'redis://127.0.0.1:6379/0' or 'unix:///run/redis.sock?db=0')"
        )
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError(
            f"store URL {shown!r} names no socket: use 'unix:///path/to/redis.sock'"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [value for name, value in query if name == "timeout"]
    if given:
        try:
            timeout = float(given[-1])
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError(
                f"store URL {shown!r}: timeout={given[-1]!r} must be a positive number of seconds"
            )
        query = [(name, value) for name, value in query if name != "timeout"]
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise ConfigurationError(
            f"RedisStore(timeout={timeout!r}) must be a positive number of seconds"
        )
    stripped = urlunsplit(parts._replace(query=urlencode(query)))
    return stripped, float(timeout)


class _Host:
    """The task that holds one coredis client open until told to stop."""

    def __init__(self, client: coredis.Redis[bytes]) -> None:
        self.client = client
        self.loop = anyio.lowlevel.current_token().native_token
        self.ready = anyio.Event()
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.failed = False
        self._task: object = None  # an asyncio task must be referenced to stay alive

    @property
    def usable(self) -> bool:
        return not self.failed and not self.stop.is_set()

    def start(self) -> None:
        trio = sys.modules.get("trio")
        if trio is not None:
            try:
                trio.lowlevel.current_trio_token()
            except RuntimeError:
                pass  # trio is imported but this is another event loop
            else:
                trio.lowlevel.spawn_system_task(self._run, name="pynector-redis store")
                return
        import asyncio  # noqa: TID251 (the host task of an asyncio event loop)

        self._task = asyncio.get_running_loop().create_task(self._run(), name="pynector-redis")

    async def _run(self) -> None:
        try:
            async with self.client:
                self.ready.set()
                await self.stop.wait()
        except Exception:
            # The next round trip starts a new host: the failure reaches the
            # caller there, as a StoreUnavailableError.
            self.failed = True
        finally:
            self.failed = self.failed or not self.stop.is_set()
            self.ready.set()
            self.done.set()


class Connection:
    """Round trips to one Redis server: lazy, bounded, and failing as StoreUnavailableError.

    Args:
        url: The store's URL (with its password, if any).
        timeout: Seconds each round trip may take, connecting included.
    """

    def __init__(self, url: str, timeout: float | None = None) -> None:
        self._url, self.timeout = parse_url(url, timeout)
        self.redacted = redact_url(url)
        self._secrets = [s for s in (urlsplit(url).password, urlsplit(url).username) if s]
        self._host: _Host | None = None
        self._closed = False
        self._scripts: dict[str, Script[bytes]] = {}

    def _client(self) -> coredis.Redis[bytes]:
        # Each retry of coredis's default policy could take the whole timeout;
        # the bound on the round trip (below) is what keeps a down Redis prompt.
        return coredis.Redis.from_url(
            self._url,
            connect_timeout=self.timeout,
            stream_timeout=self.timeout,
            pool_timeout=self.timeout,
            client_name="pynector",
        )

    async def _ready_host(self) -> _Host:
        host = self._host
        loop = anyio.lowlevel.current_token().native_token
        if host is None or not host.usable or host.loop is not loop:
            if host is not None and host.loop is loop:
                host.stop.set()
            host = self._host = _Host(self._client())
            host.start()
        await host.ready.wait()
        if not host.usable:
            raise coredis.exceptions.ConnectionError("the client could not be started")
        return host

    def script(self, source: str) -> Script[bytes]:
        """The script of ``source`` (run by EVALSHA; loaded again after a NOSCRIPT)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(script=source)
        return script

    async def run(
        self, source: str, keys: Sequence[str], args: Sequence[str | bytes | int | float]
    ) -> Any:
        """Run a script; its reply.

        Raises:
            StoreUnavailableError: If Redis cannot be reached or does not answer in time.
        """
        script = self.script(source)

        async def call(client: coredis.Redis[bytes]) -> Any:
            return await script(list(keys), list(args), client=client)

        return await self.call(call)

    async def call(self, operation: Callable[[coredis.Redis[bytes]], Awaitable[Any]]) -> Any:
        """Run ``operation(client)`` within the timeout; its result.

        Raises:
            StoreUnavailableError: If Redis cannot be reached or does not answer in time.
        """
        if self._closed:
            raise StoreUnavailableError(
                f"the store {self.redacted} is closed (aclose() was called)", url=self.redacted
            )
        try:
            with anyio.fail_after(self.timeout):
                host = await self._ready_host()
                return await operation(host.client)
        except TimeoutError as exc:
            raise self._unavailable(f"no answer within {self.timeout:g} s") from exc
        except _FAILURES as exc:
            raise self._unavailable(f"{type(exc).__name__}: {exc}") from exc

    def _unavailable(self, reason: str) -> StoreUnavailableError:
        for secret in self._secrets:
            reason = reason.replace(secret, "[redacted]")
        return StoreUnavailableError(
            f"the store {self.redacted} is unavailable ({reason}); the limits it keeps "
            "cannot be checked. Check that Redis is running and reachable at that URL",
            url=self.redacted,
        )

    async def aclose(self) -> None:
        """Stop the host task and close its connections (idempotent)."""
        self._closed = True
        host, self._host = self._host, None
        if host is None:
            return
        host.stop.set()
        if host.loop is anyio.lowlevel.current_token().native_token:
            with anyio.move_on_after(self.timeout):
                await host.done.wait()
