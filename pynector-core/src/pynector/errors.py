"""The pynector error hierarchy.

Everything pynector raises on purpose is a :class:`PynectorError`::

    PynectorError
    ├── ConfigurationError        bad client/transport configuration or input
    │   └── PluginError           an installed transport or plugin failed to load
    ├── ClientClosedError         the client was used after aclose()
    ├── TransportError            the transport failed (retryable, retry_after)
    │   ├── CircuitOpenError      a circuit breaker is open: the call was not sent
    │   ├── ConnectionError       could not connect, or the connection broke
    │   ├── ProtocolError         the peer answered something unintelligible
    │   ├── ResponseTooLargeError the reply is larger than max_response_size
    │   ├── HTTPStatusError       the server answered with a non-success status
    │   │   ├── BadRequestError         400
    │   │   ├── AuthenticationError     401, 403
    │   │   ├── NotFoundError           404
    │   │   ├── ConflictError           409
    │   │   ├── UnprocessableEntityError 422
    │   │   ├── RateLimitError          429 (retryable, honours Retry-After)
    │   │   └── ServerError             5xx (retryable)
    │   └── SDKError              a provider SDK failed in a way not listed above
    └── TimeoutError              a deadline expired; also a builtin TimeoutError

Transports translate their library's exceptions into this tree at the boundary
(``raise Ours(...) from exc``), so the client's retry logic only ever reads
:attr:`TransportError.retryable` and :attr:`TransportError.retry_after`. The
builtin errors a minimal transport lets escape are mapped by the client, in
``pynector/_errormap.py``.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectionError",
    "HTTPStatusError",
    "NotFoundError",
    "PluginError",
    "ProtocolError",
    "PynectorError",
    "RateLimitError",
    "ResponseTooLargeError",
    "SDKError",
    "ServerError",
    "StoreUnavailableError",
    "TimeoutError",
    "TransportError",
    "UnprocessableEntityError",
    "status_error_class",
]


class PynectorError(Exception):
    """Base class of every error pynector raises on purpose.

    Attributes:
        retryable: Whether trying the same request again may succeed.
        retry_after: Seconds the server asked us to wait before trying again,
            or ``None`` when it did not say.
        budget_exhausted: True when a retry of this error was not made because
            the client's retry budget (``config["retry_budget"]``) was spent.
    """

    retryable: bool = False
    retry_after: float | None = None
    budget_exhausted: bool = False


class ConfigurationError(PynectorError, ValueError):
    """The client, a transport or a call was given a bad option or input.

    The message names the offending key or argument, the value, and the fix.
    Also a :class:`ValueError`, so generic input validation still catches it.
    """


class PluginError(ConfigurationError):
    """An installed transport or plugin could not be loaded.

    Raised when that transport or plugin is used; the original exception is
    chained as ``__cause__`` and the message names the distribution and version.
    """


class ClientClosedError(PynectorError, RuntimeError):
    """The client was used after :meth:`Pynector.aclose`; create a new client."""


class StoreUnavailableError(PynectorError):
    """The shared store (``config["store"]``) could not be reached in time.

    Raised before anything is sent: with ``config["store_failure"] = "closed"``
    (the default) a call waits for the store within its deadline, then fails
    with this error rather than go over a limit the store keeps. Set
    ``store_failure`` to ``"open"`` to fall back to per-process limits instead.

    Attributes:
        url: The store's URL with any password masked.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class TransportError(PynectorError):
    """The transport failed to deliver a request or its reply.

    Args:
        message: What happened and, where possible, how to fix it.
        retryable: Whether trying again may succeed.
        retry_after: Seconds the peer asked us to wait, if it said.
    """

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class CircuitOpenError(TransportError):
    """A circuit breaker (``config["circuit_breaker"]``) is open: the call was not sent.

    Raised at once, without touching the network, while too many recent calls
    under the same key failed. Not retryable by :meth:`Pynector.request_with_retry`
    (it fails fast); wait for :attr:`retry_after` before calling again.

    Args:
        message: Which key is open, for how long, and how to tune the breaker.
        key: The key the breaker guards (HTTP: the origin; never a secret).
        retry_after: Seconds the breaker stays open.

    Attributes:
        key: The key the breaker guards.
    """

    def __init__(self, message: str, *, key: str, retry_after: float) -> None:
        super().__init__(message, retryable=False, retry_after=retry_after)
        self.key = key

    @classmethod
    def refusing(cls, key: str, left: float, *, probing: bool = False) -> CircuitOpenError:
        """The error of a call refused by ``key``'s breaker for ``left`` more seconds.

        ``probing``: the breaker is half-open and its probe calls are out.
        """
        why = (
            "half-open: its probe calls are out"
            if probing
            else "too many of its recent calls failed"
        )
        return cls(
            f"the circuit breaker for {key} is open ({why}): the call was not sent. It fails "
            f"at once for {left:.1f} s more (retry_after), then a probe is let through; "
            "wait for retry_after, or tune config['circuit_breaker'] "
            "(failure_ratio, minimum_calls, window, cooldown, probes)",
            key=key,
            retry_after=left,
        )


class ConnectionError(TransportError):
    """No connection could be made, or an open one broke. Retryable by default.

    Shadows the builtin name inside this module only; import it as
    ``pynector.errors.ConnectionError`` to catch pynector's.
    """

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)


class ProtocolError(TransportError):
    """The peer answered with something that is not valid for the protocol."""


class ResponseTooLargeError(TransportError):
    """The reply's body is larger than the transport's ``max_response_size``. Not retryable.

    The body is counted as it is read, after decompression, so a small
    compressed reply that expands without bound fails as soon as it passes the
    limit; the connection is closed. The message names the limit and how to
    raise it (``config={"max_response_size": ...}``, ``None`` for no limit).

    Args:
        message: What happened and how to raise the limit.
        limit: The limit in bytes that the body went past.

    Attributes:
        limit: The limit in bytes that the body went past.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message, retryable=False)
        self.limit = limit


class HTTPStatusError(TransportError):
    """The server answered with a status code that is not a success.

    Attributes:
        status_code: The HTTP status code.
        response: The transport's response object, for inspection.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response: Any = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        if retryable is None:
            retryable = status_code == 408 or status_code == 429 or status_code >= 500
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status_code = status_code
        self.response = response


class BadRequestError(HTTPStatusError):
    """400: the server rejected the request as malformed. Not retryable."""


class AuthenticationError(HTTPStatusError):
    """401 or 403: missing, wrong or insufficient credentials. Not retryable."""


class NotFoundError(HTTPStatusError):
    """404: the resource does not exist. Not retryable."""


class ConflictError(HTTPStatusError):
    """409: the request conflicts with the resource's state.

    Not retryable over HTTP; the SDK transport marks it retryable, as the
    OpenAI and Anthropic SDKs retry it (those APIs answer 409 on a lock timeout).
    """


class UnprocessableEntityError(HTTPStatusError):
    """422: the server understood the request but its content is invalid."""


class RateLimitError(HTTPStatusError):
    """429: too many requests. Retryable; ``retry_after`` holds the server's wait."""


class ServerError(HTTPStatusError):
    """5xx: the server failed. Retryable."""


class SDKError(TransportError):
    """A provider SDK raised an error that no more specific class describes."""


class TimeoutError(PynectorError, builtins.TimeoutError):
    """A deadline expired before the operation finished.

    Also a builtin :class:`TimeoutError`, so ``except TimeoutError:`` catches it
    whether or not the name was imported from pynector. A timeout of one attempt
    is retryable.

    Attributes:
        timeout: The deadline in seconds that expired, when known.
    """

    retryable = True

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout


_STATUS_CLASSES: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[HTTPStatusError]:
    """Return the most specific :class:`HTTPStatusError` subclass for a status code."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, HTTPStatusError)
