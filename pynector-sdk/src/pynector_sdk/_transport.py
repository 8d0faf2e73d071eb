"""The ``sdk`` transport: OpenAI and Anthropic through their official async SDKs."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeAlias

import anyio

from pynector.call import Call
from pynector.errors import ConfigurationError, PynectorError, TransportError
from pynector.redact import Secret, redact_url, scrub, secret_values
from pynector.registry import installed_plugins
from pynector.transport.protocol import CallTransport, LifecycleMixin

from ._errors import ErrorMap
from ._operations import Operation, resolve_operation
from ._providers import Provider, get_provider
from ._semconv import StreamUsage, reply_report, request_attributes, server_of, uninstrumented
from ._stream import EventStream
from ._tokens import estimate_tokens

if TYPE_CHECKING:
    from pynector.cli import CLISupport

__all__ = ["SDKRequest", "SDKTransport"]

SDKRequest: TypeAlias = Mapping[str, Any]
"""A request of the ``sdk`` transport: the SDK call's keyword arguments, plus an
optional ``"operation"`` (``{"model": ..., "messages": [...], "max_tokens": 256}``).

A mapping rather than a ``TypedDict``: each operation of each SDK takes its own
arguments (the SDKs type them per method), and a request built as a
``dict[str, Any]`` must keep type-checking. The transport checks the names
against the SDK method's signature before the call, suggesting the closest.
"""

# The header in which the SDKs tell the API how many retries came before.
_RETRY_COUNT = "x-stainless-retry-count"

# The call the SDK's HTTP client is working for, read by its response hook.
_CURRENT: ContextVar[Call[Any] | None] = ContextVar("pynector_sdk_call", default=None)


async def _report_response(response: Any) -> None:
    """httpx2 response hook: what only the HTTP layer knows, reported on the current call."""
    call = _CURRENT.get()
    if call is not None:
        request = response.request
        call.status = response.status_code
        call.url = str(request.url)
        call.request_headers = request.headers
        call.response_headers = response.headers


def _check_timeout(timeout: object) -> None:
    if timeout is None or type(timeout).__name__ == "Timeout":  # an httpx2.Timeout is the SDK's
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout={timeout!r} is invalid: it must be a positive, finite number of seconds "
            "(the SDK's own HTTP timeout), e.g. timeout=30.0"
        )


def _check_max_connections(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_connections={value!r} is invalid: it must be a whole number >= 1, "
            "e.g. config={'max_connections': 100}"
        )
    return value


# Stream events that carry no content (see SDKTransport.holds_back).
_PREAMBLE_EVENTS = frozenset({"message_start", "ping", "response.created", "response.in_progress"})


def _empty_delta(delta: object) -> bool:
    """An OpenAI chat chunk's delta with nothing in it yet (the role alone, or nothing)."""
    if delta is None:
        return True
    return not any(
        getattr(delta, name, None) for name in ("content", "refusal", "tool_calls", "function_call")
    )


class SDKTransport(LifecycleMixin, CallTransport[SDKRequest, Any]):
    """Sends requests through the official OpenAI or Anthropic async SDK.

    Created by ``Pynector(transport_type="sdk", provider=..., ...)``. Each
    request is a dict of the SDK method's keyword arguments, plus an optional
    ``"operation"`` naming the method (default: ``chat.completions.create``
    for OpenAI, ``messages.create`` for Anthropic): an :data:`SDKRequest`.
    :meth:`request` returns the SDK's response object; :meth:`stream` yields
    the SDK's stream events.

    A full transport (:class:`~pynector.transport.protocol.CallTransport`):
    the client hands it each attempt as a :class:`pynector.Call`, and it
    reports on the call the server, the HTTP status, the tokens the reply used
    (:class:`pynector.Usage`), the limit key (:meth:`limit_key`) and the GenAI
    span name and attributes. An SDK call is never replayed after a deadline
    cut it short (:meth:`replayable`).

    The SDK's own retries (``max_retries=0``) and, for Anthropic, its own
    OpenTelemetry spans and trace headers are off: the pynector client retries
    and traces each call once. What the SDKs' retries knew is kept: a reply's
    ``x-should-retry`` decides whether its error is retryable, a 409 (a lock
    timeout) is retryable, and a retry carries ``x-stainless-retry-count``
    (the call's ``attempt`` - 1). SDK exceptions are translated
    into :mod:`pynector.errors`. Only the chosen provider's SDK is imported,
    when the transport is created.

    Args:
        provider: ``"openai"`` or ``"anthropic"``.
        api_key: The API key; by default the SDK reads ``OPENAI_API_KEY`` or
            ``ANTHROPIC_API_KEY``. Never shown in a repr, log line or error.
        organization: The OpenAI organization id (OpenAI only).
        base_url: The API's base URL; any OpenAI-compatible server works with
            ``provider="openai"``.
        timeout: The SDK's own HTTP timeout in seconds (default: the SDK's,
            10 minutes). Deadlines belong to the pynector client.
        max_connections: Size of the SDK's connection pool; the client passes
            its ``config["max_connections"]``. Ignored with ``http_client=``.
        enable_telemetry: Let telemetry plugins add headers (the W3C trace
            context) to calls. Headers are added only when both this and the
            call's ``telemetry`` (the client's ``enable_telemetry``) are true.
        **client_options: Any other option of the SDK's async client
            (``project``, ``default_headers``, ``default_query``,
            ``http_client``, ``auth_token``, ...), except ``max_retries`` and
            ``open_telemetry``, which pynector sets.

    Raises:
        ConfigurationError: For an unknown provider or option, a missing API
            key, or an SDK that is not installed (the message has the
            ``pip install`` command).

    Attributes:
        provider: The provider's name, ``"openai"`` or ``"anthropic"``.
        enable_telemetry: As the argument.
    """

    transport_type: ClassVar[str] = "sdk"
    """The name the pynector client reports for this transport to plugins."""
    client_settings: ClassVar[frozenset[str]] = frozenset({"max_connections"})
    """The client passes its ``config["max_connections"]`` to the factory."""

    @staticmethod
    def pynector_cli_support(transport_type: str) -> CLISupport:
        """The ``pynector_cli_support`` hook: how the command line handles SDK calls."""
        from ._cli import SDKCLISupport

        return SDKCLISupport()

    def __init__(
        self,
        provider: str | None = None,
        *,
        api_key: Any = None,
        organization: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_connections: int | None = None,
        enable_telemetry: bool = True,
        **client_options: Any,
    ) -> None:
        spec = get_provider(provider)
        self.provider: str = spec.name
        self.enable_telemetry = bool(enable_telemetry)
        self._spec = spec
        _check_timeout(timeout)
        self._max_connections = _check_max_connections(max_connections)
        given = {
            "api_key": api_key,
            "organization": organization,
            "base_url": base_url,
            "timeout": timeout,
        }
        options = {name: value for name, value in given.items() if value is not None}
        options.update(client_options)
        sdk = spec.load()
        self._sdk: ModuleType = sdk
        self._client_class: Any = getattr(sdk, spec.client_class)
        _check_option_names(spec, self._client_class, options)
        if api_key is not None and not isinstance(api_key, str) and not callable(api_key):
            raise ConfigurationError(
                f"api_key must be a string (got {type(api_key).__name__}); pass "
                f"api_key='...' or set the {spec.api_key_env} environment variable"
            )
        # Wrapped, so that no repr of the transport or its attributes shows a credential
        # (API keys, Authorization headers, a password in base_url).
        self._options = Secret(options)
        self._secrets = Secret(_secret_values(spec, options))
        try:
            from importlib import import_module

            self._resource_base: type = import_module(f"{spec.module}._resource").AsyncAPIResource
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"the installed {spec.distribution} {getattr(sdk, '__version__', '?')} is not "
                f"supported by pynector-sdk; upgrade both: pip install -U pynector-sdk "
                f"{spec.distribution}"
            ) from exc
        if not spec.check_credentials_after and not spec.has_credentials(options, None):
            _missing_key(spec)
        self._client: Any = self._create_client()
        if spec.check_credentials_after and not spec.has_credentials(options, self._client):
            _missing_key(spec)
        self._base_url = redact_url(str(self._client.base_url))
        self._errors = ErrorMap(
            spec,
            sdk,
            base_url=self._base_url,
            secrets=self._secret_strings(),
        )
        self._server = server_of(self._base_url)
        self._operations: dict[Any, Operation] = {}

    # -- construction ---------------------------------------------------------

    def _create_client(self) -> Any:
        options = self._options.get()
        kwargs = dict(options) if isinstance(options, dict) else {}
        for name, (value, _why) in self._spec.fixed_options.items():
            kwargs[name] = value
        if "http_client" not in kwargs:
            kwargs["http_client"] = self._http_client()
        try:
            return self._client_class(**kwargs)
        except (getattr(self._sdk, self._spec.base_error), TypeError, ValueError) as exc:
            detail = scrub(" ".join(str(exc).split()), self._secret_strings())
            raise ConfigurationError(
                f"the {self._spec.distribution} SDK rejected the options of provider "
                f"{self.provider!r}: {detail}"
            ) from exc

    def _secret_strings(self) -> tuple[str, ...]:
        values = self._secrets.get()
        return values if isinstance(values, tuple) else ()

    def _http_client(self) -> Any:
        """The SDK's default async HTTP client, with the pool sized by ``max_connections``.

        Its response hook reports the HTTP status, the final URL and the
        headers on the call it works for.
        """
        hooks = {"response": [_report_response]}
        if self._max_connections is None:
            return self._sdk.DefaultAsyncHttpxClient(event_hooks=hooks)
        import httpx2  # the SDKs' HTTP engine: imported with them already

        n = self._max_connections
        limits = httpx2.Limits(max_connections=n, max_keepalive_connections=min(n, 100))
        return self._sdk.DefaultAsyncHttpxClient(limits=limits, event_hooks=hooks)

    # -- what plugins and users may read -----------------------------------------

    @property
    def base_url(self) -> str:
        """The API's base URL (credentials in it are masked)."""
        return self._base_url

    @property
    def default_operation(self) -> str:
        """The operation of a request that names none."""
        return self._spec.default_operation

    @property
    def sdk_client(self) -> Any:
        """The SDK's async client (``openai.AsyncOpenAI`` / ``anthropic.AsyncAnthropic``).

        Raises:
            TransportError: If the transport is disconnected.
        """
        return self._open_client()

    def operation_name(self, data: Any) -> str:
        """The operation a request dict runs: its ``"operation"`` or the default."""
        name = data.get("operation") if isinstance(data, Mapping) else None
        return name if isinstance(name, str) else self._spec.default_operation

    def __repr__(self) -> str:
        state = "closed" if self._client is None else "open"
        return f"<SDKTransport provider={self.provider!r} base_url={self.base_url!r} state={state}>"

    # -- lifecycle -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the SDK client if :meth:`disconnect` closed it (no network is involved)."""
        if self._client is None:
            self._client = self._create_client()
            self._operations.clear()

    async def disconnect(self) -> None:
        """Close the SDK client and its connection pool. Safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.close()

    def _open_client(self) -> Any:
        client = self._client
        if client is None:
            raise TransportError(
                f"the sdk transport for {self.provider!r} is disconnected; call "
                "`await transport.connect()` first (the Pynector client does this for you)"
            )
        return client

    # -- requests --------------------------------------------------------------

    def _resolve(self, name: Any) -> Operation:
        client = self._open_client()
        operation = resolve_operation(
            client,
            self._spec.default_operation if name is None else name,
            provider=self.provider,
            resource_base=self._resource_base,
            examples=self._spec.example_operations,
        )
        self._operations[name] = operation
        return operation

    def _prepare(self, call: Call[SDKRequest]) -> tuple[Operation, dict[str, Any]]:
        """Split a call into its operation and the SDK call's keyword arguments.

        Reports on the call what is known before the SDK is called (server,
        limit key, span name and attributes) and adds the plugins' headers.
        """
        if self._client is None:
            self._open_client()  # raises: disconnected
        data = call.data
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"request data for the sdk transport must be a dict of the SDK call's keyword "
                f"arguments, got {type(data).__name__} {data!r:.60}; e.g. "
                f"{{'model': 'gpt-4o-mini', 'messages': [{{'role': 'user', 'content': 'Hi'}}]}}"
            )
        options = call.options
        kwargs = {**options, **data} if options else dict(data)
        name = kwargs.pop("operation", None)
        try:
            operation = self._operations[name]
        except (KeyError, TypeError):
            operation = self._resolve(name)
        parameters = operation.parameters
        if parameters is not None and not parameters.issuperset(kwargs):
            _unknown_arguments(self.provider, operation, kwargs)
        self._report_request(call, operation.name, kwargs)
        # Plugins' headers (W3C trace context of pynector's span); the caller's win.
        headers = call.trace_headers() if self.enable_telemetry else None
        if call.attempt > 1:
            # The SDKs count their own retries in this header (0: theirs are off).
            retries = {_RETRY_COUNT: str(call.attempt - 1)}
            headers = {**headers, **retries} if headers else retries
        if headers and (parameters is None or "extra_headers" in parameters):
            given = kwargs.get("extra_headers")
            kwargs["extra_headers"] = {**headers, **given} if given else headers
        return operation, kwargs

    def _report_request(self, call: Call[Any], operation: str, kwargs: Mapping[str, Any]) -> None:
        call.server_address, call.server_port = self._server
        call.limit_key = self._limit_key(kwargs.get("model"))
        call.span_name, attributes = request_attributes(
            kwargs, operation, self.provider, self._server, call.streaming
        )
        call.attributes.update(attributes)

    def _limit_key(self, model: object) -> str:
        if isinstance(model, str) and model:
            return f"sdk:{self.provider}:{model}"
        return f"sdk:{self.provider}"

    # -- the call protocol -----------------------------------------------------

    def limit_key(self, call: Call[SDKRequest]) -> str:
        """``"sdk:{provider}:{model}"`` (``"sdk:{provider}"`` for a call without a model).

        The key a rate limiter or circuit breaker groups the call under:
        providers limit per model. It holds no secret (no API key, no URL).
        """
        data = call.data
        model = data.get("model") if isinstance(data, Mapping) else None
        if model is None:
            model = call.options.get("model")
        return self._limit_key(model)

    def holds_back(self, item: object) -> bool:
        """True for a stream event that carries no content yet.

        Anthropic's ``message_start`` and ``ping``, and a ``content_block_start``
        of empty text; OpenAI's Responses ``response.created`` and
        ``response.in_progress``, and a chat chunk whose choices carry no text,
        refusal or tool call (the first chunk names only the role). A stream
        that recovers (``client.stream(..., max_retries=N)``) reads past them,
        so that an overload reported right after them is still retried.
        """
        kind = getattr(item, "type", None)
        if kind in _PREAMBLE_EVENTS:
            return True
        if kind == "content_block_start":
            block = getattr(item, "content_block", None)
            return getattr(block, "type", None) == "text" and not getattr(block, "text", "")
        choices = getattr(item, "choices", None)
        if kind is None and isinstance(choices, list):
            return all(_empty_delta(getattr(choice, "delta", None)) for choice in choices)
        return False

    def estimate_tokens(self, call: Call[SDKRequest]) -> int:
        """The most tokens the call can cost: its text / 4 plus its output allowance.

        No tokenizer and no network: every string of the request counts, except
        the values of ``model``, ``operation`` and ``role``, at four characters
        a token, plus ``max_tokens`` (or ``max_completion_tokens``,
        ``max_output_tokens``) times ``n``. The same estimate as
        ``pynector batch --tpm``.
        """
        data, options = call.data, call.options
        if options and isinstance(data, Mapping):
            return estimate_tokens({**options, **data})
        return estimate_tokens(data)

    def replayable(self, call: Call[SDKRequest]) -> bool:
        """``False``: an SDK call cut short by a deadline is never sent again.

        It may have reached the API, which bills it and may act on it; neither
        provider takes an idempotency key for its calls.
        """
        return False

    async def handle_request(self, call: Call[SDKRequest]) -> Any:
        """Run one SDK call for the client and return the SDK's response object.

        Reports on ``call`` the server, the HTTP status (also of an error), the
        URL and headers (with the SDK's default HTTP client), the usage, the
        limit key, the span name and the GenAI attributes.

        Raises:
            ConfigurationError: For data that is not a dict, an unknown operation
                or argument, or a streaming request (use :meth:`handle_stream`).
            TransportError: The SDK's error, translated (``retryable``, ``retry_after``).
            TimeoutError: The SDK's own timeout expired.
        """
        operation, kwargs = self._prepare(call)
        if operation.stream_manager or kwargs.get("stream"):
            raise ConfigurationError(
                f"{operation.name} with these arguments returns a stream; use "
                "`async with client.stream(data) as events:` instead of client.request(data)"
            )
        token = _CURRENT.set(call)
        try:
            with self._errors.around(operation.name):
                result = await _run(operation, kwargs)
        except PynectorError as exc:
            _report_error(call, exc)
            raise
        finally:
            _CURRENT.reset(token)
        call.usage, attributes = reply_report(result)
        call.attributes.update(attributes)
        return result

    def handle_stream(self, call: Call[SDKRequest]) -> AbstractAsyncContextManager[EventStream]:
        """Open a streamed SDK call for the client; leaving the block closes it.

        ``stream=True`` is added for operations that take it (``create``);
        helpers that return a stream manager (anthropic's ``messages.stream``)
        are entered as they are. Reports on ``call`` what :meth:`handle_request`
        does, the usage when the block is left (best effort: the usage the
        events carried, if any).

        Raises:
            ConfigurationError: If the operation cannot stream, or for bad input.
            TransportError: The SDK's error, translated.
        """
        return self._stream(call)

    @asynccontextmanager
    async def _stream(self, call: Call[SDKRequest]) -> AsyncIterator[EventStream]:
        operation, kwargs = self._prepare(call)
        if operation.takes_stream:
            kwargs["stream"] = True
        elif not operation.stream_manager:
            raise ConfigurationError(
                f"{operation.name} does not stream; use client.request(data) for it, or an "
                "operation that takes stream=True such as "
                f"{self._spec.default_operation!r}"
            )
        manager, events = await self._open_stream(call, operation, kwargs)
        usage = StreamUsage()
        stream = EventStream(events, self._errors, operation.name, usage)
        try:
            yield stream
        finally:
            with anyio.CancelScope(shield=True):
                await manager.__aexit__(None, None, None)
                await stream.finish()
            call.usage = usage.usage()
            call.attributes.update(usage.attributes())

    async def _open_stream(
        self, call: Call[Any], operation: Operation, kwargs: dict[str, Any]
    ) -> tuple[Any, Any]:
        """The SDK's stream (or stream manager) entered: ``(manager, events)``."""
        token = _CURRENT.set(call)
        try:
            with self._errors.around(operation.name):
                manager = uninstrumented(operation.method)(**kwargs)
                if inspect.isawaitable(manager):
                    manager = await manager
                events = await manager.__aenter__()
        except PynectorError as exc:
            _report_error(call, exc)
            raise
        finally:
            _CURRENT.reset(token)
        return manager, events

    # -- used on its own ----------------------------------------------------------

    async def request(self, data: SDKRequest, **options: Any) -> Any:
        """Run one SDK call and return the SDK's response object (without a client).

        Args:
            data: The SDK method's keyword arguments, plus an optional ``"operation"``.
            **options: More keyword arguments for the call; ``data`` wins on a clash.

        Raises:
            ConfigurationError: For data that is not a dict, an unknown operation
                or argument, or a streaming request (use :meth:`stream`).
            TransportError: The SDK's error, translated (``retryable``, ``retry_after``).
            TimeoutError: The SDK's own timeout expired.
        """
        call = Call.standalone(data, options, transport=self, plugins=installed_plugins())
        return await self.handle_request(call)

    def stream(self, data: SDKRequest, **options: Any) -> AbstractAsyncContextManager[EventStream]:
        """Open a streamed SDK call and yield its events (without a client).

        See :meth:`handle_stream`.

        Raises:
            ConfigurationError: If the operation cannot stream, or for bad input.
            TransportError: The SDK's error, translated.
        """
        call = Call.standalone(
            data, options, transport=self, streaming=True, plugins=installed_plugins()
        )
        return self._stream(call)


async def _run(operation: Operation, kwargs: dict[str, Any]) -> Any:
    method = uninstrumented(operation.method)
    if operation.is_coroutine:
        return await method(**kwargs)
    # ``list`` operations return an awaitable paginator: awaiting it gives the first page.
    result = method(**kwargs)
    return await result if inspect.isawaitable(result) else result


def _report_error(call: Call[Any], error: PynectorError) -> None:
    """The HTTP status under an SDK error (when no response hook saw it)."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        call.status = status


def _secret_values(spec: Provider, options: Mapping[str, Any]) -> tuple[str, ...]:
    """Every credential string in the options, to scrub from messages."""
    values: list[str] = []
    for name, value in options.items():
        if name in spec.secret_options and isinstance(value, str):
            values.append(value)
    base_url = options.get("base_url")
    if isinstance(base_url, str) and "@" in base_url:
        userinfo = base_url.partition("://")[2].rpartition("@")[0]
        values.extend(part for part in userinfo.split(":") if part)
    headers = options.get("default_headers")
    if isinstance(headers, Mapping):
        values.extend(
            secret_values((str(name), str(value)) for name, value in headers.items() if value)
        )
    return tuple(values)


def _check_option_names(spec: Provider, client_class: Any, options: Mapping[str, Any]) -> None:
    parameters = inspect.signature(client_class.__init__).parameters
    valid = sorted(
        name
        for name, p in parameters.items()
        if name != "self"
        and not name.startswith("_")
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and name not in spec.fixed_options
    )
    for name in options:
        if name in spec.fixed_options:
            reason = spec.fixed_options[name][1]
            raise ConfigurationError(
                f"option {name!r} cannot be set for the sdk transport: {reason}"
            )
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"option {name!r} is not accepted by provider {spec.name!r} "
                f"({spec.module}.{spec.client_class}).{hint} Valid options: "
                f"{', '.join(valid)}, max_connections"
            )


def _missing_key(spec: Provider) -> NoReturn:
    raise ConfigurationError(
        f"provider {spec.name!r} needs an API key: pass api_key='...' (e.g. "
        f"Pynector(transport_type='sdk', provider={spec.name!r}, api_key='...')) or set the "
        f"{spec.api_key_env} environment variable"
    )


def _unknown_arguments(provider: str, operation: Operation, kwargs: Mapping[Any, Any]) -> NoReturn:
    valid = sorted(operation.parameters or ())
    unknown = sorted(repr(key) for key in kwargs if key not in (operation.parameters or ()))
    hints = []
    for key in kwargs:
        if isinstance(key, str) and key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            if close:
                hints.append(f"{key!r} -> {close[0]!r}")
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    raise ConfigurationError(
        f"{provider} {operation.name} does not take {', '.join(unknown)}.{hint} It takes: "
        f"{', '.join(valid)}; plus 'operation' to choose another SDK method"
    )
