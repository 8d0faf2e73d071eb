"""Discovery fixtures: real distributions, really installed, outside the dev environment.

The distributions under ``tests/core/packages/`` (and a second copy of
``examples/pynector-echo``) are installed once per session with
``uv pip install --no-deps --target <dir>``. A test adds the directories it needs
to ``sys.path`` through the :class:`Discovery` fixture, which puts everything
back afterwards: ``sys.path``, imported test modules, ``PYNECTOR_PLUGINS``,
run-time registrations and the registry's caches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynector import registry

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = Path(__file__).resolve().parent / "packages"

SOURCES = {
    "pynector-broken": PACKAGES / "pynector-broken",
    "pynector-echo-clone": PACKAGES / "pynector-echo-clone",
    "pynector-exits": PACKAGES / "pynector-exits",
    "pynector-recorder": PACKAGES / "pynector-recorder",
    # A second installation of the example package: the same entry point seen twice.
    "pynector-echo-copy": ROOT / "examples" / "pynector-echo",
}


def find_uv() -> str:
    """Return the uv executable, or fail the test saying how to get it."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail(
            "The discovery tests install real distributions with uv, which is not on PATH. "
            "Run the tests with `make test` (it provides uv), or install uv: "
            "https://docs.astral.sh/uv/getting-started/installation/"
        )
    return uv


def run_uv(*args: str) -> None:
    """Run one uv command; fail the test with uv's output if it fails."""
    result = subprocess.run(
        [find_uv(), *args], capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(f"`uv {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Install each test distribution into its own directory; return them by name."""
    targets: dict[str, Path] = {}
    for name, source in SOURCES.items():
        targets[name] = tmp_path_factory.mktemp(name)
        run_uv(
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            sys.executable,
            "--target",
            str(targets[name]),
            str(source),
        )
    return targets


@pytest.fixture(scope="session")
def core_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only pynector-core (no transports, no rich)."""
    venv = tmp_path_factory.mktemp("core-only") / "venv"
    run_uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run_uv("pip", "install", "--quiet", "--python", str(python), str(ROOT / "pynector-core"))
    return python


class Discovery:
    """Changes one test makes to what discovery sees; undone by the fixture."""

    def __init__(self, installed: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        self.installed = installed
        self._monkeypatch = monkeypatch

    def install(self, *names: str, clear_cache: bool = True) -> None:
        """Put the named test distributions first on ``sys.path``.

        Args:
            names: Keys of :data:`SOURCES`.
            clear_cache: Also call :func:`pynector.registry.clear_cache`, as a
                program that installs distributions while running would.
        """
        for name in names:
            sys.path.insert(0, str(self.installed[name]))
        if clear_cache:
            registry.clear_cache()

    def set_plugins_env(self, value: str | None) -> None:
        """Set (or with ``None`` unset) ``PYNECTOR_PLUGINS`` and reload plugins."""
        if value is None:
            self._monkeypatch.delenv("PYNECTOR_PLUGINS", raising=False)
        else:
            self._monkeypatch.setenv("PYNECTOR_PLUGINS", value)
        registry.clear_cache()

    def subprocess_env(self, *names: str, plugins: str | None = None) -> dict[str, str]:
        """Environment variables for a subprocess that sees the named distributions."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYNECTOR_PLUGINS")}
        if names:
            env["PYTHONPATH"] = os.pathsep.join(str(self.installed[name]) for name in names)
        if plugins is not None:
            env["PYNECTOR_PLUGINS"] = plugins
        return env


def _runtime_transports() -> set[str]:
    return {t.name for t in registry.available_transports() if t.distribution is None}


def _runtime_plugins() -> set[str]:
    return {p.name for p in registry.available_plugins() if p.distribution is None}


@pytest.fixture
def discovery(installed: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Discovery]:
    """A test's view of discovery, restored afterwards.

    Run-time transports and plugins the test registers are unregistered, test
    distributions leave ``sys.path`` and ``sys.modules``, ``PYNECTOR_PLUGINS`` is
    restored and the registry's caches are cleared.
    """
    monkeypatch.delenv("PYNECTOR_PLUGINS", raising=False)
    registry.clear_cache()
    saved_path = sys.path[:]
    transports_before = _runtime_transports()
    plugins_before = _runtime_plugins()
    yield Discovery(installed, monkeypatch)
    for name in _runtime_transports() - transports_before:
        registry.unregister_transport(name)
    for name in _runtime_plugins() - plugins_before:
        registry.unregister_plugin(name)
    sys.path[:] = saved_path
    directories = [str(path) + os.sep for path in installed.values()]
    for module_name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if file.startswith(tuple(directories)):
            del sys.modules[module_name]
    monkeypatch.undo()
    registry.clear_cache()
