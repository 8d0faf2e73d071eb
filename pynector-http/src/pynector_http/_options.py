"""Checking the transport's options; the engine-neutral settings both engines read."""

from __future__ import annotations

import importlib.util
import math
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from pynector.errors import ConfigurationError
from pynector.redact import redact_url

from ._tls import default_ssl_context, unverified_ssl_context

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_TIMEOUTS",
    "ENGINES",
    "Timeouts",
    "bool_option",
    "check_base_url",
    "check_engine",
    "check_max_connections",
    "check_max_response_size",
    "check_proxies",
    "check_timeout",
    "check_verify",
    "require_module",
    "ssl_context",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds allowed to open a connection when ``timeout`` is not given."""

DEFAULT_MAX_RESPONSE_SIZE = 100 * 1024 * 1024
"""Largest body ``request()`` reads, in bytes after decompression (100 MiB)."""

ENGINES = ("auto", "aiohttp", "httpx2")
"""The values of the ``engine`` option."""


class Timeouts(NamedTuple):
    """Per-phase limits in seconds (``None``: no limit), as httpx2 names the phases."""

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None


DEFAULT_TIMEOUTS = Timeouts(DEFAULT_CONNECT_TIMEOUT, None, None, None)
"""10 s to connect, no other limit: the client's deadline bounds every call."""

_TIMEOUT_PARTS = Timeouts._fields
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_PROXY_KEYS = {"http": "http://", "https": "https://", "all": "all://"}


def require_module(module: str, option: str, install: str) -> None:
    """Raise a :class:`ConfigurationError` with the install command if ``module`` is missing."""
    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"{option} needs the {module!r} package, which is not installed. "
            f"Install it with: pip install {install}"
        )


def check_base_url(base_url: object) -> httpx2.URL | None:
    """Validate ``base_url``: an absolute http(s) URL, or ``None``."""
    if base_url is None:
        return None
    import httpx2  # only now: a command that needs no base_url starts without it

    example = "base_url='https://api.example.com'"
    if not isinstance(base_url, str) or not base_url:
        raise ConfigurationError(f"base_url={base_url!r} must be a URL string, e.g. {example}")
    bad = next((char for char in base_url if char < " " or char == "\x7f"), None)
    if bad is not None:
        raise ConfigurationError(
            f"base_url={redact_url(base_url)!r} contains the control character {bad!r}: a URL "
            f"may not contain CR/LF or other control characters; remove it, e.g. {example}"
        )
    try:
        urlsplit(base_url).port  # noqa: B018  (a port out of range raises here)
    except ValueError as exc:
        raise ConfigurationError(
            f"base_url={redact_url(base_url)!r} has an invalid port ({exc}); a port is a "
            f"number from 1 to 65535, e.g. base_url='https://api.example.com:8443'"
        ) from None
    try:
        url = httpx2.URL(base_url)
    except httpx2.InvalidURL as exc:
        raise ConfigurationError(
            f"base_url={redact_url(base_url)!r} is not a valid URL ({exc}); e.g. {example}"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url={redact_url(base_url)!r} must be an absolute http:// or https:// URL, "
            f"e.g. {example}"
        )
    return url


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name}={value!r} is invalid: it must be a positive number of seconds or None"
        )
    return float(value)


def check_timeout(timeout: object) -> Timeouts:
    """Turn the ``timeout`` option into per-phase timeouts.

    A number applies to every phase; a mapping sets phases by name
    (``connect``, ``read``, ``write``, ``pool``); ``None`` disables them all.
    """
    if timeout is None or (isinstance(timeout, int | float) and not isinstance(timeout, bool)):
        seconds = _seconds("timeout", timeout)
        return Timeouts(seconds, seconds, seconds, seconds)
    if isinstance(timeout, Mapping):
        unknown = [key for key in timeout if key not in _TIMEOUT_PARTS]
        if unknown:
            raise ConfigurationError(
                f"timeout has unknown phase(s) {unknown}; use connect, read, write and pool, "
                "e.g. timeout={'connect': 5.0, 'read': 30.0}"
            )
        parts: dict[str, float | None] = {
            "connect": DEFAULT_CONNECT_TIMEOUT,
            "read": None,
            "write": None,
            "pool": None,
        }
        for key, value in timeout.items():
            parts[key] = _seconds(f"timeout[{key!r}]", value)
        return Timeouts(**parts)
    raise ConfigurationError(
        f"timeout={timeout!r} is invalid: pass seconds (timeout=30.0), None, or a mapping "
        "such as timeout={'connect': 5.0, 'read': 30.0}"
    )


def check_verify(verify: object) -> bool | str | ssl.SSLContext:
    """Validate ``verify``: ``True``, ``False``, a CA bundle path or an ``SSLContext``."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    if isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        if not os.path.exists(path):
            raise ConfigurationError(
                f"verify={path!r}: no such CA bundle file or directory; pass the path of a "
                "PEM file, an ssl.SSLContext, or True for the system's trusted CAs"
            )
        return str(path)
    raise ConfigurationError(
        f"verify={verify!r} is invalid: use True (default), a CA bundle path, an "
        "ssl.SSLContext, or False (never in production)"
    )


def ssl_context(verify: bool | str | ssl.SSLContext, trust_env: bool) -> ssl.SSLContext:
    """Build the one SSL context shared by every connection of a transport.

    A context the caller passed is used as it is: it may be shared with other
    code, so nothing here changes it.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = default_ssl_context(trust_env) if verify else unverified_ssl_context()
    # aiohttp speaks HTTP/1.1 only and offers no protocol itself: without this an
    # HTTP/2 server could pick h2. (httpx2 sets the protocols it speaks on each
    # connection it opens.)
    context.set_alpn_protocols(["http/1.1"])
    return context


def check_max_connections(value: object) -> int | None:
    """Validate ``max_connections``: a whole number >= 1, or ``None`` for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_connections={value!r} is invalid: it must be a whole number >= 1 "
            "(or None for no limit), e.g. max_connections=100"
        )
    return value


def check_max_response_size(value: object) -> int | None:
    """Validate ``max_response_size``: a whole number of bytes >= 1, or ``None`` for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_response_size={value!r} is invalid: it must be a whole number of bytes >= 1 "
            "(or None for no limit), e.g. max_response_size=104857600 (100 MiB)"
        )
    return value


def _check_proxy_url(key: str, url: object) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str):
        raise ConfigurationError(
            f"proxies[{key!r}] must be a proxy URL string such as 'http://proxy:8080', "
            f"got {type(url).__name__}"
        )
    import httpx2

    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL as exc:
        raise ConfigurationError(
            f"proxies[{key!r}]={redact_url(url)!r} is invalid ({exc})"
        ) from None
    if parsed.scheme not in _PROXY_SCHEMES or not parsed.host:
        raise ConfigurationError(
            f"proxies[{key!r}]={redact_url(url)!r} must be an http://, https:// or socks5:// "
            "proxy URL, e.g. 'http://proxy.example.com:8080'"
        )
    if parsed.scheme.startswith("socks"):
        require_module("socksio", "a socks5:// proxy", "'httpx2[socks]'")
    return url


def check_proxies(proxies: object) -> dict[str, str | None]:
    """Normalise ``proxies`` into httpx2 mount patterns mapped to proxy URLs.

    Accepts one URL (every request goes through it) or a mapping whose keys
    are ``"http"``, ``"https"``, ``"all"`` or httpx2 URL patterns
    (``"all://*.example.com"``); a ``None`` value means "no proxy" there.
    """
    if proxies is None:
        return {}
    if isinstance(proxies, str):
        return {"all://": _check_proxy_url("all", proxies)}
    if not isinstance(proxies, Mapping):
        raise ConfigurationError(
            f"proxies={type(proxies).__name__} is invalid: pass a URL such as "
            "proxies='http://proxy:8080' or a mapping such as "
            "proxies={'http': 'http://proxy:8080', 'https': 'http://proxy:8080'}"
        )
    mounts: dict[str, str | None] = {}
    for key, url in proxies.items():
        if not isinstance(key, str) or (key not in _PROXY_KEYS and "://" not in key):
            raise ConfigurationError(
                f"proxies has the key {key!r}; use 'http', 'https', 'all' or a URL pattern "
                "such as 'all://*.example.com'"
            )
        mounts[_PROXY_KEYS.get(key, key)] = _check_proxy_url(key, url)
    return mounts


def check_engine(engine: object, *, http2: bool, proxies: Mapping[str, str | None]) -> str:
    """Validate ``engine`` against the other options; return it.

    ``"aiohttp"`` needs the ``aiohttp`` package and cannot do HTTP/2 or SOCKS
    proxies; whether the event loop is asyncio is only known at first use.
    """
    if engine not in ENGINES:
        raise ConfigurationError(
            f"engine={engine!r} is invalid: use engine='auto' (the default: aiohttp on "
            "asyncio when it is installed, else httpx2), engine='aiohttp' or engine='httpx2'"
        )
    if engine == "aiohttp":
        if http2:
            raise ConfigurationError(
                "http2=True needs engine='httpx2' (aiohttp speaks HTTP/1.1 only); pass "
                "engine='httpx2', or engine='auto', which picks httpx2 for HTTP/2"
            )
        if any(url is not None and url.startswith("socks") for url in proxies.values()):
            raise ConfigurationError(
                "a socks5:// proxy needs engine='httpx2' (aiohttp has no SOCKS support); pass "
                "engine='httpx2', or engine='auto', which picks httpx2 for SOCKS proxies"
            )
        require_module("aiohttp", "engine='aiohttp'", "'pynector-http[aiohttp]'")
    return str(engine)


def bool_option(name: str, value: Any) -> bool:
    """Validate a boolean option."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name}={value!r} is invalid: it must be True or False")
    return value
