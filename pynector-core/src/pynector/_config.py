"""Client configuration: ``config=`` > ``PYNECTOR_*`` environment > defaults.

Validated with pydantic, imported on first use so that ``import pynector``
stays light. Every problem becomes a ``ConfigurationError`` naming the key, the
value, where it came from and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .concurrency import BreakerSettings

__all__ = ["ENV_PREFIX", "Config", "load_config"]

ENV_PREFIX = "PYNECTOR_"


# The retry budget's defaults: 20% of first attempts, plus 3 per second, over 10 s.
_RETRY_BUDGET = (0.2, 3.0, 10)


@dataclass(frozen=True, slots=True)
class Config:
    """The validated settings of one client.

    Attributes:
        timeout: Default deadline of one request, in seconds.
        retry_count: Default ``max_retries`` of ``request_with_retry``.
        retry_delay: Default first backoff of ``request_with_retry``, in seconds.
        retry_max_delay: Cap on any backoff wait, in seconds.
        retry_after_max: Longest server-requested wait that is honoured, in seconds.
        max_connections: Most requests in flight at once for this client; the
            default ``max_concurrency`` of batches and, for pooled transports
            such as HTTP, the connection pool size.
        rate_limit: ``(count, period)``: request starts paced at ``period / count``
            seconds apart, or ``None`` for no limit.
        rate_burst: Request starts allowed at once under ``rate_limit`` (1: strictly paced).
        token_limit: ``(tokens, period)``: at most ``tokens`` (estimated, then as
            reported) in any ``period`` seconds, or ``None`` for no budget.
        max_response_size: Largest reply body, in bytes after decompression,
            that a transport reads into memory (HTTP: ``request()``, not
            ``stream()``), or ``None`` for no limit.
        store: Where the limits keep their state: ``"memory://"`` (this client
            only) or a shared store's URL such as ``"redis://host:6379/0"``.
            Left out of the repr: it may hold a password.
        limit_key: The key the limits are shared under in the store, or
            ``None`` for the transport's default (its type and target).
        shared_concurrency: Most requests in flight at once across everyone
            sharing ``limit_key`` in the store, or ``None`` for no such limit.
        store_failure: ``"closed"`` (wait for an unreachable store within the
            deadline, then fail) or ``"open"`` (fall back to per-process limits).
        hedge_after: Send a second copy of a replayable call still waiting
            after this many seconds, or after this percentile of the client's
            recent latencies (``"p95"``); ``None``: no hedging.
        adaptive_concurrency: Whether the in-flight limit adapts, between 1 and
            ``max_connections``, to what the server shows (overload answers and
            timeouts cut it, rising latency stops its growth).
        circuit_breaker: When a key's breaker opens and for how long, or
            ``None`` for no breakers.
        retry_budget: ``(ratio, min_per_second, window)`` of the client's
            retry budget, or ``None`` for no budget.
    """

    timeout: float = 60.0
    retry_count: int = 3
    retry_delay: float = 1.0
    retry_max_delay: float = 30.0
    retry_after_max: float = 120.0
    max_connections: int = 100
    rate_limit: tuple[int, float] | None = None
    rate_burst: int = 1
    token_limit: tuple[int, float] | None = None
    max_response_size: int | None = 100 * 1024 * 1024
    store: str = field(default="memory://", repr=False)
    limit_key: str | None = None
    shared_concurrency: int | None = None
    store_failure: str = "closed"
    hedge_after: float | str | None = None
    adaptive_concurrency: bool = False
    circuit_breaker: BreakerSettings | None = None
    retry_budget: tuple[float, float, int] | None = _RETRY_BUDGET


_HINTS = {
    "timeout": "a positive number of seconds, e.g. 30.0",
    "retry_count": "a whole number >= 0, e.g. 3",
    "retry_delay": "a number of seconds >= 0, e.g. 1.0",
    "retry_max_delay": "a number of seconds >= 0, e.g. 30.0",
    "retry_after_max": "a number of seconds >= 0, e.g. 120.0",
    "max_connections": "a whole number >= 1, e.g. 100",
    "rate_limit": "requests per second (10) or a string like '10/s' or '600/m'",
    "rate_burst": "a whole number of requests >= 1 allowed at once under rate_limit, e.g. 1 "
    "(strictly paced) or 10",
    "token_limit": "tokens per second (1500) or a string like '90000/m'",
    "max_response_size": "a whole number of bytes >= 1, e.g. 104857600 (100 MiB), or None "
    "for no limit",
    "store": "a store URL: 'memory://' (the default) or e.g. 'redis://127.0.0.1:6379/0' "
    "(pip install 'pynector[redis]')",
    "limit_key": "a name the limits are shared under, e.g. 'openai-org-main' (never a secret), "
    "or None for the transport's default",
    "shared_concurrency": "a whole number >= 1 of requests in flight across every process "
    "sharing limit_key, or None for no such limit",
    "store_failure": "'closed' (wait for the store, then fail) or 'open' (fall back to "
    "per-process limits)",
    "hedge_after": "seconds > 0 (e.g. 0.5), a percentile of the client's recent latencies "
    "(e.g. 'p95' or 'p99'), or None for no hedging",
    "adaptive_concurrency": "True (the in-flight limit adapts between 1 and max_connections) "
    "or False",
    "circuit_breaker": "True (the defaults), False, or a mapping such as {'failure_ratio': 0.5, "
    "'minimum_calls': 20, 'window': 10, 'cooldown': 5, 'probes': 1}",
    "retry_budget": "True (the default: 20% of first attempts plus 3 per second over 10 s), "
    "False, or a mapping such as {'ratio': 0.2, 'min_per_second': 3, 'window': 10}",
}
# Keys whose value may be None ("none" or empty in the environment): no limit.
_NULLABLE = frozenset({"max_response_size", "limit_key", "shared_concurrency", "hedge_after"})
# Keys whose value is text, in config= as in the environment.
_TEXT = frozenset({"store", "limit_key", "store_failure"})
# Keys whose value is True or False in config= (words such as "true" in the environment).
_FLAGS = frozenset({"adaptive_concurrency"})
# Keys whose value is True, False or a mapping of settings (JSON in the environment).
_SWITCHES = frozenset({"circuit_breaker", "retry_budget"})
KEYS = tuple(_HINTS)


@cache
def _model() -> Any:
    # Built on first use: pydantic is not imported by ``import pynector``.
    from pydantic import BaseModel, ConfigDict, Field

    defaults = Config()

    class _Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        timeout: float = Field(defaults.timeout, gt=0, allow_inf_nan=False)
        retry_count: int = Field(defaults.retry_count, ge=0)
        retry_delay: float = Field(defaults.retry_delay, ge=0, allow_inf_nan=False)
        retry_max_delay: float = Field(defaults.retry_max_delay, ge=0, allow_inf_nan=False)
        retry_after_max: float = Field(defaults.retry_after_max, ge=0, allow_inf_nan=False)
        max_connections: int = Field(defaults.max_connections, ge=1)
        rate_limit: tuple[int, float] | None = None
        rate_burst: int = Field(defaults.rate_burst, ge=1)
        token_limit: tuple[int, float] | None = None
        max_response_size: int | None = Field(defaults.max_response_size, ge=1)
        store: str = defaults.store
        limit_key: str | None = None
        shared_concurrency: int | None = Field(None, ge=1)
        store_failure: str = defaults.store_failure
        hedge_after: float | str | None = None
        adaptive_concurrency: bool = defaults.adaptive_concurrency

    return _Settings


def _label(key: str, from_env: set[str]) -> str:
    return (
        f"environment variable {ENV_PREFIX}{key.upper()}" if key in from_env else f"config[{key!r}]"
    )


def _rate(value: object, key: str) -> tuple[int, float] | None:
    from .concurrency import parse_rate

    if isinstance(value, str):
        stripped = value.strip()
        if not stripped or stripped.lower() == "none":
            return None
        try:
            return parse_rate(float(stripped), key)
        except ValueError:
            return parse_rate(stripped, key)
    return None if value is None else parse_rate(value, key)


def _text(key: str, value: object, label: str) -> str:
    """Check a text setting: the store URL, the limit key or the failure mode."""
    from .redact import redact_url

    shown: object = value
    if isinstance(value, str):
        shown = redact_url(value)
        if "@" in shown and "://" not in shown:
            shown = "[redacted]@" + shown.rpartition("@")[2]  # credentials with no scheme
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{label}={shown!r} is invalid: expected {_HINTS[key]}.")
    value = value.strip()
    if key == "store":
        import re

        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
            raise ConfigurationError(
                f"{label}={shown!r} is invalid: it is not a URL with a scheme; "
                f"expected {_HINTS[key]}."
            )
    elif key == "store_failure":
        value = value.lower()
        if value not in ("closed", "open"):
            raise ConfigurationError(f"{label}={shown!r} is invalid: expected {_HINTS[key]}.")
    elif len(value) > 200 or not value.isprintable():
        raise ConfigurationError(
            f"{label}={shown!r} is invalid: at most 200 printable characters; "
            f"expected {_HINTS[key]}."
        )
    return value


def _switch(key: str, value: object, label: str, from_env: bool) -> Any:
    """``circuit_breaker`` or ``retry_budget``: True, False or a mapping, checked."""
    if from_env and isinstance(value, str):
        text = value.strip()
        if text.lower() in ("1", "true", "yes", "on"):
            value = True
        elif text.lower() in ("", "0", "false", "no", "off", "none"):
            value = False
        else:
            import json

            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigurationError(
                    f"{label}={text!r} is invalid: expected {_HINTS[key]} (JSON in the "
                    "environment)."
                ) from None
    if key == "circuit_breaker":
        from .concurrency import BreakerSettings

        try:
            return BreakerSettings.parse(value)
        except (ConfigurationError, TypeError) as exc:
            raise ConfigurationError(
                f"{label}={value!r} is invalid: {exc}; expected {_HINTS[key]}."
            ) from None
    if value is None or value is False:
        return None
    if value is True:
        return _RETRY_BUDGET
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{label}={value!r} is invalid: expected {_HINTS[key]}.")
    unknown = sorted(
        str(name) for name in value if name not in ("ratio", "min_per_second", "window")
    )
    if unknown:
        raise ConfigurationError(f"{label} has unknown keys {unknown}: expected {_HINTS[key]}.")
    from .concurrency import RetryBudget

    ratio, floor, window = _RETRY_BUDGET
    ratio = value.get("ratio", ratio)
    floor = value.get("min_per_second", floor)
    window = value.get("window", window)
    try:
        RetryBudget(ratio, floor, window)  # the same checks
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{label}={dict(value)!r} is invalid: {exc}; expected {_HINTS[key]}."
        ) from None
    return (float(ratio), float(floor), int(window))


def load_config(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Merge ``config`` over ``PYNECTOR_*`` variables over the defaults, and validate.

    Args:
        config: The ``config=`` mapping given to the client.
        environ: The environment to read (``os.environ`` when omitted).

    Raises:
        ConfigurationError: For an unknown key, or a value of the wrong type or range.
    """
    if config is not None and not isinstance(config, Mapping):
        raise ConfigurationError(
            f"config={config!r} must be a dict, e.g. config={{'timeout': 30.0, 'retry_count': 3}}"
        )
    config = dict(config or {})
    for key in config:
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"Unknown config key {key!r}.{hint} Valid keys: {', '.join(KEYS)}."
            )
    environ = os.environ if environ is None else environ
    from_env: set[str] = set()
    merged: dict[str, Any] = {}
    for key in KEYS:
        if key in config:
            merged[key] = config[key]
        elif (raw := environ.get(ENV_PREFIX + key.upper())) is not None:
            merged[key] = raw.strip()
            from_env.add(key)
    if not merged:
        return Config()
    switches = {
        key: _switch(key, merged.pop(key), _label(key, from_env), key in from_env)
        for key in _SWITCHES
        if key in merged
    }
    # Only numbers count as numbers in config=; strings come from the environment.
    for key, value in merged.items():
        if key in _NULLABLE and (
            value is None or (key in from_env and value.lower() in ("", "none"))
        ):
            merged[key] = None
        elif key in _TEXT:
            merged[key] = _text(key, value, _label(key, from_env))
        elif key == "hedge_after":
            from .concurrency import parse_hedge_after

            merged[key] = parse_hedge_after(value, _label(key, from_env))
        elif key in _FLAGS:
            if key not in from_env and not isinstance(value, bool):
                raise ConfigurationError(
                    f"{_label(key, from_env)}={value!r} is invalid: expected {_HINTS[key]}."
                )
        elif key in ("rate_limit", "token_limit"):
            try:
                merged[key] = _rate(value, key)
            except ConfigurationError:
                raise ConfigurationError(
                    f"{_label(key, from_env)}={value!r} is invalid: expected {_HINTS[key]}."
                ) from None
        elif key not in from_env and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ConfigurationError(
                f"{_label(key, from_env)}={value!r} is invalid: expected {_HINTS[key]}."
            )

    from pydantic import ValidationError

    try:
        settings = _model().model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0])
        raise ConfigurationError(
            f"{_label(key, from_env)}={merged.get(key)!r} is invalid: {first['msg']}; "
            f"expected {_HINTS[key]}."
        ) from None
    return Config(**settings.model_dump(), **switches)
