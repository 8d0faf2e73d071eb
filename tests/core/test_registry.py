"""Transport discovery through real installed distributions and real entry points."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import pynector
from pynector import _entrypoints, _plugins, registry
from pynector.errors import ConfigurationError, PluginError
from pynector.transport.protocol import Transport

from .conftest import ROOT, Discovery


class EchoUpper(Transport):
    """A run-time transport that answers with the request upper-cased."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._last = b""

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send(self, data: Any, **options: Any) -> None:
        self._last = bytes(data).upper()

    async def receive(self) -> AsyncIterator[Any]:
        yield self._last


def other_factory(**options: Any) -> Transport:
    return EchoUpper(**options)


def by_name(records: list[registry.TransportInfo]) -> dict[str, list[registry.TransportInfo]]:
    found: dict[str, list[registry.TransportInfo]] = {}
    for record in records:
        found.setdefault(record.name, []).append(record)
    return found


def run_python(
    code: str, python: str | Path = sys.executable, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


# Public surface


def test_registry_public_surface_is_sorted_and_documented() -> None:
    assert registry.__all__ == sorted(registry.__all__)
    assert set(registry.__all__) == {
        "PluginInfo",
        "TransportFactory",
        "TransportInfo",
        "available_plugins",
        "available_transports",
        "open_store",
        "clear_cache",
        "describe_transport",
        "hooks",
        "installed_plugins",
        "register_plugin",
        "register_transport",
        "resolve_transport",
        "unregister_plugin",
        "unregister_transport",
    }
    undocumented = [
        name
        for name in registry.__all__
        if name != "TransportFactory" and not getattr(registry, name).__doc__
    ]
    assert undocumented == []


def test_transport_info_is_a_frozen_record() -> None:
    info = registry.TransportInfo("echo", "pynector-echo", "0.1.0", "ok")
    with pytest.raises(AttributeError):
        info.status = "broken"  # type: ignore[misc]
    assert (info.name, info.distribution, info.version, info.status) == (
        "echo",
        "pynector-echo",
        "0.1.0",
        "ok",
    )


# Laziness


def test_importing_pynector_and_its_registry_imports_no_plugin_machinery() -> None:
    result = run_python(
        """
        import sys
        import pynector
        import pynector.registry
        loaded = [m for m in ("pluggy", "importlib.metadata", "pynector_echo") if m in sys.modules]
        print(loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_resolving_a_transport_imports_only_that_transports_module(discovery: Discovery) -> None:
    result = run_python(
        """
        import json
        import sys
        from importlib.metadata import entry_points
        from pynector.registry import resolve_transport

        others = {
            ep.module.split(".")[0]
            for ep in entry_points(group="pynector.transports")
            if ep.name != "echo"
        }
        factory = resolve_transport("echo")
        imported = sorted(others & set(sys.modules))
        print(json.dumps([factory.__module__, "pluggy" in sys.modules, sorted(others), imported]))
        """,
        env=discovery.subprocess_env("pynector-broken"),
    )
    assert result.returncode == 0, result.stderr
    module, pluggy_loaded, others, imported = json.loads(result.stdout)
    assert (module, pluggy_loaded, imported) == ("pynector_echo", False, [])
    assert {"pynector_badhooks", "pynector_broken"} <= set(others)


# Listing and resolving installed transports


def test_available_transports_lists_the_installed_example_package(discovery: Discovery) -> None:
    echo = by_name(registry.available_transports())["echo"]
    assert echo == [registry.TransportInfo("echo", "pynector-echo", "0.1.0", "ok")]


def test_resolve_transport_returns_the_entry_point_factory(discovery: Discovery) -> None:
    from pynector_echo import EchoTransport

    assert registry.resolve_transport("echo") is EchoTransport


def test_resolve_transport_matches_names_case_insensitively_after_strip(
    discovery: Discovery,
) -> None:
    assert registry.resolve_transport("  Echo\n") is registry.resolve_transport("echo")


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_resolve_transport_rejects_a_name_that_is_not_a_non_empty_string(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="transport_type must be a non-empty string"):
        registry.resolve_transport(bad)


@pytest.mark.anyio
async def test_the_example_transport_echoes_bytes_in_chunks_and_objects_whole(
    discovery: Discovery,
) -> None:
    transport = registry.resolve_transport("echo")(chunk_size=2)
    await transport.connect()
    await transport.send(b"hello")
    assert [chunk async for chunk in transport.receive()] == [b"he", b"ll", b"o"]
    await transport.send({"id": 1})
    assert [item async for item in transport.receive()] == [{"id": 1}]
    await transport.disconnect()
    with pytest.raises(ConnectionError, match="not connected"):
        await transport.send(b"late")


@pytest.mark.anyio
async def test_pynector_client_selects_the_example_transport_by_name(
    discovery: Discovery,
) -> None:
    async with pynector.Pynector(transport_type="echo", chunk_size=3) as client:
        assert await client.request(b"round trip") == b"round trip"
        assert await client.request({"any": "object"}) == {"any": "object"}


# Transport options and factories that fail


def test_an_unknown_transport_option_suggests_the_closest_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        pynector.Pynector(transport_type="http", follow_redirect=True)
    message = str(caught.value)
    assert "unknown option 'follow_redirect'. Did you mean 'follow_redirects'?" in message
    assert "transport 'http' (pynector-http " in message
    assert "Its options: base_url, " in message
    assert type(caught.value) is ConfigurationError


def test_each_unknown_option_gets_its_own_suggestion(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError) as caught:
        pynector.Pynector(transport_type="echo", chunk_sise=3, colour="red")
    message = str(caught.value)
    assert (
        "unknown options 'chunk_sise', 'colour'. Did you mean 'chunk_size' for 'chunk_sise'?"
        in message
    )
    assert "Its options: chunk_size." in message
    assert "pynector-echo 0.1.0, entry point pynector_echo:EchoTransport" in message


def test_the_cli_option_flag_suggests_the_closest_transport_option() -> None:
    argv = ["request", "--option", "follow_redirect=true", "http://127.0.0.1:9/"]
    done = subprocess.run(
        [sys.executable, "-m", "pynector", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Did you mean --option follow_redirects?" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_factory_taking_any_keyword_checks_its_own_options(discovery: Discovery) -> None:
    seen: dict[str, Any] = {}

    def factory(**options: Any) -> Transport:
        seen.update(options)
        return EchoUpper(**options)

    registry.register_transport("anything", factory)
    pynector.Pynector(transport_type="anything", colour="red")
    assert seen == {"colour": "red"}


def test_a_factory_error_names_the_transport_and_its_distribution(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError) as caught:
        pynector.Pynector(transport_type="echo", chunk_size=0)
    message = str(caught.value)
    assert "transport 'echo' (pynector-echo 0.1.0, entry point pynector_echo:EchoTransport)" in (
        message
    )
    assert "failed to start with the options ['chunk_size']: ValueError: " in message
    assert "EchoTransport(chunk_size=0) must be a positive integer" in message
    assert type(caught.value.__cause__) is ValueError


@pytest.mark.parametrize("error", [RuntimeError("no event loop policy"), OSError("no cert")])
def test_a_runtime_factory_error_is_a_configuration_error_chained_to_it(
    discovery: Discovery, error: Exception
) -> None:
    def factory(**options: Any) -> Transport:
        raise error

    registry.register_transport("fails", factory)
    with pytest.raises(ConfigurationError) as caught:
        pynector.Pynector(transport_type="fails")
    message = str(caught.value)
    assert "transport 'fails' (registered at run time) failed to start with the options []: " in (
        message
    )
    assert f"{type(error).__name__}: {error}" in message
    assert caught.value.__cause__ is error


def test_a_pynector_error_from_a_factory_is_raised_as_it_is(discovery: Discovery) -> None:
    error = ConfigurationError("base_url is required")

    def factory(**options: Any) -> Transport:
        raise error

    registry.register_transport("strict", factory)
    with pytest.raises(ConfigurationError) as caught:
        pynector.Pynector(transport_type="strict")
    assert caught.value is error


# Unknown names


def test_unknown_transport_suggests_the_closest_name_and_lists_installed(
    discovery: Discovery,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        registry.resolve_transport("ecoh")
    message = str(caught.value)
    assert "Unknown transport_type 'ecoh'" in message
    assert "Did you mean 'echo'?" in message
    assert "Installed transports: " in message
    assert "echo" in message.split("Installed transports: ")[1]
    assert type(caught.value) is ConfigurationError


def test_unknown_transport_without_a_close_name_says_how_to_provide_one(
    discovery: Discovery,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        registry.resolve_transport("zzzzzz")
    message = str(caught.value)
    assert "Did you mean" not in message
    assert "register_transport('zzzzzz', factory)" in message


@pytest.mark.parametrize(
    ("name", "install"),
    [("http", "pip install pynector-http"), ("sdk", "pip install pynector-sdk")],
)
def test_first_party_transport_that_is_not_installed_names_its_pip_install(
    core_only_python: Path, name: str, install: str
) -> None:
    result = run_python(
        f"""
        from pynector.registry import resolve_transport
        try:
            resolve_transport({name!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
        python=core_only_python,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ConfigurationError Unknown transport_type {name!r}.")
    assert "No transport is installed." in result.stdout
    assert result.stdout.rstrip().endswith(f"install it with: {install}")


def test_misspelt_first_party_transport_suggests_it_and_its_pip_install(
    core_only_python: Path,
) -> None:
    result = run_python(
        """
        from pynector.registry import resolve_transport
        try:
            resolve_transport("htp")
        except Exception as exc:
            print(exc)
        """,
        python=core_only_python,
    )
    assert "Did you mean 'http'?" in result.stdout
    assert "pip install pynector-http" in result.stdout


# Run-time registration


def test_runtime_registration_wins_over_an_installed_entry_point(discovery: Discovery) -> None:
    registry.register_transport("echo", EchoUpper)
    assert registry.resolve_transport("echo") is EchoUpper
    assert by_name(registry.available_transports())["echo"] == [
        registry.TransportInfo("echo", None, None, "ok")
    ]


def test_unregistering_brings_back_the_installed_entry_point(discovery: Discovery) -> None:
    from pynector_echo import EchoTransport

    registry.register_transport("echo", EchoUpper)
    registry.unregister_transport("ECHO")
    assert registry.resolve_transport("echo") is EchoTransport


def test_registering_a_name_twice_at_run_time_needs_replace(discovery: Discovery) -> None:
    registry.register_transport("upper", EchoUpper)
    with pytest.raises(ConfigurationError, match=r"'upper' is already registered.*replace=True"):
        registry.register_transport("Upper", other_factory)
    assert registry.resolve_transport("upper") is EchoUpper


def test_replace_true_overrides_an_earlier_runtime_registration(discovery: Discovery) -> None:
    registry.register_transport("upper", EchoUpper)
    registry.register_transport("upper", other_factory, replace=True)
    assert registry.resolve_transport("upper") is other_factory


def test_register_transport_rejects_a_factory_that_is_not_callable(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError, match="the factory must be callable, got a str"):
        registry.register_transport("upper", "pynector_echo:EchoTransport")  # type: ignore[arg-type]
    assert "upper" not in by_name(registry.available_transports())


def test_register_transport_rejects_an_empty_name(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError, match="must be a non-empty string"):
        registry.register_transport("  ", EchoUpper)


def test_runtime_transports_are_listed_with_no_distribution_in_name_order(
    discovery: Discovery,
) -> None:
    registry.register_transport("zz-last", EchoUpper)
    registry.register_transport("aa-first", other_factory)
    records = registry.available_transports()
    assert [record.name for record in records] == sorted(record.name for record in records)
    assert records[0] == registry.TransportInfo("aa-first", None, None, "ok")
    assert records[-1] == registry.TransportInfo("zz-last", None, None, "ok")


def test_unregistering_an_unknown_transport_is_a_configuration_error(
    discovery: Discovery,
) -> None:
    with pytest.raises(ConfigurationError, match="No transport named 'nope' was registered"):
        registry.unregister_transport("nope")


def test_unregistering_an_installed_transport_says_to_uninstall_it(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError) as caught:
        registry.unregister_transport("echo")
    assert "comes from pynector-echo 0.1.0" in str(caught.value)
    assert "pip uninstall pynector-echo" in str(caught.value)


# Broken distributions


def test_a_transport_that_fails_to_import_raises_plugin_error_chained_to_the_cause(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-broken")
    with pytest.raises(PluginError) as caught:
        registry.resolve_transport("broken")
    message = str(caught.value)
    assert "'broken' from pynector-broken 0.1.0 could not be loaded" in message
    assert "pynector_broken:Transport" in message
    assert "ImportError: pynector_broken needs the 'frobnicate' library" in message
    assert "pip uninstall pynector-broken" in message
    assert isinstance(caught.value.__cause__, ImportError)


def test_a_broken_transport_breaks_only_itself(discovery: Discovery) -> None:
    discovery.install("pynector-broken")
    found = by_name(registry.available_transports())
    assert found["broken"] == [
        registry.TransportInfo(
            "broken",
            "pynector-broken",
            "0.1.0",
            "error: ImportError: pynector_broken needs the 'frobnicate' library, "
            "which is not installed",
        )
    ]
    assert found["echo"][0].status == "ok"
    assert registry.resolve_transport("echo").__module__ == "pynector_echo"


def test_an_entry_point_that_names_no_callable_is_reported_broken(discovery: Discovery) -> None:
    discovery.install("pynector-broken")
    status = by_name(registry.available_transports())["notafactory"][0].status
    assert status == "error: pynector_badhooks:NOT_A_FACTORY is a str, not a callable factory"
    with pytest.raises(PluginError, match="is a str, not a callable factory") as caught:
        registry.resolve_transport("notafactory")
    assert caught.value.__cause__ is None


def test_a_transport_that_calls_sys_exit_at_import_breaks_only_itself(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-exits")
    found = by_name(registry.available_transports())
    assert found["exits"] == [
        registry.TransportInfo("exits", "pynector-exits", "0.1.0", "error: SystemExit: 3")
    ]
    assert found["raises"][0].status == "error: Abort: pynector_raises aborts its import"
    assert found["echo"][0].status == "ok"
    with pytest.raises(PluginError, match=r"'exits' from pynector-exits 0\.1\.0") as caught:
        registry.resolve_transport("exits")
    assert "SystemExit: 3" in str(caught.value)
    assert "pip uninstall pynector-exits" in str(caught.value)
    assert isinstance(caught.value.__cause__, SystemExit)
    with pytest.raises(PluginError, match="Abort: pynector_raises aborts") as caught:
        registry.resolve_transport("raises")
    assert type(caught.value.__cause__).__name__ == "Abort"


def test_pynector_transports_lists_a_transport_that_exits_at_import_and_exits_zero(
    discovery: Discovery,
) -> None:
    env = discovery.subprocess_env("pynector-exits")
    result = subprocess.run(
        [sys.executable, "-m", "pynector", "transports"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split(maxsplit=3) for line in result.stdout.splitlines() if line}
    assert lines["exits"] == ["exits", "pynector-exits", "0.1.0", "error: SystemExit: 3"]
    assert lines["raises"][3] == "error: Abort: pynector_raises aborts its import"
    assert lines["echo"][3] == "ok"


def test_a_keyboard_interrupt_at_import_is_not_swallowed(
    discovery: Discovery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while a transport's module is being imported stops the program.
    (tmp_path / "pynector_interrupted.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = importlib.metadata.EntryPoint(
        name="interrupted", value="pynector_interrupted:Transport", group="pynector.transports"
    )
    entry = _entrypoints.Entry("interrupted", entry_point.value, None, None, entry_point)
    with pytest.raises(KeyboardInterrupt):
        _entrypoints.load(entry, need_callable=True)


def test_a_runtime_registration_replaces_a_broken_entry_point(discovery: Discovery) -> None:
    discovery.install("pynector-broken")
    registry.register_transport("broken", EchoUpper)
    assert registry.resolve_transport("broken") is EchoUpper


# Duplicates and conflicts


def test_the_same_distribution_installed_twice_is_not_a_conflict(discovery: Discovery) -> None:
    discovery.install("pynector-echo-copy")
    assert by_name(registry.available_transports())["echo"] == [
        registry.TransportInfo("echo", "pynector-echo", "0.1.0", "ok")
    ]
    assert registry.resolve_transport("echo").__name__ == "EchoTransport"


def test_two_distributions_claiming_one_name_is_an_error_naming_both(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-echo-clone")
    with pytest.raises(ConfigurationError) as caught:
        registry.resolve_transport("echo")
    message = str(caught.value)
    assert "claimed by more than one installed distribution" in message
    assert "pynector-echo 0.1.0 (pynector_echo:EchoTransport)" in message
    assert "pynector-echo-clone 0.2.0 (pynector_echo_clone:EchoTransport)" in message
    assert "pip uninstall" in message
    assert "register_transport('echo', factory)" in message


def test_conflicting_distributions_are_both_listed_with_a_conflict_status(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-echo-clone")
    assert by_name(registry.available_transports())["echo"] == [
        registry.TransportInfo(
            "echo",
            "pynector-echo",
            "0.1.0",
            "conflict: 'echo' is also claimed by pynector-echo-clone 0.2.0",
        ),
        registry.TransportInfo(
            "echo",
            "pynector-echo-clone",
            "0.2.0",
            "conflict: 'echo' is also claimed by pynector-echo 0.1.0",
        ),
    ]


def test_a_runtime_registration_settles_a_conflict(discovery: Discovery) -> None:
    discovery.install("pynector-echo-clone")
    clone = importlib.import_module("pynector_echo_clone").EchoTransport
    registry.register_transport("echo", clone)
    assert registry.resolve_transport("echo") is clone


# Caching


def test_metadata_is_cached_until_clear_cache(discovery: Discovery) -> None:
    assert "broken" not in by_name(registry.available_transports())
    discovery.install("pynector-broken", clear_cache=False)
    assert "broken" not in by_name(registry.available_transports())
    with pytest.raises(ConfigurationError, match="Unknown transport_type 'broken'"):
        registry.resolve_transport("broken")
    registry.clear_cache()
    assert "broken" in by_name(registry.available_transports())


def test_clear_cache_keeps_runtime_registrations(discovery: Discovery) -> None:
    registry.register_transport("upper", EchoUpper)
    registry.clear_cache()
    assert registry.resolve_transport("upper") is EchoUpper


# The facade over the entry-point loader


def test_describe_transport_says_where_a_transport_comes_from(discovery: Discovery) -> None:
    assert registry.describe_transport(" Echo ") == (
        "pynector-echo 0.1.0, entry point pynector_echo:EchoTransport"
    )
    registry.register_transport("upper", EchoUpper)
    assert registry.describe_transport("upper") == "registered at run time"
    assert registry.describe_transport("nosuch") == "not installed"


def test_registry_hooks_is_a_documented_function_of_the_registry(discovery: Discovery) -> None:
    # Transports call registry.hooks(); it is the registry's own function, not a
    # re-export of the plugin manager's, and answers as the plugin manager does.
    assert registry.hooks.__module__ == "pynector.registry"
    assert registry.hooks is not _plugins.hooks
    assert "Returns:" in (registry.hooks.__doc__ or "")
    discovery.set_plugins_env("")
    assert registry.hooks() is None
    discovery.install("pynector-recorder")
    discovery.set_plugins_env("recorder")
    assert registry.hooks() is _plugins.plugin_manager().hook
    assert registry.hooks(telemetry=False) is _plugins.plugin_manager().hook


def test_each_entry_point_group_is_read_once_until_clear_cache(
    discovery: Discovery, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[str] = []
    read = importlib.metadata.entry_points

    def counting(*, group: str) -> importlib.metadata.EntryPoints:
        groups.append(group)
        return read(group=group)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    registry.clear_cache()
    registry.available_transports()
    registry.available_plugins()
    registry.resolve_transport("echo")
    registry.available_plugins()
    assert sorted(groups) == ["pynector.plugins", "pynector.transports"]
    registry.clear_cache()
    registry.available_transports()
    assert sorted(groups) == ["pynector.plugins", "pynector.transports", "pynector.transports"]


# Module layout

SOURCE_PACKAGES = [
    ROOT / "pynector-core" / "src" / "pynector",
    ROOT / "pynector-http" / "src" / "pynector_http",
    ROOT / "pynector-sdk" / "src" / "pynector_sdk",
    ROOT / "pynector-otel" / "src" / "pynector_otel",
    ROOT / "pynector-redis" / "src" / "pynector_redis",
]


def _private_names_imported(package: Path) -> list[str]:
    """Private names that ``package``'s modules import from other modules.

    ``from module import _name`` counts unless ``_name`` is a submodule (a package
    may use its own private modules); so does any import of another
    distribution's private module.
    """
    found = []
    roots = {p.name for p in SOURCE_PACKAGES}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        own_package = parts[:-1]  # for an __init__.py, parts[-1] is "__init__"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = own_package[: len(own_package) - node.level + 1] if node.level else []
            target += node.module.split(".") if node.module else []
            if target[0] not in roots:
                continue
            where = f"{'.'.join(parts)}:{node.lineno}"
            if target[0] != package.name and any(part.startswith("_") for part in target):
                found.append(f"{where}: {'.'.join(target)}")
                continue
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                    continue
                module = ROOT.joinpath(*_source_of(target), name)
                if not (module.with_suffix(".py").is_file() or module.is_dir()):
                    found.append(f"{where}: {'.'.join(target)}.{name}")
    return found


def _source_of(module: list[str]) -> list[str]:
    """The source directory of a dotted module path, as path parts below ROOT."""
    for package in SOURCE_PACKAGES:
        if package.name == module[0]:
            return [*package.relative_to(ROOT).parts, *module[1:]]
    raise AssertionError(module)


def test_no_module_imports_a_private_name_of_another_module() -> None:
    # A module uses another's public names only: what two modules share is
    # declared (made public in the private module), not reached into.
    problems = [item for package in SOURCE_PACKAGES for item in _private_names_imported(package)]
    assert problems == []


def test_the_import_contracts_are_kept() -> None:
    # The contracts live in pyproject.toml ([tool.importlinter]): no import cycle
    # inside a distribution, the discovery layers, a core that imports no
    # transport, plugin, HTTP client or provider SDK, distributions independent.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
