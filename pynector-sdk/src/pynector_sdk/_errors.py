"""Translating provider SDK exceptions into the pynector error hierarchy.

=====================================  ======================================  =========
SDK exception                          pynector error                          retryable
=====================================  ======================================  =========
401 ``AuthenticationError``,           ``AuthenticationError``                 no
403 ``PermissionDeniedError``
400 ``BadRequestError``                ``BadRequestError``                     no
404 ``NotFoundError``                  ``NotFoundError``                       no
409 ``ConflictError``                  ``ConflictError``                       yes (a
                                                                               lock timeout)
422 ``UnprocessableEntityError``       ``UnprocessableEntityError``            no
429 ``RateLimitError``                 ``RateLimitError`` (``retry_after``)    yes
5xx (``InternalServerError``, 529)     ``ServerError`` (``retry_after``)       yes
other statuses (408, 413, ...)         ``HTTPStatusError``                     408 only
``APITimeoutError``                    ``TimeoutError``                        yes
``APIConnectionError``                 ``ConnectionError``                     yes
``APIResponseValidationError``, JSON   ``ProtocolError``                       no
an ``error`` event inside a stream     ``SDKError``                            transient
                                                                               types only
any other SDK error                    ``SDKError``                            no
``TypeError`` / ``ValueError`` from    ``ConfigurationError``                  no
the SDK call (bad arguments)
=====================================  ======================================  =========

A reply's ``x-should-retry: true`` or ``false`` overrides the retryable column,
as in the SDKs (``pynector.concurrency.should_retry_from_headers``).
``retry_after`` comes from the response's ``retry-after-ms`` or ``retry-after``
header (``pynector.concurrency.retry_after_from_headers``). Messages never
contain the API key: every secret option's value is scrubbed from them
(``pynector.redact``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from types import ModuleType, TracebackType
from typing import Any

from pynector import errors
from pynector.concurrency import retry_after_from_headers, should_retry_from_headers
from pynector.redact import Secret, redact_url, scrub

from ._providers import Provider


def _scrub_cause(exc: Exception, secrets: tuple[str, ...]) -> None:
    """The SDK's exception stays the ``__cause__`` (tracebacks print it): clean it too."""
    exc.args = tuple(scrub(arg, secrets) if isinstance(arg, str) else arg for arg in exc.args)
    message = getattr(exc, "message", None)  # openai's and anthropic's APIError
    if isinstance(message, str):
        with contextlib.suppress(AttributeError, TypeError):
            exc.message = scrub(message, secrets)  # type: ignore[attr-defined]


__all__ = ["ErrorMap", "Translating"]

_HINTS = {
    401: "check the API key (the api_key option or the {env} environment variable)",
    403: "the API key is valid but not allowed to do this; check its permissions",
    404: "check the model name, the operation and base_url",
    429: "rate limited by the API",
}
# ``error.type`` values of an error event inside a stream worth trying again.
_TRANSIENT_TYPES = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "server_error", "timeout_error"}
)
_DETAIL_LIMIT = 500
# Statuses below 500 the SDKs retry: request timeout, lock timeout, rate limit.
_RETRIED_STATUSES = frozenset({408, 409, 429})


def _error_type(exc: Exception) -> str | None:
    """The API's ``error.type`` carried by an SDK error (``"overloaded_error"``), if any."""
    kind = getattr(exc, "type", None)
    if isinstance(kind, str):
        return kind
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


class ErrorMap:
    """Translates one provider SDK's exceptions (and httpx2's, met while streaming).

    Args:
        provider: The provider (its name and API-key variable appear in messages).
        sdk: The imported SDK module.
        base_url: The API's base URL, for connection errors.
        secrets: Credential values to keep out of every message.
    """

    __slots__ = (
        "_api_error",
        "_api_key_env",
        "_base",
        "_base_url",
        "_connection",
        "_httpx_error",
        "_httpx_timeout",
        "_httpx_transport",
        "_label",
        "_secrets",
        "_status",
        "_timeout",
        "_validation",
    )

    def __init__(
        self,
        provider: Provider,
        sdk: ModuleType,
        *,
        base_url: str,
        secrets: Iterable[str],
    ) -> None:
        import httpx2  # the SDKs' HTTP engine: already imported with them

        self._label = provider.label
        self._api_key_env = provider.api_key_env
        self._base_url = redact_url(base_url)
        self._secrets = Secret(tuple(secrets))
        self._base: type[Exception] = getattr(sdk, provider.base_error)
        self._status: type[Exception] = sdk.APIStatusError
        self._timeout: type[Exception] = sdk.APITimeoutError
        self._connection: type[Exception] = sdk.APIConnectionError
        self._validation: type[Exception] = sdk.APIResponseValidationError
        self._api_error: type[Exception] = sdk.APIError
        self._httpx_timeout: type[Exception] = httpx2.TimeoutException
        self._httpx_transport: type[Exception] = httpx2.TransportError
        self._httpx_error: type[Exception] = httpx2.HTTPError

    def _detail(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if len(text) > _DETAIL_LIMIT:
            text = text[: _DETAIL_LIMIT - 3] + "..."
        secrets = self._secrets.get()
        return scrub(text, secrets) if isinstance(secrets, tuple) else text

    def translate(
        self, exc: Exception, operation: str, *, calling: bool = True
    ) -> errors.PynectorError | None:
        """Return the pynector error for ``exc``, or ``None`` to let it propagate as is.

        Args:
            exc: What the SDK call (or reading its stream) raised.
            operation: The operation that failed (``"chat.completions.create"``).
            calling: ``True`` while calling the SDK method, where a ``TypeError``
                or ``ValueError`` means bad arguments; ``False`` while reading a
                stream, where they propagate as they are.
        """
        where = f"{self._label} {operation}"
        secrets = self._secrets.get()
        if isinstance(secrets, tuple) and secrets:
            _scrub_cause(exc, secrets)
        if isinstance(exc, self._status):
            return self._status_error(exc, where)
        if isinstance(exc, self._timeout | self._httpx_timeout):
            return errors.TimeoutError(
                f"{where}: the SDK's own timeout expired ({self._detail(exc)}); raise the "
                "transport's timeout=... option, or rely on pynector's per-request timeout"
            )
        if isinstance(exc, self._connection | self._httpx_transport):
            return errors.ConnectionError(
                f"{where}: could not reach the API at {self._base_url} ({self._detail(exc)}); "
                "check that the server is up and that base_url points at it"
            )
        if isinstance(exc, self._validation | json.JSONDecodeError):
            return errors.ProtocolError(
                f"{where}: the API answered with data the SDK cannot read ({self._detail(exc)})"
            )
        if isinstance(exc, self._api_error):
            # An error the API reported without a failing status: an ``error``
            # event inside a stream.
            return errors.SDKError(
                f"{where}: the API reported an error: {self._detail(exc)}",
                retryable=_error_type(exc) in _TRANSIENT_TYPES,
            )
        if isinstance(exc, self._base | self._httpx_error):
            return errors.SDKError(f"{where} failed: {type(exc).__name__}: {self._detail(exc)}")
        if calling and isinstance(exc, TypeError | ValueError):
            return errors.ConfigurationError(
                f"{where} rejected its arguments: {self._detail(exc)}. The request dict holds "
                f"the keyword arguments of client.{operation}(...), plus an optional 'operation'"
            )
        return None

    def around(self, operation: str, *, calling: bool = True) -> Translating:
        """A context manager that translates what the block raises (see :meth:`translate`).

        ``with errors.around("messages.create"):`` around an SDK call or the
        reading of its stream: an exception :meth:`translate` knows is raised
        as the pynector error, the SDK's as its ``__cause__``; any other propagates.
        """
        return Translating(self, operation, calling)

    def _status_error(self, exc: Any, where: str) -> errors.PynectorError:
        status: int = exc.status_code
        detail = self._detail(getattr(exc, "message", exc))
        if status < 400:
            # An ``error`` event inside a stream that opened with a success status.
            return errors.SDKError(
                f"{where}: the API reported an error: {detail}",
                retryable=_error_type(exc) in _TRANSIENT_TYPES,
            )
        response = exc.response
        headers = response.headers
        wait = retry_after_from_headers(headers)
        # The SDKs' own rule (``_should_retry``), kept with their retries off:
        # the server's x-should-retry first, then 408, 409 (a lock timeout),
        # 429 and 5xx.
        retryable = should_retry_from_headers(headers)
        if retryable is None:
            retryable = status in _RETRIED_STATUSES or status >= 500
        cls: type[errors.HTTPStatusError] = (
            errors.AuthenticationError
            if status in (401, 403)
            else errors.status_error_class(status)
        )
        hint = _HINTS.get(status, "").format(env=self._api_key_env)
        if status == 429 and wait is not None:
            hint = f"{hint}; the API asked to wait {wait:g} s"
        message = f"{where}: the API answered {status} ({type(exc).__name__}): {detail}"
        return cls(
            f"{message}; {hint}" if hint else message,
            status_code=status,
            response=response,
            retryable=retryable,
            retry_after=wait,
        )


class Translating:
    """What :meth:`ErrorMap.around` returns: translates the exceptions of one block."""

    __slots__ = ("_calling", "_map", "_operation")

    def __init__(self, error_map: ErrorMap, operation: str, calling: bool) -> None:
        self._map = error_map
        self._operation = operation
        self._calling = calling

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The end of a stream is no error (and the common case: not looked at).
        if isinstance(exc, Exception) and not isinstance(exc, StopAsyncIteration):
            error = self._map.translate(exc, self._operation, calling=self._calling)
            if error is not None:
                raise error from exc
