"""The Pynector client: one transport, plus deadlines, retries, batches and rate limits."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
    Sized,
)
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, overload

import anyio

from . import errors
from ._errormap import map_builtin_errors, translate_builtin
from ._plugins import PluginSet, installed
from .call import WAIT_CONCURRENCY, WAIT_RATE, WAIT_TOKENS, Call, ReplyT, RequestT
from .concurrency import (
    MEMORY_URL,
    AdaptiveLimiter,
    CircuitBreaker,
    HedgePolicy,
    LocalLeases,
    RateLimiter,
    RetryBudget,
    RetryDecision,
    RetryPolicy,
    WorkerPool,
    deadline,
    remaining_time,
    server_hint,
)
from .concurrency._adaptive import is_overload
from .concurrency._breaker import unhealthy
from .concurrency._deadline import check_timeout
from .concurrency._failover import (
    FailoverBreaker,
    FailoverBudget,
    FailoverLeases,
    FailoverPacer,
    StoreGuard,
)
from .concurrency._hedge import Copy, race
from .concurrency._ratelimit import Pacer
from .concurrency._tokens import TokenBudget, TokenLimiter
from .errors import (
    ClientClosedError,
    ConfigurationError,
    PynectorError,
    RateLimitError,
    StoreUnavailableError,
)
from .telemetry import LIVE_CLIENTS

if TYPE_CHECKING:
    from ._batch import BatchResult, Emit
    from ._config import Config
    from .concurrency import Breaker, BreakerPermit, Lease, Leases, Store, TokenReservation
    from .hookspecs import Wrapper
    from .transport.protocol import CallTransport, StreamingTransport, Transport

__all__ = ["Pynector"]

_NO_OPTIONS: Mapping[str, Any] = {}

# Seconds a shared in-flight lease outlives its call's deadline: a process killed
# mid-call gives its slot back this long after the call would have timed out.
_LEASE_GRACE = 2.0

# The most keys a client keeps a circuit breaker for (the oldest is dropped past it).
_MAX_BREAKERS = 1024

# At most one "retry budget spent" line per this many seconds per client.
_BUDGET_LOG_EVERY = 10.0


class _Shared:
    """A client's limits in a shared store, each guarded by ``config["store_failure"]``."""

    __slots__ = ("budget", "guard", "leases", "pacer", "store")

    def __init__(
        self,
        store: Store,
        pacer: FailoverPacer,
        budget: FailoverBudget | None,
        leases: FailoverLeases | None,
        guard: StoreGuard,
    ) -> None:
        self.store = store
        self.pacer = pacer
        self.budget = budget
        self.leases = leases
        self.guard = guard


class _RequestForm(Protocol):
    """The 0.2 form as the client runs it: ``request`` (``stream`` optional), no ``send``."""

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def request(self, data: Any, **options: Any) -> Any: ...


def _merged(options: Mapping[str, Any] | None, keywords: dict[str, Any]) -> Mapping[str, Any]:
    """``options=`` and the keyword options as one mapping; a name in both is an error."""
    if options is None:
        return keywords
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            f"options={options!r} must be a mapping of transport options, "
            "e.g. options={'timeout': 5.0}"
        )
    if not keywords:
        return options
    both = sorted(set(options) & set(keywords))
    if both:
        raise ConfigurationError(
            f"the transport options {both} were given both in options= and as keywords; "
            "give each once"
        )
    return {**options, **keywords}


def _adapt(transport: object) -> CallTransport[Any, Any]:
    """The full transport to run: the transport itself, or an adapter for an older form."""
    from .transport.protocol import CallTransport

    if CallTransport in type(transport).__mro__:  # declared by deriving from it
        return transport  # type: ignore[return-value]
    from ._exchange import ExchangeAdapter, RequestAdapter

    # The 0.2 form declares request (StreamingTransport); the seed's, send and receive.
    if callable(getattr(transport, "request", None)):
        streams = callable(getattr(transport, "stream", None))
        return RequestAdapter(transport, streams)  # type: ignore[arg-type]
    for method in ("connect", "disconnect", "send", "receive"):
        if not callable(getattr(transport, method, None)):
            raise ConfigurationError(
                f"{type(transport).__name__} is not a transport: it has no {method}() "
                "method. Derive from pynector.transport.protocol.CallTransport (a full "
                "transport), or implement connect, disconnect, send and receive "
                "(subclass pynector.transport.protocol.Transport)."
            )
    return ExchangeAdapter(transport)  # type: ignore[arg-type]


def _declared_options(parameters: Mapping[str, Any]) -> frozenset[str] | None:
    """The option names a factory's signature declares; ``None`` if it takes ``**kwargs``."""
    import inspect

    names = []
    for parameter in parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None  # the factory checks its own options
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            names.append(parameter.name)
    return frozenset(names) if parameters else None


def _unknown_options(
    name: str, options: Mapping[str, Any], unknown: list[str], accepted: frozenset[str]
) -> str:
    """The message for options a transport does not take, with the closest names."""
    from difflib import get_close_matches

    from .registry import describe_transport

    known = sorted(accepted)
    hints = []
    for option in unknown:
        close = get_close_matches(option, known, n=1)
        if close:
            hints.append(f"{close[0]!r}" + (f" for {option!r}" if len(unknown) > 1 else ""))
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    plural = "s" if len(unknown) > 1 else ""
    return (
        f"transport {name!r} ({describe_transport(name)}) rejected its options "
        f"{sorted(options)}: unknown option{plural} {', '.join(repr(o) for o in unknown)}."
        f"{hint} Its options: {', '.join(known) or 'none'}."
    )


async def _enter_all(stack: AsyncExitStack, wrappers: list[Wrapper]) -> None:
    for wrapper in wrappers:
        if isinstance(wrapper, AbstractAsyncContextManager):
            await stack.enter_async_context(wrapper)
        else:
            stack.enter_context(wrapper)


class _MappedIterator:
    """Translates builtin errors raised while a stream is being read."""

    __slots__ = ("_inner",)

    def __init__(self, inner: AsyncIterator[Any]) -> None:
        self._inner = inner

    def __aiter__(self) -> _MappedIterator:
        return self

    def __getattr__(self, name: str) -> Any:
        # The transport's stream object may carry more (HTTP: status_code, headers).
        return getattr(self._inner, name)

    async def __anext__(self) -> Any:
        with map_builtin_errors():
            return await self._inner.__anext__()


async def _release(lease: Lease) -> None:
    """Give a shared lease back, even from a cancelled task; if the store is gone it expires."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_LEASE_GRACE),
        suppress(StoreUnavailableError),
    ):
        await lease.release()


def _learn(
    adaptive: AdaptiveLimiter, started: float, failure: BaseException | None, streaming: bool
) -> None:
    """Give the adaptive limit its room back with what the call showed.

    A request teaches its round-trip time or its overload; a stream only an
    overload when it opens (its length is the reply's, and its deadline covers
    the reader's own pace, so neither says anything about load).
    """
    if streaming:
        if isinstance(failure, errors.TransportError) and is_overload(failure):
            adaptive.release(started, failure)
        else:
            adaptive.forget()
    elif failure is None or isinstance(failure, Exception):
        adaptive.release(started, failure)
    else:
        adaptive.forget()  # cancelled: nothing learned


def _waited(waits: dict[str, Any], name: str, started: float) -> None:
    """Add the seconds since ``started`` to ``waits[name]`` (nothing when none passed)."""
    waited = time.monotonic() - started
    if waited > 0:
        waits[name] = waits.get(name, 0.0) + waited


def _log_retry(attempt: int, error: BaseException, delay: float, reason: str) -> None:
    import logging  # only on the retry path: keeps ``import pynector`` light

    logging.getLogger("pynector").debug(
        "attempt %d failed (%s); retrying in %.3f s (%s)",
        attempt,
        type(error).__name__,
        delay,
        reason,
    )


class Pynector(Generic[RequestT, ReplyT]):
    """An async client that sends requests through a pluggable transport.

    ``Pynector[RequestT, ReplyT]`` is generic over the transport's request data
    and reply: a client given a typed transport (``Pynector(transport=
    HTTPTransport(...))``) types ``request()`` as returning that transport's
    reply and checks the request's keys; one created by name
    (``Pynector(transport_type="http")``) is ``Pynector[Any, Any]``.

    Args:
        transport: A transport instance to use instead of discovering one. The
            client owns it: it connects it on first use and disconnects it in
            :meth:`aclose`.
        transport_type: The installed transport to create (``"http"``, ``"sdk"``,
            or any name published under the ``pynector.transports`` entry point).
        enable_telemetry: Whether telemetry plugins trace this client's calls
            (and add trace headers to them); every call carries the setting.
        config: Client settings (``timeout``, ``retry_count``, ``max_connections``,
            ``rate_limit``, ``max_response_size``, ...); they override ``PYNECTOR_*``
            environment variables.
        plugins: Plugins for this client only, after the installed ones (the
            ``pynector.plugins`` entry points and run-time registrations).
        **transport_options: Passed to the transport factory (``base_url``, ...).

    Raises:
        ConfigurationError: For an unknown transport, a bad option, setting or plugin.
    """

    @overload
    def __init__(
        self: Pynector[RequestT, ReplyT],
        transport: CallTransport[RequestT, ReplyT],
        transport_type: str = "http",
        enable_telemetry: bool = True,
        config: dict[str, Any] | None = None,
        *,
        plugins: Sequence[object] = (),
    ) -> None: ...

    @overload
    def __init__(
        self: Pynector[Any, Any],
        transport: Transport | StreamingTransport | _RequestForm,
        transport_type: str = "http",
        enable_telemetry: bool = True,
        config: dict[str, Any] | None = None,
        *,
        plugins: Sequence[object] = (),
    ) -> None: ...

    @overload
    def __init__(
        self: Pynector[Any, Any],
        transport: None = None,
        transport_type: str = "http",
        enable_telemetry: bool = True,
        config: dict[str, Any] | None = None,
        *,
        plugins: Sequence[object] = (),
        **transport_options: Any,
    ) -> None: ...

    def __init__(
        self,
        transport: Any = None,
        transport_type: str = "http",
        enable_telemetry: bool = True,
        config: dict[str, Any] | None = None,
        *,
        plugins: Sequence[object] = (),
        **transport_options: Any,
    ) -> None:
        from ._config import load_config  # pydantic and the settings: on first use

        self._config: Config = load_config(config)
        if isinstance(plugins, str | bytes) or not isinstance(plugins, Iterable):
            raise ConfigurationError(
                f"plugins={plugins!r} must be a list of plugin objects, e.g. plugins=[MyPlugin()]"
            )
        self._plugins = PluginSet(tuple(plugins)) if plugins else installed()
        if transport is not None:
            if transport_options:
                raise ConfigurationError(
                    f"transport options {sorted(transport_options)} cannot be combined with "
                    "transport=...; pass them to your transport's constructor instead"
                )
            self._transport_type = str(getattr(type(transport), "transport_type", "custom"))
        else:
            transport = self._create_transport(transport_type, transport_options)
            self._transport_type = transport_type.strip().lower()
        self._transport: Any = transport
        self._impl: CallTransport[Any, Any] = _adapt(transport)
        self._telemetry = bool(enable_telemetry)
        self._open_limits(self._config)
        self._policy = RetryPolicy(
            max_retries=self._config.retry_count,
            base_delay=self._config.retry_delay,
            max_delay=self._config.retry_max_delay,
            max_retry_after=self._config.retry_after_max,
        )
        if self._adaptive is not None or self._breakers is not None:
            LIVE_CLIENTS.add(self)  # their gauges: pynector.telemetry.limits()
        # max_connections: a semaphore hands a freed slot to the first waiter (FIFO).
        self._slots: anyio.Semaphore | None = None
        self._connect_lock: anyio.Lock | None = None
        self._connected = False
        self._closed = False

    def _open_limits(self, settings: Config) -> None:
        """The client's limits and resilience, as its settings ask."""
        rate = settings.rate_limit
        self._limiter: Pacer = (
            RateLimiter(*rate, burst=settings.rate_burst) if rate else RateLimiter(None)
        )
        tokens = settings.token_limit
        self._budget: TokenLimiter | None = TokenBudget(*tokens) if tokens else None
        in_flight = settings.shared_concurrency
        self._leases: Leases | None = LocalLeases(in_flight) if in_flight else None
        self._limit_key = (
            self._default_limit_key() if settings.limit_key is None else settings.limit_key
        )
        self._shared: _Shared | None = None
        self._rated = rate is not None
        if settings.store.lower() != MEMORY_URL:
            self._shared = self._open_shared(settings)
            self._limiter = self._shared.pacer
        hedge_after = settings.hedge_after
        self._hedge: HedgePolicy | None = None if hedge_after is None else HedgePolicy(hedge_after)
        self._adaptive: AdaptiveLimiter | None = (
            AdaptiveLimiter(settings.max_connections) if settings.adaptive_concurrency else None
        )
        # One circuit breaker per key the transport names, made on first use.
        self._breakers: dict[str, Breaker | FailoverBreaker] | None = (
            None if settings.circuit_breaker is None else {}
        )
        # What retries and hedges are charged to; None: not limited.
        budget_settings = settings.retry_budget
        self._retry_budget: RetryBudget | None = (
            None if budget_settings is None else RetryBudget(*budget_settings)
        )
        self._budget_logged = -math.inf
        self._budget_refused = 0
        # The slow path: what needs the call (its estimate, deadline, outcome, breaker key).
        self._limited = (
            self._budget is not None
            or self._leases is not None
            or self._hedge is not None
            or self._adaptive is not None
            or self._breakers is not None
        )

    def _qualified(self, key: str | None, default: str) -> str:
        """A transport's limit key under its transport type (``"http:https://host"``)."""
        if not key:
            return default
        kind = self._transport_type
        return key if key.startswith(f"{kind}:") else f"{kind}:{key}"

    def _default_limit_key(self) -> str:
        """The transport's key for its default target (HTTP: ``base_url``'s origin)."""
        try:
            key = self._impl.limit_key(self._call({}, None, _NO_OPTIONS))
        except Exception:  # a transport that cannot key an empty request: its type alone
            key = None
        return self._qualified(key, self._transport_type)

    def _open_shared(self, config: Config) -> _Shared:
        from .registry import open_store

        store = open_store(config.store)
        key = self._limit_key
        guard = StoreGuard(store.url, config.store_failure, config.timeout)
        count, period = config.rate_limit or (None, 1.0)
        pacer = FailoverPacer(
            store.pacer(key, count, period, burst=config.rate_burst), self._limiter, guard
        )
        budget = None
        if config.token_limit is not None and self._budget is not None:
            budget = FailoverBudget(
                store.token_budget(key, *config.token_limit), self._budget, guard
            )
        leases = None
        if config.shared_concurrency is not None and self._leases is not None:
            leases = FailoverLeases(
                store.leases(key, config.shared_concurrency), self._leases, guard
            )
        return _Shared(store, pacer, budget, leases, guard)

    def _breaker(self, call: Call[Any]) -> Breaker | FailoverBreaker:
        """The circuit breaker of the call's key (the transport's ``limit_key``)."""
        breakers = self._breakers
        assert breakers is not None
        key = self._qualified(self._impl.limit_key(call), self._limit_key)
        found = breakers.get(key)
        if found is not None:
            return found
        settings = self._config.circuit_breaker
        assert settings is not None
        breaker: Breaker | FailoverBreaker = CircuitBreaker(key, settings)
        shared = self._shared
        if shared is not None:
            breaker = FailoverBreaker(shared.store.breaker(key, settings), breaker, shared.guard)
        if len(breakers) >= _MAX_BREAKERS:
            del breakers[next(iter(breakers))]
        breakers[key] = breaker
        return breaker

    async def _breaker_permit(self, call: Call[Any], timeout: float | None) -> BreakerPermit:
        """Let the call through its key's circuit breaker, or raise ``CircuitOpenError``."""
        breaker = self._breaker(call)
        if isinstance(breaker, FailoverBreaker):
            return await breaker.acquire(timeout)
        return await breaker.acquire()

    async def _settle(self, permit: BreakerPermit, failed: bool | None) -> None:
        """Tell the breaker a call's outcome; a shared one hears a failure or a probe at once."""
        permit.record(failed)
        if self._shared is not None and (failed or getattr(permit, "probe", None) is not None):
            # Every process sharing the key should see the failure (or the probe's end) now.
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(_LEASE_GRACE),
                suppress(StoreUnavailableError),  # it goes with the next round trip instead
            ):
                await self._shared.store.flush()

    @property
    def limit_key(self) -> str:
        """The key this client's limits are kept under in ``config["store"]``; never a secret.

        ``config["limit_key"]`` when set; otherwise the transport type and the
        transport's default target: ``"http:https://api.example.com"`` (the
        origin of ``base_url``), ``"sdk:openai"``; the transport type alone
        when it names none.
        """
        return self._limit_key

    def _create_transport(self, transport_type: object, options: dict[str, Any]) -> Any:
        if not isinstance(transport_type, str) or not transport_type.strip():
            raise ConfigurationError(
                f"transport_type={transport_type!r} must be the name of an installed transport, "
                "e.g. transport_type='http'"
            )
        import inspect

        from .registry import describe_transport, resolve_transport

        factory = resolve_transport(transport_type)
        name = transport_type.strip().lower()
        kwargs = dict(options)
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        accepted = _declared_options(parameters)
        if accepted is not None:
            unknown = [option for option in options if option not in accepted]
            if unknown:
                raise ConfigurationError(_unknown_options(name, options, unknown, accepted))
        # The client settings the factory declares it takes as options: its own option wins.
        for key in getattr(factory, "client_settings", ()):
            if key not in kwargs and key in ("max_connections", "max_response_size"):
                kwargs[key] = getattr(self._config, key)
        try:
            return factory(**kwargs)
        except PynectorError:
            raise
        except TypeError as exc:
            raise ConfigurationError(
                f"transport {name!r} ({describe_transport(name)}) rejected its options "
                f"{sorted(options)}: {exc}. Check the option names in the transport's "
                "documentation."
            ) from exc
        except Exception as exc:
            # A factory's own ValueError/RuntimeError/OSError: say whose it is.
            raise ConfigurationError(
                f"transport {name!r} ({describe_transport(name)}) failed to start with the "
                f"options {sorted(options)}: {type(exc).__name__}: {exc}. Check the options "
                "in the transport's documentation; if they are right, upgrade or report the "
                "transport."
            ) from exc

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Pynector transport_type={self._transport_type!r} state={state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Like an unclosed file: a client that connected its transport and was
        # dropped without aclose() left connections (and sockets) open.
        if getattr(self, "_connected", False) and not self._closed:
            _warn(
                f"unclosed Pynector client {self!r}: its transport was left connected. "
                "Close the client with `await client.aclose()`, or use it as "
                "`async with Pynector(...) as client:`",
                ResourceWarning,
                source=self,
            )

    @property
    def config(self) -> Config:
        """The validated settings in force for this client."""
        return self._config

    @property
    def transport(self) -> Any:
        """The transport instance this client owns."""
        return self._transport

    @property
    def concurrency_limit(self) -> int:
        """The most calls this client lets run at once now.

        With ``config["adaptive_concurrency"]`` (or after a batch with
        ``max_concurrency="auto"``) it is the adaptive limit, which moves
        between 1 and ``max_connections`` as the server answers; otherwise
        ``config["max_connections"]``.
        """
        adaptive = self._adaptive
        return self._config.max_connections if adaptive is None else adaptive.limit

    def _adaptive_limiter(self) -> AdaptiveLimiter:
        """The client's adaptive limit, created on first use (``max_concurrency="auto"``)."""
        if self._adaptive is None:
            self._adaptive = AdaptiveLimiter(self._config.max_connections)
            self._limited = True
            LIVE_CLIENTS.add(self)
        return self._adaptive

    @property
    def plugins(self) -> tuple[object, ...]:
        """The plugins given to this client (the installed ones are not listed)."""
        return self._plugins.plugins

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Pynector[RequestT, ReplyT]:
        """Connect the transport; the block's exit always closes the client."""
        self._check_open()
        await self._ensure_connected()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect the transport and release its resources. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._connected:
            self._connected = False
            with anyio.CancelScope(shield=True):
                await self._impl.disconnect()
        if self._shared is not None:
            with anyio.CancelScope(shield=True):
                await self._shared.store.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(
                "this Pynector client is closed (aclose() was called); create a new client, "
                "or keep the work inside one `async with Pynector(...) as client:` block"
            )

    async def _ensure_connected(self) -> None:
        if self._connected:
            return
        if self._connect_lock is None:
            self._connect_lock = anyio.Lock()
        async with self._connect_lock:
            if not self._connected:
                self._check_open()
                with map_builtin_errors():
                    await self._impl.connect()
                self._connected = True

    # -- one attempt -------------------------------------------------------

    def _prepare(self, data: Any, timeout: object) -> float:
        self._check_open()
        if data is None:
            raise ConfigurationError(
                "request data is None; pass the request to send, e.g. "
                "client.request({'path': '/users', 'method': 'GET'})"
            )
        return self._config.timeout if timeout is None else check_timeout(timeout)

    async def _admit(self, waits: dict[str, Any], timeout: float | None = None) -> anyio.Semaphore:
        """Wait for the rate limiter, then for one of the ``max_connections`` slots.

        The seconds waited for each go in ``waits`` (``pynector.wait.rate``,
        ``pynector.wait.concurrency``), later the call's span attributes.
        """
        started = time.monotonic()
        if self._shared is not None:
            await self._shared.pacer.acquire(timeout)
        else:
            await self._limiter.acquire()
        now = time.monotonic()
        if self._rated:
            waits[WAIT_RATE] = now - started
        slots = self._slots
        if slots is None:
            limit = self._config.max_connections
            slots = self._slots = anyio.Semaphore(limit, max_value=limit)
        try:
            slots.acquire_nowait()  # no checkpoint when not saturated
        except anyio.WouldBlock:
            await slots.acquire()
            _waited(waits, WAIT_CONCURRENCY, now)
        return slots

    async def _connect_within(self, call: Call[Any]) -> None:
        """Connect on first use, within the call's deadline."""
        with deadline(call.timeout, "request"), map_builtin_errors():
            await self._ensure_connected()

    async def _send_within(self, call: Call[Any]) -> Any:
        """Connect if needed and run one attempt under its deadline.

        A transport that ``handles_deadline`` enforces ``call.deadline`` itself
        (cheaper than a cancel scope); otherwise the client's scope does.
        """
        impl = self._impl
        try:
            if not self._connected:
                await self._connect_within(call)
            if impl.handles_deadline:
                return await impl.handle_request(call)
            limit = deadline(call.timeout, "request")
            try:
                with limit, map_builtin_errors():
                    return await impl.handle_request(call)
            except errors.TimeoutError as exc:
                # The request may have reached the server: resent only if the transport says so.
                if limit.expired and not impl.replayable(call):
                    exc.retryable = False
                raise
        except (RateLimitError, OSError) as exc:
            await self._failed(exc)  # a builtin error: raises pynector's
            raise
        finally:
            self._take_hint(call)

    async def _failed(self, exc: RateLimitError | OSError) -> None:
        """Take an attempt's failure: pause for a 429; raise pynector's error for a builtin one.

        Returns for an error to raise as it is. As :func:`map_builtin_errors`
        does for a builtin error, without a block to enter on every request.
        """
        if isinstance(exc, RateLimitError):
            if exc.retry_after:
                self._limiter.pause(min(exc.retry_after, self._config.retry_after_max))
                if self._shared is not None:
                    await self._share_pause()
        elif not isinstance(exc, errors.PynectorError):
            raise translate_builtin(exc) from exc

    async def _share_pause(self) -> None:
        """Send a 429's pause to the store now: every process sharing the key holds back."""
        assert self._shared is not None
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_LEASE_GRACE),
            suppress(StoreUnavailableError),  # it goes with the next start instead
        ):
            await self._shared.store.flush()

    def _take_hint(self, call: Call[Any]) -> None:
        """Slow the limiter down as the server's rate-limit headers ask (bad values ignored)."""
        headers = call.response_headers
        if headers is not None:
            hint = server_hint(headers, call.usage)
            if hint is not None:
                self._limiter.hint(*hint)

    def _call(
        self,
        data: Any,
        timeout: float | None,
        options: Mapping[str, Any],
        attempt: int = 1,
        batch_index: int | None = None,
        streaming: bool = False,
        observed: bool | None = None,
    ) -> Call[Any]:
        # Positional: keywords cost, and this runs for every attempt.
        return Call(
            data,
            options,
            timeout,
            attempt,
            batch_index,
            streaming,
            self._telemetry,
            self._transport_type,
            self._transport,
            self._plugins,
            observed,
        )

    async def _attempt(
        self,
        data: Any,
        timeout: float,
        options: Mapping[str, Any],
        attempt: int = 1,
        batch_index: int | None = None,
    ) -> Any:
        if attempt == 1 and self._retry_budget is not None:
            self._retry_budget.record_request()  # it earns the client a share of a retry
        if self._limited:
            return await self._limited_attempt(data, timeout, options, attempt, batch_index)
        relay = self._plugins.relay(self._telemetry)
        # What _call() does, one call less on every request.
        call = Call(
            data,
            options,
            timeout,
            attempt,
            batch_index,
            False,
            self._telemetry,
            self._transport_type,
            self._transport,
            self._plugins,
            relay is not None,
        )
        # A slot is taken without a coroutine when no wait is needed (the usual case).
        slots = self._slots
        if slots is None or not self._limiter.idle:
            slots = await self._admit_call(call, timeout)
        else:
            try:
                slots.acquire_nowait()
            except anyio.WouldBlock:
                slots = await self._admit_call(call, timeout)
        try:
            wrappers = None if relay is None else relay.pynector_request(info=call)
            if not wrappers and self._connected and self._impl.handles_deadline:
                # _send_within(call), one coroutine less on the usual path.
                try:
                    result = call.result = await self._impl.handle_request(call)
                    return result
                except (RateLimitError, OSError) as exc:
                    await self._failed(exc)  # a builtin error: raises pynector's
                    raise
                finally:
                    self._take_hint(call)
            if not wrappers:
                result = call.result = await self._send_within(call)
                return result
            async with AsyncExitStack() as stack:
                await _enter_all(stack, wrappers)
                call.result = await self._send_within(call)
            return call.result
        finally:
            slots.release()

    async def _admit_call(self, call: Call[Any], timeout: float | None) -> anyio.Semaphore:
        """:meth:`_admit` for a call made before it waited: its deadline starts after the waits."""
        slots = await self._admit(call.attributes, timeout)
        if timeout is not None:
            call.deadline = time.monotonic() + timeout
        return slots

    async def _reserve_tokens(
        self, call: Call[Any], timeout: float | None
    ) -> tuple[int | None, TokenReservation | None]:
        """Reserve the call's estimated tokens: ``(estimate, reservation)``, or ``None``s."""
        budget = self._budget
        estimate = None if budget is None else self._impl.estimate_tokens(call)
        if estimate is None:
            return None, None
        estimate = int(estimate)
        shared = self._shared
        if shared is not None and shared.budget is not None:
            return estimate, await shared.budget.reserve(estimate, timeout)
        assert budget is not None
        return estimate, await budget.reserve(estimate)

    @asynccontextmanager
    async def _admitted(self, call: Call[Any], timeout: float | None) -> AsyncIterator[None]:
        """Wait for every limit a call needs, hold them while it runs, give them back.

        In order: the token budget (the transport's estimate; ``None``: not
        charged), the rate limiter, one of ``max_connections`` slots, room
        under the adaptive limit, then a shared in-flight lease. The budget
        comes first so that paced starts are not bunched behind a token
        wait; the lease last so that no process holds one of the fleet's
        slots while it waits for its own. The adaptive limit learns from the
        call once it ends (its round-trip time, or an overload).
        The reservation is settled to ``call.usage`` once the call ends (kept
        as estimated when the transport reports no usage: the server may
        have counted it). A shared store's waits are bounded by ``timeout``
        when it cannot be reached (``config["store_failure"]``).
        """
        shared = self._shared
        waits = call.attributes
        started = time.monotonic()
        estimate, reservation = await self._reserve_tokens(call, timeout)
        if estimate is not None:
            _waited(waits, WAIT_TOKENS, started)
        slots: anyio.Semaphore | None = None
        adaptive: AdaptiveLimiter | None = None
        lease: Lease | None = None
        try:
            slots = await self._admit(waits, timeout)
            started = time.monotonic()
            if self._adaptive is not None:
                await self._adaptive.acquire()
                adaptive = self._adaptive
            if self._leases is not None:
                ttl = (self._config.timeout if timeout is None else timeout) + _LEASE_GRACE
                if shared is not None and shared.leases is not None:
                    lease = await shared.leases.acquire(ttl, timeout)
                else:
                    lease = await self._leases.acquire(ttl)
            if adaptive is not None or lease is not None:
                _waited(waits, WAIT_CONCURRENCY, started)
        except BaseException:
            if adaptive is not None:
                adaptive.forget()
            if slots is not None:
                slots.release()
            if reservation is not None:
                reservation.settle(0)  # cancelled before anything was sent
            raise
        started = time.monotonic()
        failure: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if adaptive is not None:
                _learn(adaptive, started, failure, call.streaming)
            if lease is not None:
                await _release(lease)
            slots.release()
            if reservation is not None and estimate is not None:
                usage = call.usage  # none reported: the estimate stays (the server may count it)
                reservation.settle(estimate if usage is None else usage.total_tokens)

    async def _limited_attempt(
        self,
        data: Any,
        timeout: float,
        options: Mapping[str, Any],
        attempt: int,
        batch_index: int | None,
    ) -> Any:
        """One attempt whose waits need the call: token budget, shared concurrency, hedging."""
        call = self._call(data, timeout, options, attempt, batch_index)
        permit = None if self._breakers is None else await self._breaker_permit(call, timeout)
        try:
            if self._hedge is not None and self._impl.replayable(call):
                result = await self._hedged_attempt(call, timeout)
            else:
                result = await self._admitted_attempt(call, timeout)
        except BaseException as exc:
            if permit is not None:
                await self._settle(permit, unhealthy(exc))
            raise
        if permit is not None:
            await self._settle(permit, False)
        return result

    async def _hedged_attempt(self, call: Call[Any], timeout: float) -> Any:
        """One attempt sent twice if it is slow (``config["hedge_after"]``); the first success wins.

        Each copy passes every limit on its own, as any attempt does; the
        second is charged to the retry budget and gets what is left of the
        first's deadline.
        """
        assert self._hedge is not None

        def run(copy: Copy, left: float | None) -> Any:
            sent = call
            if copy.index:
                sent = self._call(call.data, left, call.options, call.attempt, call.batch_index)
            return self._admitted_attempt(sent, left, copy)

        return await race(run, self._hedge, self._retry_budget, timeout)

    async def _admitted_attempt(
        self,
        call: Call[Any],
        timeout: float | None,
        copy: Copy | None = None,
    ) -> Any:
        """Send ``call`` once every limit admits it (``copy``: one copy of a hedged call)."""
        async with self._admitted(call, timeout):
            if copy is not None:
                copy.sent()
            # The waits above are not part of the attempt's deadline.
            call.deadline = None if timeout is None else time.monotonic() + timeout
            relay = self._plugins.relay(self._telemetry)
            wrappers = None if relay is None else relay.pynector_request(info=call)
            async with AsyncExitStack() as stack:
                if wrappers:
                    await _enter_all(stack, wrappers)
                call.result = await self._send_within(call)
            if copy is not None:
                copy.succeeded()  # before the limits are given back: no other copy gets them
            return call.result

    # -- public API --------------------------------------------------------

    async def request(
        self,
        data: RequestT,
        timeout: float | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> ReplyT:
        """Send one request and return the reply.

        Args:
            data: The request (for HTTP a dict such as ``{"path": "/users"}``).
            timeout: Deadline in seconds for this request; defaults to
                ``config["timeout"]``, then ``PYNECTOR_TIMEOUT``, then 60 s. It
                covers connecting and the exchange, not waiting for a
                rate-limit or ``max_connections`` slot.
            options: Transport options as a mapping, for names that a keyword
                cannot carry (``timeout``, ``options``); merged with the keywords.
            **transport_options: Passed to the transport with the request.

        Returns:
            The transport's reply.

        Raises:
            TimeoutError: If the deadline expired.
            TransportError: If the transport failed.
            ConfigurationError: For bad input.
            ClientClosedError: If the client was closed.
        """
        if timeout is None and data is not None and not self._closed:
            request_timeout = self._config.timeout  # _prepare's answer, one call less
        else:
            request_timeout = self._prepare(data, timeout)
        options_ = (
            _merged(options, transport_options) if options or transport_options else _NO_OPTIONS
        )
        return await self._attempt(data, request_timeout, options_)  # type: ignore[no-any-return]

    def _retry_policy(self, max_retries: int | None, retry_delay: float | None) -> RetryPolicy:
        if max_retries is None and retry_delay is None:
            return self._policy
        policy = self._policy
        return RetryPolicy(
            max_retries=policy.max_retries if max_retries is None else max_retries,
            base_delay=policy.base_delay if retry_delay is None else retry_delay,
            max_delay=policy.max_delay,
            max_retry_after=policy.max_retry_after,
        )

    def _note_retry(self, attempt: int, error: PynectorError, decision: RetryDecision) -> None:
        """Log a retry and tell the plugins about the wait before it."""
        _log_retry(attempt, error, decision.delay, decision.reason)
        relay = self._plugins.relay(self._telemetry)
        if relay is not None:
            from .hookspecs import RetryWaitInfo

            relay.pynector_retry_wait(
                info=RetryWaitInfo(
                    attempt,
                    error,
                    decision.delay,
                    decision.reason,
                    self._telemetry,
                    self._transport_type,
                )
            )

    def _retry_allowed(self, error: PynectorError) -> bool:
        """Take one retry from the retry budget; when it is spent, mark the error and log."""
        budget = self._retry_budget
        if budget is None or budget.try_retry():
            return True
        error.budget_exhausted = True
        self._budget_refused += 1
        now = time.monotonic()
        if now - self._budget_logged >= _BUDGET_LOG_EVERY:
            import logging  # only when the budget is spent: keeps ``import pynector`` light

            logging.getLogger("pynector.retry").warning(
                "retry budget spent: %d retr%s not made (%s raised instead); retries are "
                "limited to %g of first attempts plus %g per second over %d s "
                "(config['retry_budget'])",
                self._budget_refused,
                "y" if self._budget_refused == 1 else "ies",
                type(error).__name__,
                budget.ratio,
                budget.min_per_second,
                budget.window,
            )
            self._budget_logged = now
            self._budget_refused = 0
        return False

    def _charge_retry(self, attempt: int, error: PynectorError, decision: RetryDecision) -> None:
        """A batch's or a stream's retry: raise ``error`` when the budget is spent, else note it."""
        if not self._retry_allowed(error):
            raise error
        self._note_retry(attempt, error, decision)

    async def _retry_loop(
        self,
        data: Any,
        timeout: float,
        options: Mapping[str, Any],
        policy: RetryPolicy,
        batch_index: int | None = None,
    ) -> Any:
        attempt = 1
        while True:
            try:
                return await self._attempt(data, timeout, options, attempt, batch_index)
            except PynectorError as exc:
                decision = policy.decide(attempt, exc, remaining_time())
                if decision is None or not self._retry_allowed(exc):
                    raise
                self._note_retry(attempt, exc, decision)
            await anyio.sleep(decision.delay)
            attempt += 1

    async def request_with_retry(
        self,
        data: RequestT,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        *,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> ReplyT:
        """Send a request, retrying transient failures.

        Makes at most ``1 + max_retries`` attempts. Only retryable errors are
        retried (connection errors, one attempt's timeout, 408/429/5xx-type
        replies), never client errors. The wait before retry *n* is a uniform
        draw in ``[0, min(cap, retry_delay * 2**(n-1))]``; a server's
        Retry-After replaces it. A wait longer than ``config["retry_after_max"]``
        or past the caller's own deadline is not slept: the error is raised.

        Args:
            data: The request.
            max_retries: Retries after the first attempt; defaults to
                ``config["retry_count"]`` (3). ``0`` makes one attempt.
            retry_delay: The first backoff in seconds (default 1.0), doubled
                for each further retry.
            timeout: Deadline of each attempt (each request sent), as in
                :meth:`request`. For a deadline over every attempt and wait,
                wrap the call in ``anyio.fail_after``: a wait past it is not slept.
            options: Transport options as a mapping, for names that a keyword
                cannot carry (``timeout``, ``options``); merged with the keywords.
            **transport_options: Passed to the transport with the request.

        Returns:
            The reply of the first successful attempt.

        Raises:
            PynectorError: The last attempt's error.
        """
        attempt_timeout = self._prepare(data, timeout)
        options_ = _merged(options, transport_options)
        policy = self._retry_policy(max_retries, retry_delay)
        relay = self._plugins.relay(self._telemetry)
        if relay is None:
            return await self._retry_loop(data, attempt_timeout, options_, policy)  # type: ignore[no-any-return]
        from .hookspecs import RetryInfo

        async with AsyncExitStack() as stack:
            info = RetryInfo(self._transport_type, data, policy.max_retries, self._telemetry)
            await _enter_all(stack, relay.pynector_retry(info=info))
            return await self._retry_loop(data, attempt_timeout, options_, policy)  # type: ignore[no-any-return]

    def _batch_runner(
        self,
        verb: str,
        requests: Iterable[tuple[Any, Mapping[str, Any]]]
        | AsyncIterable[tuple[Any, Mapping[str, Any]]],
        max_concurrency: int | Literal["auto"] | None,
        timeout: float | None,
        raise_on_error: bool,
        max_retries: int,
        retry_delay: float | None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None,
        attempt_timeout: float | None,
        options: Mapping[str, Any],
    ) -> tuple[int, Callable[[Emit | None, list[Any] | None], Awaitable[None]]]:
        """Check a batch's arguments; return its worker count and ``run(emit, slots)``."""
        from ._batch import run_batch, unpack  # with the first batch: keeps the import light

        self._check_open()
        if isinstance(requests, str | bytes | Mapping) or not isinstance(
            requests, Iterable | AsyncIterable
        ):
            raise ConfigurationError(
                f"{verb}(requests=...) got {type(requests).__name__}; pass an iterable "
                "of (data, options) tuples, e.g. [({'path': '/users/1'}, {})]"
            )
        auto = isinstance(max_concurrency, str) and max_concurrency.strip().lower() == "auto"
        if not auto and (
            isinstance(max_concurrency, bool)
            or (max_concurrency is not None and not isinstance(max_concurrency, int))
        ):
            raise ConfigurationError(
                f"max_concurrency={max_concurrency!r} is invalid: it must be a whole number "
                "of at least 1, e.g. max_concurrency=10, or 'auto' (the limit adapts to the "
                "server, up to config['max_connections'])"
            )
        if before_attempt is not None and not callable(before_attempt):
            raise ConfigurationError(
                f"before_attempt={before_attempt!r} is not callable; pass an async function "
                "taking (index, data, attempt), e.g. before_attempt=budget.wait"
            )
        if auto:
            # As many workers as the limit may grow to; the adaptive limit gates their attempts.
            self._adaptive_limiter()
            pool = WorkerPool(self._config.max_connections)
        else:
            assert not isinstance(max_concurrency, str)
            pool = WorkerPool(
                self._config.max_connections if max_concurrency is None else max_concurrency
            )
        batch_timeout = None if timeout is None else check_timeout(timeout)
        policy = self._retry_policy(max_retries, retry_delay) if max_retries else None
        if isinstance(requests, Sequence):
            for index, item in enumerate(requests):
                unpack(index, item)
        request_timeout = (
            self._config.timeout
            if attempt_timeout is None
            else check_timeout(attempt_timeout, "attempt_timeout")
        )

        def check(data: Any) -> None:
            self._prepare(data, None)

        async def send(emit: Emit | None, slots: list[Any] | None) -> None:
            await run_batch(
                requests,
                pool,
                emit,
                slots=slots,
                attempt=self._attempt,
                check=check,
                note_retry=self._charge_retry,
                request_timeout=request_timeout,
                batch_timeout=batch_timeout,
                raise_on_error=raise_on_error,
                policy=policy,
                before_attempt=before_attempt,
                options=options,
            )

        async def run(emit: Emit | None, slots: list[Any] | None) -> None:
            relay = self._plugins.relay(self._telemetry)
            if relay is None:
                await send(emit, slots)
                return
            from .hookspecs import BatchInfo

            info = BatchInfo(
                self._transport_type,
                len(requests) if isinstance(requests, Sized) else None,
                pool.size,
                batch_timeout,
                self._telemetry,
            )
            total = failed = 0

            def counted(
                index: int,
                data: Any,
                own: Mapping[str, Any],
                value: Any,
                error: Exception | None,
                attempts: int,
                elapsed: float,
            ) -> Any:
                nonlocal total, failed
                total += 1
                failed += error is not None
                relay.pynector_batch_progress(info=info, error=error)
                return (
                    None
                    if emit is None
                    else emit(index, data, own, value, error, attempts, elapsed)
                )

            async with AsyncExitStack() as stack:
                await _enter_all(stack, relay.pynector_batch(info=info))
                try:
                    await send(counted, slots)
                except Exception:
                    total += 1  # the error raised (raise_on_error, a bad item)
                    failed += 1
                    raise
                finally:
                    info.stats.update(total=total, succeeded=total - failed, failed=failed)

        return pool.size, run

    def batch(
        self,
        requests: Iterable[tuple[RequestT, Mapping[str, Any]]]
        | AsyncIterable[tuple[RequestT, Mapping[str, Any]]],
        *,
        max_concurrency: int | Literal["auto"] | None = None,
        timeout: float | None = None,
        raise_on_error: bool = False,
        max_retries: int = 0,
        retry_delay: float | None = None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None = None,
        attempt_timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> AbstractAsyncContextManager[AsyncIterator[BatchResult[ReplyT]]]:
        """Send many requests; yield each result as it finishes.

        ``async with client.batch(requests) as results: async for result in results:``.
        The same workers, limits, retries and deadlines as :meth:`batch_request`;
        each :class:`~pynector.BatchResult` carries the request's ``index``,
        ``data`` and own ``options``, the ``value`` or ``error``, ``attempts``
        and ``elapsed``. Leaving the block early (``break``, an error, a
        cancellation) cancels the requests in flight and waits for them.

        Args:
            requests: ``(data, options)`` tuples; any iterable, pulled lazily as
                workers free up, or an async iterable (a free worker awaits its
                next item: requests that arrive from a queue).
            max_concurrency: Most requests in flight; defaults to
                ``config["max_connections"]`` (100). ``"auto"``: the client's
                adaptive limit decides, between 1 and ``max_connections``
                (see :attr:`concurrency_limit`); it stays on for the client.
            timeout: Deadline of the whole batch, in seconds: requests cut short
                by it (and, for a sized input, those not started) are yielded
                with a ``TimeoutError``. Each request also has the client's
                per-request deadline.
            raise_on_error: Raise the first error from the iterator (after the
                results that finished before it), cancelling the rest, instead of
                yielding failed results.
            max_retries: Retries per request, as in :meth:`request_with_retry`
                (default 0: one attempt each).
            retry_delay: The first backoff of those retries, in seconds;
                defaults to ``config["retry_delay"]``.
            before_attempt: An async function awaited before every attempt with
                ``(index, data, attempt)``, before the client's rate limit: a
                token budget or your own limiter. What it raises becomes the
                request's error (retried when retryable).
            attempt_timeout: Deadline of each attempt of each request, in
                seconds; defaults to ``config["timeout"]``.
            options: Transport options for every request as a mapping, for
                names that a keyword cannot carry; merged with the keywords.
            **transport_options: Passed to the transport with every request; a
                request's own options win.

        Returns:
            An async context manager; iterate what it yields.

        Raises:
            ConfigurationError: For a malformed request list (before anything is
                sent when it is a sequence), or when iterated outside its block.
        """
        from ._batch import BatchStream

        size, run = self._batch_runner(
            "batch",
            requests,
            max_concurrency,
            timeout,
            raise_on_error,
            max_retries,
            retry_delay,
            before_attempt,
            attempt_timeout,
            _merged(options, transport_options),
        )
        return BatchStream(lambda emit: run(emit, None), size)

    @overload
    async def batch_request(
        self,
        requests: Iterable[tuple[RequestT, Mapping[str, Any]]],
        max_concurrency: int | Literal["auto"] | None,
        timeout: float | None,
        raise_on_error: Literal[True],
        *,
        max_retries: int = 0,
        retry_delay: float | None = None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None = None,
        on_result: Callable[[BatchResult[ReplyT]], object] | None = None,
        attempt_timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> list[ReplyT]: ...

    @overload
    async def batch_request(
        self,
        requests: Iterable[tuple[RequestT, Mapping[str, Any]]],
        max_concurrency: int | Literal["auto"] | None = None,
        timeout: float | None = None,
        *,
        raise_on_error: Literal[True],
        max_retries: int = 0,
        retry_delay: float | None = None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None = None,
        on_result: Callable[[BatchResult[ReplyT]], object] | None = None,
        attempt_timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> list[ReplyT]: ...

    @overload
    async def batch_request(
        self,
        requests: Iterable[tuple[RequestT, Mapping[str, Any]]],
        max_concurrency: int | Literal["auto"] | None = None,
        timeout: float | None = None,
        raise_on_error: bool = False,
        *,
        max_retries: int = 0,
        retry_delay: float | None = None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None = None,
        on_result: Callable[[BatchResult[ReplyT]], object] | None = None,
        attempt_timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> list[ReplyT | Exception]: ...

    async def batch_request(
        self,
        requests: Iterable[tuple[RequestT, Mapping[str, Any]]],
        max_concurrency: int | Literal["auto"] | None = None,
        timeout: float | None = None,
        raise_on_error: bool = False,
        *,
        max_retries: int = 0,
        retry_delay: float | None = None,
        before_attempt: Callable[[int, Any, int], Awaitable[object]] | None = None,
        on_result: Callable[[BatchResult[ReplyT]], object] | None = None,
        attempt_timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> list[ReplyT] | list[ReplyT | Exception]:
        """Send many requests with at most ``max_concurrency`` in flight.

        A fixed set of workers pulls ``(data, options)`` pairs from ``requests``
        (any iterable, consumed lazily), so memory grows with
        ``max_concurrency``, not with the number of requests. Built on the same
        engine as :meth:`batch`, which yields results as they finish.

        Args:
            requests: ``(data, options)`` tuples.
            max_concurrency: Most requests in flight; defaults to
                ``config["max_connections"]`` (100). ``"auto"``: the client's
                adaptive limit decides, between 1 and ``max_connections``
                (see :attr:`concurrency_limit`); it stays on for the client.
            timeout: Deadline of the whole batch, in seconds. Each request also
                has the client's per-request deadline.
            raise_on_error: Raise the first error (cancelling the rest) instead
                of putting errors in their slots.
            max_retries: Retries per request, as in :meth:`request_with_retry`
                (default 0: one attempt each).
            retry_delay: The first backoff of those retries, in seconds;
                defaults to ``config["retry_delay"]``.
            before_attempt: An async function awaited before every attempt with
                ``(index, data, attempt)``, as in :meth:`batch`.
            on_result: Called with a :class:`~pynector.BatchResult` as each
                request finishes (a progress bar); what it raises stops the
                batch and is raised.
            attempt_timeout: Deadline of each attempt of each request, in
                seconds; defaults to ``config["timeout"]``.
            options: Transport options for every request as a mapping, for
                names that a keyword cannot carry; merged with the keywords.
            **transport_options: Passed to the transport with every request; a
                request's own options win.

        Returns:
            One result per request, in input order: the reply or, with
            ``raise_on_error=False``, the exception. When the batch deadline
            expires, finished results are kept and the unfinished slots hold
            ``TimeoutError``; for an iterator input, requests not yet pulled are
            left in the iterator.

        Raises:
            ConfigurationError: For a malformed request list (before anything is
                sent when it is a sequence).
            PynectorError: With ``raise_on_error=True``: the first error, itself
                (never an exception group), or ``TimeoutError`` for the batch.
        """
        if on_result is not None and not callable(on_result):
            raise ConfigurationError(
                f"on_result={on_result!r} is not callable; pass a function taking one "
                "BatchResult, e.g. on_result=lambda result: bar.update(1)"
            )
        _, run = self._batch_runner(
            "batch_request",
            requests,
            max_concurrency,
            timeout,
            raise_on_error,
            max_retries,
            retry_delay,
            before_attempt,
            attempt_timeout,
            _merged(options, transport_options),
        )
        results: list[Any] = []
        if on_result is None:
            await run(None, results)
        else:
            from ._batch import BatchResult

            def report(
                index: int,
                data: Any,
                own: Mapping[str, Any],
                value: Any,
                error: Exception | None,
                attempts: int,
                elapsed: float,
            ) -> None:
                on_result(BatchResult(index, data, own, value, error, attempts, elapsed))

            await run(report, results)
        return results

    @asynccontextmanager
    async def _stream(
        self, data: Any, timeout: float, options: Mapping[str, Any], attempt: int = 1
    ) -> AsyncIterator[AsyncIterator[Any]]:
        call = self._call(data, timeout, options, attempt, streaming=True)
        if attempt == 1 and self._retry_budget is not None:
            self._retry_budget.record_request()  # it earns the client a share of a retry
        # A stream's breaker outcome is its opening: the reply's head, or the error before it.
        permit = None if self._breakers is None else await self._breaker_permit(call, timeout)
        try:
            async with AsyncExitStack() as limits:
                if self._limited:
                    await limits.enter_async_context(self._admitted(call, timeout))
                else:
                    slots = await self._admit(call.attributes, timeout)
                    limits.callback(slots.release)
                async with self._streaming(call, timeout) as iterator:
                    if permit is not None:
                        opened, permit = permit, None
                        await self._settle(opened, False)
                    yield iterator
        except BaseException as exc:
            if permit is not None:
                await self._settle(permit, unhealthy(exc))
            raise

    @asynccontextmanager
    async def _streaming(
        self, call: Call[Any], timeout: float
    ) -> AsyncIterator[AsyncIterator[Any]]:
        call.deadline = time.monotonic() + timeout  # the waits are not part of the stream's
        limit = deadline(timeout, "stream")
        try:
            async with AsyncExitStack() as stack:
                relay = self._plugins.relay(self._telemetry)
                if relay is not None:
                    await _enter_all(stack, relay.pynector_request(info=call))
                stack.enter_context(limit)
                await self._ensure_connected()
                with map_builtin_errors():
                    iterator = await stack.enter_async_context(self._impl.handle_stream(call))
                call.result = iterator  # plugins see the stream (HTTP: status, headers)
                yield _MappedIterator(iterator)
        except errors.TimeoutError as exc:
            # As for a request: the server may have acted on it (an LLM call is billed).
            if limit.expired and not self._impl.replayable(call):
                exc.retryable = False
            raise
        finally:
            if call.response_headers is not None:
                self._take_hint(call)

    def stream(
        self,
        data: RequestT,
        timeout: float | None = None,
        *,
        max_retries: int = 0,
        retry_delay: float | None = None,
        options: Mapping[str, Any] | None = None,
        **transport_options: Any,
    ) -> AbstractAsyncContextManager[Any]:
        """Open a streamed reply: ``async with client.stream(data) as items: ...``.

        Iterate the yielded object for the transport's stream items (HTTP: body
        chunks; SDK: the SDK's events). It is typed ``Any``: the object is the
        transport's own (HTTP: a ``ResponseStream`` with ``status_code`` and
        ``headers``). Leaving the block early releases the connection.

        With ``max_retries``, a stream that fails before its first item is
        opened again, under the rules of :meth:`request_with_retry` (only
        retryable errors, backoff or the server's Retry-After, the caller's
        deadline): the first item is read before the block is entered, and the
        caller sees one stream. Once an item exists, an error propagates.

        Args:
            data: The request.
            timeout: Deadline in seconds for the whole stream, from opening it to
                leaving the block; defaults as for :meth:`request`. With retries,
                each attempt has its own, from its opening.
            max_retries: Retries of the opening, until the first item (default
                0: one attempt; the block is entered as soon as the stream opens).
            retry_delay: The first backoff of those retries, in seconds;
                defaults to ``config["retry_delay"]``.
            options: Transport options as a mapping, for names that a keyword
                cannot carry (``timeout``, ``options``); merged with the keywords.
            **transport_options: Passed to the transport with the request.

        Raises:
            ConfigurationError: If the transport cannot stream, or for bad input.
            PynectorError: With ``max_retries``: the last attempt's error, when
                no attempt produced a first item.
        """
        stream_timeout = self._prepare(data, timeout)
        options_ = _merged(options, transport_options)
        if max_retries == 0 and not isinstance(max_retries, bool):
            return self._stream(data, stream_timeout, options_)
        return self._recovering_stream(
            data, stream_timeout, options_, self._retry_policy(max_retries, retry_delay)
        )

    @asynccontextmanager
    async def _recovering_stream(
        self, data: Any, timeout: float, options: Mapping[str, Any], policy: RetryPolicy
    ) -> AsyncIterator[Any]:
        from ._stream_retry import recovering  # with the first stream that retries

        def open_attempt(attempt: int) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
            return self._stream(data, timeout, options, attempt)

        async with AsyncExitStack() as stack:
            relay = self._plugins.relay(self._telemetry)
            if relay is not None:
                from .hookspecs import RetryInfo

                info = RetryInfo(self._transport_type, data, policy.max_retries, self._telemetry)
                await _enter_all(stack, relay.pynector_retry(info=info))
            yield await stack.enter_async_context(
                recovering(open_attempt, policy, self._charge_retry, self._impl.holds_back)
            )
