"""The entry-point loader: the one place that reads installed distributions.

Every group is read here: ``pynector.transports`` and ``pynector.stores`` (for
:mod:`pynector.registry`) and ``pynector.plugins`` (for the plugin manager in
``pynector._plugins``). The
rules they share:

* Lazy and cached: ``importlib.metadata`` is imported on first use (it costs
  about 20 ms), each group is read once, and :func:`clear` forgets what was read.
* The same entry point seen twice (an editable install next to a regular one)
  is one entry; two distributions claiming one name are a conflict, kept as
  several claimants so that the caller can name them all.
* :func:`load` isolates a broken entry point: any exception at import,
  ``SystemExit`` included, becomes a :class:`LoadError`; only
  ``KeyboardInterrupt`` goes through.
* ``PYNECTOR_PLUGINS`` selects the installed plugins (:func:`plan_plugins`).

This module knows neither the transport registry nor pluggy: it imports only
the standard library and :mod:`pynector.errors`. ``import pynector`` imports it
(through the plugin manager), so its records are named tuples, which cost a
fraction of a dataclass to define.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import PluginError

if TYPE_CHECKING:
    import logging
    from importlib.metadata import EntryPoint

__all__ = [
    "ENV_VAR",
    "PLUGINS_GROUP",
    "STORES_GROUP",
    "TRANSPORTS_GROUP",
    "Entry",
    "LoadError",
    "PlannedPlugin",
    "broken_message",
    "clear",
    "conflict_status",
    "entries",
    "load",
    "load_factory",
    "origins",
    "plan_plugins",
    "reason",
]

TRANSPORTS_GROUP = "pynector.transports"
PLUGINS_GROUP = "pynector.plugins"
STORES_GROUP = "pynector.stores"
ENV_VAR = "PYNECTOR_PLUGINS"


class Entry(NamedTuple):
    """One entry point of one installed distribution.

    Attributes:
        name: The entry point's name, stripped and lower-cased.
        value: What it points at, ``"pynector_echo:EchoTransport"``.
        distribution: The distribution that declares it, if known.
        version: That distribution's version, if known.
        entry_point: The ``importlib.metadata`` entry point itself.
    """

    name: str
    value: str
    distribution: str | None
    version: str | None
    entry_point: EntryPoint

    @property
    def origin(self) -> str:
        """``"pynector-echo 0.1.0"``: the distribution and version, for messages."""
        if self.distribution is None:
            return "an unknown distribution"
        return f"{self.distribution} {self.version}"

    def load(self) -> Any:
        """Import the entry point's module and return the object it names."""
        return self.entry_point.load()


class LoadError(Exception):
    """A transport or plugin failed to load or register.

    ``reason`` is one line, ``fix`` what to do about it when the caller cannot
    say it better; the original exception, if any, is chained as the cause.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


_groups: dict[str, dict[str, list[Entry]]] = {}


def entries(group: str) -> dict[str, list[Entry]]:
    """Return the group's entry points by normalized name, read once and cached.

    ``importlib.metadata`` yields each distribution once (the first found on
    ``sys.path``), so a second installation of the same distribution (an
    editable install next to a regular one) is not a conflict; an identical
    entry point reported twice by some other finder is dropped here. Several
    entries left under one name are distributions in conflict.

    Args:
        group: :data:`TRANSPORTS_GROUP` or :data:`PLUGINS_GROUP`.

    Returns:
        The claimants of each name, in the order ``importlib.metadata`` found them.
    """
    cached = _groups.get(group)
    if cached is not None:
        return cached
    from importlib import metadata  # costs ~20 ms: only when discovery is needed

    by_name: dict[str, list[Entry]] = {}
    for entry_point in metadata.entry_points(group=group):
        dist = entry_point.dist
        entry = Entry(
            name=entry_point.name.strip().lower(),
            value=entry_point.value,
            distribution=None if dist is None else dist.name,
            version=None if dist is None else dist.version,
            entry_point=entry_point,
        )
        claimants = by_name.setdefault(entry.name, [])
        if not any(
            (c.distribution, c.value) == (entry.distribution, entry.value) for c in claimants
        ):
            claimants.append(entry)
    _groups[group] = by_name
    return by_name


def clear() -> None:
    """Forget the entry points read so far, so newly installed ones are seen."""
    _groups.clear()
    importlib.invalidate_caches()  # lets importlib.metadata see new sys.path entries


def reason(exc: BaseException) -> str:
    """One line describing an exception: ``"ImportError: No module named 'x'"``."""
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def origins(claimants: list[Entry]) -> str:
    """``"a 1.0 (a:T) and b 2.0 (b:T)"``: every claimant of one name, for messages."""
    return " and ".join(f"{c.origin} ({c.value})" for c in claimants)


def conflict_status(entry: Entry, claimants: list[Entry]) -> str:
    """The one-line status of one claimant of a name several distributions claim."""
    others = ", ".join(c.origin for c in claimants if c is not entry)
    return f"conflict: {entry.name!r} is also claimed by {others}"


def broken_message(kind: str, group: str, entry: Entry, why: str) -> str:
    """The message for an entry point that failed to load, with how to fix it.

    Args:
        kind: ``"transport"`` or ``"plugin"``.
        group: The entry point's group.
        entry: The entry point.
        why: One line, from :func:`reason` or a :class:`LoadError`.
    """
    dist = entry.distribution or "<distribution>"
    return (
        f"The {kind} {entry.name!r} from {entry.origin} could not be loaded "
        f"(entry point {group}: {entry.name} = {entry.value}): {why}. "
        f"Reinstall or upgrade it (pip install --upgrade {dist}) or uninstall it "
        f"(pip uninstall {dist})."
    )


def load(entry: Entry, *, need_callable: bool) -> Any:
    """Import an entry point's object.

    Args:
        entry: The entry point.
        need_callable: Reject an object that is not callable (a transport factory).

    Raises:
        LoadError: Chained to the exception the import raised, whatever it was
            short of ``KeyboardInterrupt``.
    """
    try:
        obj = entry.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        # A third-party module may call sys.exit() or raise any BaseException at
        # import: it breaks that entry point only, never the program using pynector.
        raise LoadError(reason(exc)) from exc
    if need_callable and not callable(obj):
        raise LoadError(f"{entry.value} is a {type(obj).__name__}, not a callable factory")
    return obj


def load_factory(entry: Entry) -> Callable[..., Any]:
    """Import a ``pynector.transports`` entry point's factory.

    Raises:
        PluginError: If it fails to import or is not callable; the message
            names the distribution and the fix, chained to the original exception.
    """
    try:
        factory: Callable[..., Any] = load(entry, need_callable=True)
    except LoadError as err:
        raise PluginError(
            broken_message("transport", TRANSPORTS_GROUP, entry, err.reason)
        ) from err.__cause__
    return factory


class PlannedPlugin(NamedTuple):
    """One installed plugin and whether to load it.

    Attributes:
        entry: The entry point.
        status: ``None`` when it should be loaded, else why not (``"disabled: ..."``,
            ``"replaced: ..."``, ``"conflict: ..."``), as listings show it.
    """

    entry: Entry
    status: str | None


def _selection() -> set[str] | None:
    """The entry-point names ``PYNECTOR_PLUGINS`` allows, or ``None`` for all."""
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def plan_plugins(registered: Container[str], logger: logging.Logger) -> list[PlannedPlugin]:
    """Decide which installed plugins to load, under ``PYNECTOR_PLUGINS``.

    A plugin left out by ``PYNECTOR_PLUGINS`` (unset: all; empty: none; a comma
    list: only those), one whose name a run-time registration already took, and
    the claimants of a name several distributions claim are not loaded. A
    conflict and a ``PYNECTOR_PLUGINS`` name no distribution provides are logged
    at WARNING on ``logger``.

    Args:
        registered: The names plugins were registered under at run time.
        logger: Where to log the warnings.

    Returns:
        Every installed plugin, sorted by name.
    """
    selected = _selection()
    claimed = entries(PLUGINS_GROUP)
    plan: list[PlannedPlugin] = []
    for name, claimants in sorted(claimed.items()):
        if selected is not None and name not in selected:
            why = f"not listed in {ENV_VAR}" if selected else f"{ENV_VAR} is empty"
            plan.extend(PlannedPlugin(c, f"disabled: {why}") for c in claimants)
        elif name in registered:
            status = f"replaced: another plugin was registered as {name!r} at run time"
            plan.extend(PlannedPlugin(c, status) for c in claimants)
        elif len(claimants) > 1:
            plan.extend(PlannedPlugin(c, conflict_status(c, claimants)) for c in claimants)
            logger.warning(
                "Skipping the pynector plugin %r: it is claimed by more than one installed "
                "distribution: %s. Uninstall the one you do not want (pip uninstall %s).",
                name,
                origins(claimants),
                claimants[-1].distribution or "<distribution>",
            )
        else:
            plan.append(PlannedPlugin(claimants[0], None))
    if selected:
        unknown = sorted(selected - set(claimed))
        if unknown:
            logger.warning(
                "%s names %s, which no installed distribution provides as a pynector "
                "plugin (installed plugins: %s). Fix the names or install the plugins.",
                ENV_VAR,
                ", ".join(repr(name) for name in unknown),
                ", ".join(sorted(claimed)) or "none",
            )
    return plan
