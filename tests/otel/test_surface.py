"""pynector-otel's public surface and its discovery through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

import pynector_otel
from pynector import _plugins, registry
from pynector.errors import ConfigurationError
from pynector_otel import OtelPlugin


@pytest.fixture
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installed plugins load as they would in a program (PYNECTOR_PLUGINS unset)."""
    monkeypatch.delenv("PYNECTOR_PLUGINS", raising=False)
    registry.clear_cache()
    yield
    monkeypatch.undo()
    registry.clear_cache()


def test_the_public_names_are_listed_sorted_and_documented() -> None:
    assert pynector_otel.__doc__
    assert pynector_otel.__all__ == sorted(pynector_otel.__all__)
    assert pynector_otel.__all__ == ["OtelPlugin", "__version__", "plugin"]
    assert pynector_otel.__version__ == "0.2.0"
    assert isinstance(pynector_otel.plugin, OtelPlugin)
    assert OtelPlugin.__doc__
    assert OtelPlugin.configure.__doc__


def test_the_entry_point_is_discovered_and_registers_the_plugin_instance(
    installed_plugins: None,
) -> None:
    (info,) = [p for p in registry.available_plugins() if p.name == "otel"]
    assert info == registry.PluginInfo("otel", "pynector-otel", "0.2.0", "ok")
    assert _plugins.plugin_manager().get_plugin("otel") is pynector_otel.plugin


def test_pynector_plugins_can_leave_it_out(
    installed_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYNECTOR_PLUGINS", "")
    registry.clear_cache()
    assert _plugins.plugin_manager().get_plugin("otel") is None


def test_importing_the_plugin_does_not_import_the_sdk() -> None:
    code = "import sys, pynector_otel; print('opentelemetry.sdk' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_single_string_of_header_names_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"request_headers=\['content-type'\]"):
        OtelPlugin(request_headers="content-type")


def test_the_repr_shows_the_settings() -> None:
    plugin = OtelPlugin(request_headers=["Content-Type"], capture_message_content=True)
    assert repr(plugin) == (
        "<OtelPlugin capture_message_content=True request_headers=['content-type'] "
        "response_headers=[]>"
    )
