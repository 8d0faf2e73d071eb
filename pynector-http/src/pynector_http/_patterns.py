"""Which proxy a request goes through: URL patterns as httpx2's ``mounts`` keys match them.

The httpx2 engine hands the ``proxies`` mapping to httpx2 as ``mounts``; the
aiohttp engine routes with this module, which follows the same rules, so a
request takes the same route on both engines:

* ``"all://"``, ``"http://"``, ``"https://"``: every URL (of that scheme);
* ``"all://example.com"``: that host only; ``"all://*.example.com"``: its
  subdomains only; ``"all://*example.com"``: the host and its subdomains;
* ``"https://example.com:1234"``: that port only (a scheme's default port is
  the same as none);
* ``"all://192.168.0.0/16"``, ``"all://[fd00::]/8"``: addresses in a network;
* the most specific pattern wins: a port first, then an exact host, then a
  network (the smallest first), then longer hosts and schemes.

:func:`environment_proxies` reads ``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY`` and ``NO_PROXY`` into such patterns, as httpx2 does with
``trust_env=True``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["ProxyPattern", "environment_has_proxies", "environment_proxies", "route_table"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _port(scheme: str, port: int | None) -> int | None:
    """``None`` for a scheme's default port, as httpx2's URL normalises it."""
    return None if port is not None and _DEFAULT_PORTS.get(scheme) == port else port


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("/")[0])
    except ValueError:
        return False
    return True


class ProxyPattern:
    """One ``mounts`` key such as ``"all://*.example.com"``, matched against an origin.

    Raises:
        ValueError: If the pattern is not a URL form (``"http"`` for ``"http://"``)
            or names an invalid network.
    """

    __slots__ = ("_host_regex", "host", "network", "pattern", "port", "scheme")

    def __init__(self, pattern: str) -> None:
        if pattern and ":" not in pattern:
            raise ValueError(f"proxy keys are URL forms: {pattern!r} should be '{pattern}://'")
        parts = urlsplit(pattern)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        self.pattern = pattern
        self.scheme = "" if scheme == "all" else scheme
        self.port = _port(scheme, parts.port)
        self.network: IPNetwork | None = None
        prefix = parts.path.removeprefix("/")
        if prefix and _is_address(host):
            if not prefix.isdigit():
                raise ValueError(f"invalid network in {pattern!r}")
            self.network = ipaddress.ip_network(f"{host}/{prefix}", strict=False)
        self.host = "" if host == "*" else host
        self._host_regex: re.Pattern[str] | None = None
        if self.network is None and self.host:
            if self.host.startswith("*."):
                # *.example.com: www.example.com, not example.com
                self._host_regex = re.compile(f"^.+\\.{re.escape(self.host[2:])}$")
            elif self.host.startswith("*"):
                # *example.com: example.com and www.example.com (not wwwexample.com)
                self._host_regex = re.compile(f"^(.+\\.)?{re.escape(self.host[1:])}$")
            else:
                self._host_regex = re.compile(f"^{re.escape(self.host)}$")

    def matches(self, scheme: str, host: str, port: int) -> bool:
        """Whether a request to ``scheme://host:port`` falls under this pattern."""
        if self.scheme and self.scheme != scheme:
            return False
        host = host.lower()
        if self.network is not None:
            try:
                if ipaddress.ip_address(host) not in self.network:
                    return False
            except ValueError:
                return False
        elif self._host_regex is not None and not self._host_regex.match(host):
            return False
        return self.port is None or self.port == _port(scheme, port)

    @property
    def priority(self) -> tuple[int, int, int, int, int]:
        """Sort key: the most specific pattern first (httpx2's order)."""
        return (
            0 if self.port is not None else 1,
            1 if self.network is not None else 0 if self.host else 2,
            self.network.num_addresses if self.network is not None else 0,
            -len(self.host) if self.network is None else 0,
            -len(self.scheme),
        )

    def __repr__(self) -> str:
        return f"ProxyPattern({self.pattern!r})"


def route_table(mounts: Mapping[str, str | None]) -> list[tuple[ProxyPattern, str | None]]:
    """The patterns of ``mounts`` with their proxy URLs, the most specific first."""
    table = [(ProxyPattern(pattern), target) for pattern, target in mounts.items()]
    table.sort(key=lambda entry: entry[0].priority)
    return table


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def environment_has_proxies() -> bool:
    """Whether the environment names a proxy at all (cheap: no ``urllib.request`` import)."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)


def environment_proxies() -> dict[str, str | None]:
    """``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` as mount patterns."""
    from urllib.request import getproxies

    info = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if info.get(scheme):
            url = info[scheme]
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for raw in info.get("no", "").split(","):
        # As curl reads NO_PROXY (https://curl.se/libcurl/c/CURLOPT_NOPROXY.html).
        host = raw.strip()
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_address(host) and ":" not in host.split("/")[0]:
            mounts[f"all://{host}"] = None
        elif _is_address(host):
            address, slash, subnet = host.partition("/")
            mounts[f"all://[{address}]" + (f"/{subnet}" if slash else "")] = None
        elif (
            host.lower() == "localhost"
            or host.startswith("[")
            or (host.startswith("*.") and "/" not in host)
        ):
            mounts[f"all://{host}"] = None
        elif "/" not in host:
            mounts[f"all://*{host}"] = None
    for pattern in list(mounts):
        try:
            ProxyPattern(pattern)
        except ValueError:
            del mounts[pattern]  # as curl and Go: an entry that cannot be parsed is ignored
    return mounts
