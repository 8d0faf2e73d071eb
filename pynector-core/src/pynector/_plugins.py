"""The pluggy plugin manager, created on first use.

This is the only module that imports pluggy, and only when the manager is
first created (importing this module is cheap). The manager loads the
``pynector.plugins`` entry points that ``pynector._entrypoints`` finds and
``PYNECTOR_PLUGINS`` allows (unset: all; empty: none; a comma list of
entry-point names: only those), plus the plugins registered at run time. A
plugin that fails to import or to register is skipped, logged once at WARNING
on the ``pynector`` logger, and reported by
:func:`pynector.registry.available_plugins`.

The client calls :func:`hooks` on every request: after the first call it only
reads a module-level variable. A client created with ``plugins=[...]`` has a
:class:`PluginSet`: the installed plugins and its own, which no other client sees.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from ._entrypoints import (
    ENV_VAR,
    PLUGINS_GROUP,
    Entry,
    LoadError,
    broken_message,
    load,
    plan_plugins,
    reason,
)
from .errors import ConfigurationError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    import pluggy

__all__ = [
    "PluginSet",
    "PluginStatus",
    "hooks",
    "installed",
    "plugin_manager",
    "plugin_statuses",
    "register",
    "relay",
    "reset",
    "unregister",
]


class PluginStatus(NamedTuple):
    """One plugin and whether it is active; ``pynector.registry`` makes a ``PluginInfo`` of it."""

    name: str
    distribution: str | None
    version: str | None
    status: str


class _Installed:
    """One ``pynector.plugins`` entry point and what became of it."""

    __slots__ = ("entry", "plugin", "status")

    def __init__(self, entry: Entry, plugin: object | None, status: str) -> None:
        self.entry = entry
        self.plugin = plugin
        self.status = status


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_relay: pluggy.HookRelay | None = None
# The same hooks without telemetry plugins, for clients with enable_telemetry=False.
_quiet: Any = None
# The telemetry plugins' pynector_telemetry_active methods; None when some
# telemetry plugin has none (it is always active) or there is no telemetry plugin.
_checks: tuple[Callable[[], bool], ...] | None = None
_installed: list[_Installed] = []
# Run-time registrations by name; they survive reset() and are registered first.
_runtime: dict[str, object] = {}


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger("pynector")


def hooks(telemetry: bool = True) -> Any:
    """Return the hook relay, or ``None`` when no plugin is registered at all.

    The first call creates the plugin manager; later calls only read
    module-level variables, so the client may call this on every request::

        relay = hooks()
        if relay is not None:
            relay.pynector_retry_wait(info=info)

    Telemetry plugins (those with a true ``pynector_telemetry`` attribute) are
    left out when ``telemetry`` is false, and also when every one of them
    says, through its ``pynector_telemetry_active()`` method, that it has
    nowhere to send data right now (no tracing SDK configured): then a call
    costs what it costs without them.

    Args:
        telemetry: ``False`` for a client created with ``enable_telemetry=False``.

    Returns:
        The relay of every plugin, the relay without the telemetry plugins, or
        ``None`` when no plugin remains.
    """
    if _manager is None:
        plugin_manager()
    if telemetry:
        checks = _checks
        if checks is None:
            return _relay
        for active in checks:
            if active():
                return _relay
    return _quiet


def relay() -> Any:
    """The relay of every registered plugin, active or not (``None`` when there is none).

    For calls every plugin must see whatever its state, such as
    ``pynector_configure_telemetry`` (which is what makes a telemetry plugin active).
    """
    if _manager is None:
        plugin_manager()
    return _relay


def plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, creating and loading it on first use."""
    global _manager, _relay, _installed
    if _manager is None:
        with _lock:
            if _manager is None:
                manager, installed = _create()
                _installed = installed
                _refresh(manager)
                # Assigned last: hooks() treats a set _manager as "ready".
                _manager = manager
    return _manager


def reset() -> None:
    """Drop the plugin manager; installed plugins are loaded again on next use.

    Run-time registrations are kept and registered again with the new manager.
    """
    global _manager, _relay, _quiet, _checks, _installed
    with _lock:
        _manager = None
        _relay = _quiet = _checks = None
        _installed = []


def register(plugin: object, name: str | None) -> str:
    """Register a plugin at run time; see :func:`pynector.registry.register_plugin`."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationError(
            f"register_plugin(name={name!r}): the name must be a non-empty string, "
            "or None to use the plugin's own name"
        )
    with _lock:
        manager = plugin_manager()
        try:
            registered = _register(manager, plugin, None if name is None else name.strip())
        except LoadError as err:
            fix = err.fix or (
                "Fix the plugin's @pynector.hookimpl functions to match pynector.hookspecs."
            )
            raise ConfigurationError(
                f"register_plugin({plugin!r}) failed: {err.reason}. {fix}"
            ) from err.__cause__
        _runtime[registered] = plugin
        _refresh(manager)
    return registered


def unregister(plugin_or_name: object) -> None:
    """Unregister a plugin; see :func:`pynector.registry.unregister_plugin`."""
    with _lock:
        manager = plugin_manager()
        if isinstance(plugin_or_name, str):
            name: str | None = plugin_or_name
            plugin = manager.get_plugin(plugin_or_name)
        else:
            plugin = plugin_or_name
            name = manager.get_name(plugin_or_name)
        if plugin is None or name is None:
            registered = ", ".join(sorted(n for n, p in manager.list_name_plugin() if p)) or "none"
            raise ConfigurationError(
                f"No plugin {plugin_or_name!r} is registered, so there is nothing to "
                f"unregister (registered plugins: {registered}). Pass the plugin object "
                "or the name register_plugin() returned."
            )
        manager.unregister(plugin=plugin, name=name)
        _runtime.pop(name, None)
        _refresh(manager)


def plugin_statuses() -> list[PluginStatus]:
    """List installed and run-time plugins; see :func:`pynector.registry.available_plugins`."""
    with _lock:
        manager = plugin_manager()
        records: list[PluginStatus] = []
        from_entry_points: list[object] = []
        for item in _installed:
            status = item.status
            if item.plugin is not None:
                from_entry_points.append(item.plugin)
                if not manager.is_registered(item.plugin):
                    status = "unregistered: removed with unregister_plugin()"
            entry = item.entry
            records.append(PluginStatus(entry.name, entry.distribution, entry.version, status))
        records.extend(
            PluginStatus(name, None, None, "ok")
            for name, plugin in manager.list_name_plugin()
            if plugin is not None and not any(plugin is obj for obj in from_entry_points)
        )
    records.sort(key=lambda record: (record.name, record.distribution or ""))
    return records


class _WithoutTelemetry:
    """The hook relay less the telemetry plugins (pluggy subset hook callers)."""

    def __init__(self, manager: pluggy.PluginManager, telemetry: list[object]) -> None:
        self._manager = manager
        self._telemetry = telemetry

    def __getattr__(self, name: str) -> Any:
        caller = self._manager.subset_hook_caller(name, self._telemetry)
        setattr(self, name, caller)
        return caller


def _relays(
    manager: pluggy.PluginManager,
) -> tuple[Any, Any, tuple[Callable[[], bool], ...] | None]:
    """The relay of every plugin, the relay without telemetry plugins, and their checks."""
    plugins = manager.get_plugins()
    telemetry = [plugin for plugin in plugins if getattr(plugin, "pynector_telemetry", False)]
    checks = [getattr(plugin, "pynector_telemetry_active", None) for plugin in telemetry]
    every: Any = manager.hook if plugins else None
    active: tuple[Callable[[], bool], ...] | None = None
    if telemetry and all(callable(check) for check in checks):
        active = tuple(check for check in checks if callable(check))
    quiet: Any
    if len(telemetry) == len(plugins):
        quiet = None
    elif not telemetry:
        quiet = every
    else:
        quiet = _WithoutTelemetry(manager, telemetry)
    return every, quiet, active


def _pick(
    every: Any, quiet: Any, checks: tuple[Callable[[], bool], ...] | None, telemetry: bool
) -> Any:
    """The relay a call with ``telemetry`` goes through (see :func:`hooks`)."""
    if telemetry:
        if checks is None:
            return every
        for active in checks:
            if active():
                return every
    return quiet


def _refresh(manager: pluggy.PluginManager) -> None:
    """Recompute the relays after the set of plugins changed."""
    global _relay, _quiet, _checks
    _relay, _quiet, _checks = _relays(manager)


class _Joined:
    """Two relays called as one: the installed plugins' first, then a client's own."""

    def __init__(self, first: Any, second: Any) -> None:
        self._first = first
        self._second = second

    def __getattr__(self, name: str) -> Any:
        first = getattr(self._first, name)
        second = getattr(self._second, name)
        if first.spec is not None and first.spec.opts.get("firstresult"):

            def call_first(**kwargs: Any) -> Any:
                result = first(**kwargs)
                return second(**kwargs) if result is None else result

            caller: Any = call_first
        else:

            def call_both(**kwargs: Any) -> Any:
                return [*first(**kwargs), *second(**kwargs)]

            caller = call_both
        setattr(self, name, caller)
        return caller


class PluginSet:
    """The plugins one client's calls go through: the installed ones, then its own.

    Args:
        plugins: Plugin objects (or modules) for this client only, registered
            in a plugin manager of their own and checked as
            :func:`pynector.registry.register_plugin` checks them.

    Raises:
        ConfigurationError: For a plugin that is not valid.
    """

    __slots__ = ("_checks", "_every", "_joined", "_manager", "_quiet", "plugins", "relay")

    def __init__(self, plugins: Sequence[object] = ()) -> None:
        self.plugins = tuple(plugins)
        self._joined: dict[tuple[int, int], _Joined] = {}
        self._manager: pluggy.PluginManager | None = None
        if not self.plugins:
            self.relay: Callable[[bool], Any] = hooks
            return
        import pluggy

        from . import hookspecs

        manager = pluggy.PluginManager("pynector")
        manager.add_hookspecs(hookspecs)
        for plugin in self.plugins:
            try:
                _register(manager, plugin, None)
            except LoadError as err:
                fix = err.fix or (
                    "Fix the plugin's @pynector.hookimpl functions to match pynector.hookspecs."
                )
                raise ConfigurationError(
                    f"Pynector(plugins=[...]): the plugin {plugin!r} is not valid: "
                    f"{err.reason}. {fix}"
                ) from err.__cause__
        self._manager = manager
        self._every, self._quiet, self._checks = _relays(manager)
        self.relay = self._relay

    def __repr__(self) -> str:
        return f"<PluginSet own={len(self.plugins)}>"

    def _relay(self, telemetry: bool) -> Any:
        """The relay for one call: ``None`` when no plugin takes part."""
        installed_relay = hooks(telemetry)
        own = _pick(self._every, self._quiet, self._checks, telemetry)
        if own is None:
            return installed_relay
        if installed_relay is None:
            return own
        key = (id(installed_relay), id(own))
        joined = self._joined.get(key)
        if joined is None:
            joined = self._joined[key] = _Joined(installed_relay, own)
        return joined

    def everything(self) -> Any:
        """Every plugin, active or not (for ``pynector_configure_telemetry``)."""
        every = relay()
        own = getattr(self, "_every", None)
        if own is None:
            return every
        return own if every is None else _Joined(every, own)


_INSTALLED = PluginSet()


def installed() -> PluginSet:
    """The installed plugins (entry points and run-time registrations), shared by every client."""
    return _INSTALLED


def _create() -> tuple[pluggy.PluginManager, list[_Installed]]:
    import pluggy

    from . import hookspecs

    manager = pluggy.PluginManager("pynector")
    manager.add_hookspecs(hookspecs)
    for name, plugin in _runtime.items():
        manager.register(plugin, name=name)
    installed = [
        _Installed(planned.entry, None, planned.status)
        if planned.status is not None
        else _load_installed(manager, planned.entry)
        for planned in plan_plugins(_runtime, _logger())
    ]
    return manager, installed


def _load_installed(manager: pluggy.PluginManager, entry: Entry) -> _Installed:
    try:
        plugin = load(entry, need_callable=False)
        _register(manager, plugin, entry.name)
    except LoadError as err:
        _logger().warning(
            "Skipping a pynector plugin. %s Or leave it out with %s=<the plugins you want>.",
            broken_message("plugin", PLUGINS_GROUP, entry, err.reason),
            ENV_VAR,
        )
        return _Installed(entry, None, f"error: {err.reason}")
    return _Installed(entry, plugin, "ok")


def _register(manager: pluggy.PluginManager, plugin: object, name: str | None) -> str:
    """Register and validate one plugin; on failure leave the manager unchanged.

    Raises:
        LoadError: Chained to pluggy's exception, if there is one.
    """
    import pluggy

    if isinstance(plugin, type):
        raise LoadError(
            f"{plugin.__qualname__} is a class, not a plugin object",
            fix=f"Register an instance, register_plugin({plugin.__qualname__}()), or a module.",
        )
    try:
        registered = manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        if manager.is_registered(plugin):  # older pluggy may register part of it
            manager.unregister(plugin)
        raise LoadError(reason(exc)) from exc
    except ValueError as exc:
        registered_as = manager.get_name(plugin)
        if registered_as is not None:
            raise LoadError(
                f"this plugin is already registered as {registered_as!r}",
                fix=f"It is active already; to rename it, unregister_plugin({registered_as!r}) "
                "first.",
            ) from exc
        raise LoadError(
            f"a plugin named {name!r} is already registered",
            fix=f"Pass another name=, or unregister_plugin({name!r}) first to replace it.",
        ) from exc
    if registered is None:  # pragma: no cover - pynector never blocks names
        raise LoadError(f"the plugin name {name!r} is blocked")
    unknown = _unknown_hooks(manager, plugin)
    if unknown:
        manager.unregister(plugin=plugin, name=registered)
        raise LoadError(unknown)
    return registered


def _unknown_hooks(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """Describe the plugin's hook implementations that match no specification."""
    from difflib import get_close_matches

    known = [name for name, caller in vars(manager.hook).items() if caller.has_spec()]
    problems = []
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue
        close = get_close_matches(caller.name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"unknown hook {caller.name!r}{hint}")
    if not problems:
        return None
    return "; ".join(problems) + "; the hooks are listed in pynector.hookspecs"
