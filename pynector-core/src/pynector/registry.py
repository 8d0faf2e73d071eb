"""Transport and plugin discovery.

Transports are found through the ``pynector.transports`` entry-point group: the
entry point's name is the ``transport_type`` and its value a factory that the
client calls with the transport options. Plugins (pluggy hook implementations)
are found through the ``pynector.plugins`` group. A package joins either group
with one ``pyproject.toml`` table::

    [project.entry-points."pynector.transports"]
    echo = "pynector_echo:EchoTransport"

Rules:

* Nothing is imported until it is needed. Entry-point metadata is read once and
  cached by the entry-point loader, ``pynector._entrypoints`` (:func:`clear_cache`
  forgets it); :func:`resolve_transport` imports
  only the selected transport's module; importing this module does not import
  pluggy.
* Names are matched case-insensitively, after stripping surrounding whitespace:
  ``"HTTP "`` resolves the ``http`` transport.
* A run-time :func:`register_transport` wins over an installed entry point;
  ``replace=True`` is needed only to override an earlier run-time registration.
* An installed transport or plugin that fails to load breaks only itself: the
  error (a :class:`~pynector.errors.PluginError` chained to the original
  exception) is raised when it is used, and listings report it in ``status``.
  This holds for any exception at import, ``SystemExit`` from a ``sys.exit()``
  included; only ``KeyboardInterrupt`` goes through.
* The same entry point seen twice (an editable install next to a regular one)
  is not a conflict; two distributions claiming one name are, and the error
  names both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._entrypoints import (
    STORES_GROUP,
    TRANSPORTS_GROUP,
    Entry,
    LoadError,
    broken_message,
    clear,
    conflict_status,
    entries,
    load,
    load_factory,
    origins,
)
from ._plugins import PluginSet, plugin_statuses, register, reset, unregister
from ._plugins import hooks as _plugin_hooks
from ._plugins import installed as _installed
from .errors import ConfigurationError, PluginError

if TYPE_CHECKING:
    from .concurrency import Store

__all__ = [
    "PluginInfo",
    "TransportFactory",
    "TransportInfo",
    "available_plugins",
    "available_transports",
    "clear_cache",
    "describe_transport",
    "hooks",
    "installed_plugins",
    "open_store",
    "register_plugin",
    "register_transport",
    "resolve_transport",
    "unregister_plugin",
    "unregister_transport",
]

TransportFactory = Callable[..., Any]
"""A callable that takes the transport options and returns a transport (any of the forms
of :mod:`pynector.transport.protocol`)."""

# transport_type -> the distribution that provides it, for install hints.
_FIRST_PARTY = {"http": "pynector-http", "sdk": "pynector-sdk"}


@dataclass(frozen=True, slots=True)
class TransportInfo:
    """One transport known to pynector, as :func:`available_transports` reports it.

    Attributes:
        name: The ``transport_type`` that selects it (lower case).
        distribution: The installed distribution that provides it, or ``None``
            for a run-time :func:`register_transport`.
        version: The distribution's version, or ``None`` for a run-time registration.
        status: ``"ok"``, or one line saying why it cannot be used.
    """

    name: str
    distribution: str | None
    version: str | None
    status: str


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One plugin known to pynector, as :func:`available_plugins` reports it.

    Attributes:
        name: The plugin's name (its entry-point name, or the name it was
            registered under at run time).
        distribution: The installed distribution that provides it, or ``None``
            for a run-time :func:`register_plugin`.
        version: The distribution's version, or ``None`` for a run-time registration.
        status: ``"ok"``, or one line saying why it is not active.
    """

    name: str
    distribution: str | None
    version: str | None
    status: str


_runtime_transports: dict[str, TransportFactory] = {}
_loaded_transports: dict[str, TransportFactory] = {}


def _normalize(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{what} must be a non-empty string such as 'http', got {name!r}")
    return name.strip().lower()


def hooks(telemetry: bool = True) -> Any:
    """Return the relay that calls every plugin's hooks, or ``None`` when there is none.

    For transports: call a hook on the relay only when it is not ``None``, so a
    call costs nothing while no plugin is registered. After the first call
    (which loads the installed plugins) this only reads a module variable::

        relay = hooks()
        if relay is not None:
            relay.pynector_headers(headers=headers)

    Args:
        telemetry: ``False`` leaves out the telemetry plugins (for a client created
            with ``enable_telemetry=False``). They are also left out while every one
            of them reports, through its ``pynector_telemetry_active()`` method,
            that it has nowhere to send data.

    Returns:
        The pluggy hook relay (one attribute per hook in :mod:`pynector.hookspecs`),
        or ``None`` when no plugin remains.
    """
    return _plugin_hooks(telemetry)


def installed_plugins() -> PluginSet:
    """The installed plugins (entry points and run-time registrations), as a client sees them.

    A transport used without a client passes this to
    :meth:`pynector.call.Call.standalone` so that its calls get the plugins'
    headers (the trace context), as a client's calls do.
    """
    return _installed()


def _load_factory(key: str, entry: Entry) -> TransportFactory:
    factory: TransportFactory = load_factory(entry)
    _loaded_transports[key] = factory
    return factory


def register_transport(name: str, factory: TransportFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the transport selected by ``transport_type=name``.

    A run-time registration wins over an installed entry point of the same name.

    Args:
        name: The ``transport_type``; matched case-insensitively after
            stripping surrounding whitespace.
        factory: Called with the transport options; returns a ``Transport``
            (a ``Transport`` subclass itself is a fine factory).
        replace: Allow overriding an earlier run-time registration of ``name``.

    Raises:
        ConfigurationError: If ``name`` is empty, ``factory`` is not callable,
            or ``name`` was already registered at run time and ``replace`` is false.
    """
    key = _normalize(name, "register_transport(name=...)")
    candidate: object = factory
    if not callable(candidate):
        raise ConfigurationError(
            f"register_transport({key!r}, {factory!r}): the factory must be callable, "
            f"got a {type(candidate).__name__}; pass a Transport class or a function "
            "that returns a Transport"
        )
    if key in _runtime_transports and not replace:
        raise ConfigurationError(
            f"A transport named {key!r} is already registered at run time; pass "
            f"replace=True to override it: register_transport({key!r}, factory, replace=True)"
        )
    _runtime_transports[key] = factory


def unregister_transport(name: str) -> None:
    """Remove a run-time registration made with :func:`register_transport`.

    An installed entry point of the same name, if any, is selected again.

    Args:
        name: The name it was registered under (case-insensitive).

    Raises:
        ConfigurationError: If no transport of that name was registered at run time.
    """
    key = _normalize(name, "unregister_transport(name=...)")
    if _runtime_transports.pop(key, None) is not None:
        return
    installed = entries(TRANSPORTS_GROUP).get(key)
    if installed:
        dists = " and ".join(entry.origin for entry in installed)
        raise ConfigurationError(
            f"The transport {key!r} was not registered at run time: it comes from {dists}. "
            f"Uninstall that distribution to remove it "
            f"(pip uninstall {installed[0].distribution or '<distribution>'})"
        )
    registered = ", ".join(sorted(_runtime_transports)) or "none"
    raise ConfigurationError(
        f"No transport named {key!r} was registered at run time, so there is nothing to "
        f"unregister (registered at run time: {registered})"
    )


def resolve_transport(name: str) -> TransportFactory:
    """Return the factory for ``transport_type=name``, importing it if needed.

    A run-time registration is preferred; otherwise the installed entry point of
    that name is imported (only that one) and cached.

    Args:
        name: The ``transport_type``; matched case-insensitively after
            stripping surrounding whitespace.

    Returns:
        The factory: call it with the transport options to get a ``Transport``.

    Raises:
        ConfigurationError: If no transport has that name (the message lists the
            installed ones, suggests the closest, and for ``http`` and ``sdk``
            gives the ``pip install`` that provides it), or if two distributions
            claim it.
        PluginError: If the installed transport fails to import or does not name
            a callable; chained to the original exception.
    """
    key = _normalize(name, "transport_type")
    factory = _runtime_transports.get(key)
    if factory is None:
        factory = _loaded_transports.get(key)
    if factory is not None:
        return factory
    claimants = entries(TRANSPORTS_GROUP).get(key)
    if not claimants:
        raise ConfigurationError(_unknown_transport_message(key))
    if len(claimants) > 1:
        raise ConfigurationError(
            f"The transport {key!r} is claimed by more than one installed distribution: "
            f"{origins(claimants)}. Uninstall the one you do not want "
            f"(pip uninstall {claimants[-1].distribution or '<distribution>'}), or choose "
            f"one at run time with register_transport({key!r}, factory)."
        )
    return _load_factory(key, claimants[0])


# The stores pynector's own distributions provide, by URL scheme.
_FIRST_PARTY_STORES = {
    "redis": "pynector-redis",
    "rediss": "pynector-redis",
    "unix": "pynector-redis",
}


def open_store(url: str) -> Store:
    """Make the store for ``config["store"] = url``; it connects on first use.

    ``memory://`` is built in; every other scheme is looked up in the
    ``pynector.stores`` entry-point group (``pynector-redis`` provides
    ``redis``, ``rediss`` and ``unix``), and its factory is called with the URL.

    Raises:
        ConfigurationError: If no installed store handles the URL's scheme (the
            message names the ``pip install`` that provides it), or two claim it.
        PluginError: If the store's entry point fails to import.
    """
    from .concurrency import MEMORY_URL, MemoryStore
    from .redact import redact_url

    scheme, sep, rest = url.partition("://")
    scheme = scheme.strip().lower()
    shown = redact_url(url)
    if not sep:
        raise ConfigurationError(
            f"store URL {shown!r} has no scheme: use 'memory://' or e.g. 'redis://127.0.0.1:6379/0'"
        )
    if scheme == "memory":
        if rest.strip("/"):
            raise ConfigurationError(
                f"store URL {shown!r}: the memory store takes no address; use {MEMORY_URL!r}"
            )
        return MemoryStore()
    claimants = entries(STORES_GROUP).get(scheme)
    if not claimants:
        dist = _FIRST_PARTY_STORES.get(scheme)
        fix = (
            f"install it with: pip install {dist} (or pip install 'pynector[redis]')"
            if dist
            else f"install a package that provides {scheme}:// stores (entry-point group "
            f"{STORES_GROUP}), or use 'memory://'"
        )
        installed = ", ".join(["memory", *sorted(entries(STORES_GROUP))])
        raise ConfigurationError(
            f"no store is installed for {scheme}:// URLs (config['store']={shown!r}; "
            f"installed store schemes: {installed}); {fix}"
        )
    if len(claimants) > 1:
        raise ConfigurationError(
            f"the store scheme {scheme!r} is claimed by more than one installed distribution: "
            f"{origins(claimants)}. Uninstall the one you do not want "
            f"(pip uninstall {claimants[-1].distribution or '<distribution>'})."
        )
    try:
        factory = load(claimants[0], need_callable=True)
    except LoadError as err:
        raise PluginError(
            broken_message("store", STORES_GROUP, claimants[0], err.reason)
        ) from err.__cause__
    store: Store = factory(url)
    return store


def describe_transport(name: str) -> str:
    """Say where the transport ``name`` comes from, for messages.

    Imports nothing: only the entry-point metadata is read.

    Args:
        name: A ``transport_type`` (case-insensitive).

    Returns:
        ``"pynector-echo 0.1.0, entry point pynector_echo:EchoTransport"`` for an
        installed transport, ``"registered at run time"`` for a
        :func:`register_transport`, ``"not installed"`` otherwise.
    """
    key = _normalize(name, "transport_type")
    if key in _runtime_transports:
        return "registered at run time"
    claimants = entries(TRANSPORTS_GROUP).get(key)
    if not claimants:
        return "not installed"
    return ", ".join(f"{c.origin}, entry point {c.value}" for c in claimants)


def _unknown_transport_message(key: str) -> str:
    from difflib import get_close_matches

    installed = sorted(set(_runtime_transports) | set(entries(TRANSPORTS_GROUP)))
    known = installed + [name for name in _FIRST_PARTY if name not in installed]
    close = [key] if key in _FIRST_PARTY else get_close_matches(key, known, n=1)
    parts = [f"Unknown transport_type {key!r}."]
    if close and close[0] != key:
        parts.append(f"Did you mean {close[0]!r}?")
    if installed:
        parts.append(f"Installed transports: {', '.join(installed)}.")
    else:
        parts.append("No transport is installed.")
    if close and close[0] not in installed:
        dist = _FIRST_PARTY[close[0]]
        parts.append(
            f"The {close[0]!r} transport is provided by {dist}; install it with: pip install {dist}"
        )
    elif not close:
        parts.append(
            f"Install the package that provides {key!r}, pass transport=YourTransport() "
            f"to Pynector, or register a factory with "
            f"pynector.registry.register_transport({key!r}, factory)."
        )
    return " ".join(parts)


def available_transports() -> list[TransportInfo]:
    """List every transport pynector can see, with whether it works.

    Each installed entry point is imported to compute its status, so this is
    for diagnostics (``pynector transports``), not for a hot path. It never
    raises: a broken transport is reported with its ``status``. A run-time
    registration hides the installed entry point of the same name; when two
    distributions claim one name, both are listed with a ``"conflict: ..."`` status.

    Returns:
        The records, sorted by name (then distribution).
    """
    records = [TransportInfo(name, None, None, "ok") for name in _runtime_transports]
    for name, claimants in entries(TRANSPORTS_GROUP).items():
        if name in _runtime_transports:
            continue
        if len(claimants) > 1:
            records.extend(
                TransportInfo(name, c.distribution, c.version, conflict_status(c, claimants))
                for c in claimants
            )
            continue
        entry = claimants[0]
        status = "ok"
        if name not in _loaded_transports:
            try:
                _loaded_transports[name] = load(entry, need_callable=True)
            except LoadError as err:
                status = f"error: {err.reason}"
        records.append(TransportInfo(name, entry.distribution, entry.version, status))
    records.sort(key=lambda record: (record.name, record.distribution or ""))
    return records


def available_plugins() -> list[PluginInfo]:
    """List every plugin pynector can see, with whether it is active.

    Loads the plugin manager (and so the installed plugins) if that has not
    happened yet. Never raises: a plugin that failed to load is reported with
    ``status`` ``"error: ..."``, one left out by ``PYNECTOR_PLUGINS`` with
    ``"disabled: ..."``.

    Returns:
        The records, sorted by name (then distribution).
    """
    return [PluginInfo(*status) for status in plugin_statuses()]


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin (a module or object with ``@pynector.hookimpl`` functions).

    Takes effect at once for every client. ``PYNECTOR_PLUGINS`` does not apply
    to run-time registrations.

    Args:
        plugin: The plugin module or object.
        name: The name to register it under; defaults to its ``__name__`` (or
            a generated one).

    Returns:
        The name it was registered under (pass it to :func:`unregister_plugin`).

    Raises:
        ConfigurationError: If the plugin or the name is already registered, or a
            hook implementation does not match its specification (the message
            names the plugin, the hook and the cause).
    """
    return register(plugin, name)


def unregister_plugin(plugin_or_name: object) -> None:
    """Unregister a plugin, given the plugin object or its name.

    Works for installed plugins too (until :func:`clear_cache` reloads them).

    Args:
        plugin_or_name: The plugin object, or the name it is registered under.

    Raises:
        ConfigurationError: If no such plugin is registered.
    """
    unregister(plugin_or_name)


def clear_cache() -> None:
    """Forget what was read from installed distributions, so new ones are seen.

    Drops the cached entry-point metadata, the transport factories imported from
    it, and the plugin manager (installed plugins are loaded again on next use).
    Run-time registrations of transports and plugins are kept. Meant for tests
    and for programs that install distributions while running.
    """
    clear()
    _loaded_transports.clear()
    reset()
