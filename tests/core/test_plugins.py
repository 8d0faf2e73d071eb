"""Plugin loading from real installed distributions, PYNECTOR_PLUGINS, run-time plugins."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from pynector import Pynector, _plugins, configure_telemetry, hookimpl, registry
from pynector.errors import ConfigurationError
from pynector.hookspecs import RetryWaitInfo
from pynector.testing import MockTransport

from .conftest import Discovery


class WaitRecorder:
    """A run-time plugin that records the retry waits it observes."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    @hookimpl
    def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
        self.waits.append(info.delay)


class Misspelt:
    @hookimpl
    def pynector_reqest(self, info: Any) -> None:
        """Not a pynector hook: one letter is missing."""


class WrongArguments:
    @hookimpl
    def pynector_retry_wait(self, info: Any, extra: int) -> None:
        """Asks for an argument the specification does not provide."""


def wait(delay: float) -> RetryWaitInfo:
    return RetryWaitInfo(attempt=1, error=OSError("boom"), delay=delay, reason="backoff")


def plugins_by_name(records: list[registry.PluginInfo]) -> dict[str, list[registry.PluginInfo]]:
    found: dict[str, list[registry.PluginInfo]] = {}
    for record in records:
        found.setdefault(record.name, []).append(record)
    return found


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "pynector" and record.levelno == logging.WARNING
    ]


# Installed plugins


def test_installed_plugins_are_loaded_and_receive_hook_calls(discovery: Discovery) -> None:
    discovery.install("pynector-recorder")
    relay = _plugins.hooks()
    assert relay is not None
    relay.pynector_configure_telemetry(service_name="svc", log_level="DEBUG")
    assert sys.modules["pynector_recorder"].calls == [("svc", "DEBUG")]
    assert _plugins.plugin_manager().get_plugin("recorder") is sys.modules["pynector_recorder"]
    assert plugins_by_name(registry.available_plugins())["recorder"] == [
        registry.PluginInfo("recorder", "pynector-recorder", "0.3.0", "ok")
    ]


def test_the_plugin_manager_implements_the_core_hook_specifications(
    discovery: Discovery,
) -> None:
    manager = _plugins.plugin_manager()
    assert manager.project_name == "pynector"
    for hook in ("pynector_request", "pynector_retry", "pynector_retry_wait", "pynector_batch"):
        assert getattr(manager.hook, hook).has_spec()


def test_hooks_is_none_when_no_plugin_is_registered(discovery: Discovery) -> None:
    discovery.set_plugins_env("")
    assert _plugins.hooks() is None


def test_hooks_returns_the_same_relay_on_every_call(discovery: Discovery) -> None:
    discovery.install("pynector-recorder")
    discovery.set_plugins_env("recorder")  # no telemetry plugin, which may step aside
    assert _plugins.hooks() is _plugins.hooks() is _plugins.plugin_manager().hook
    assert _plugins.relay() is _plugins.plugin_manager().hook


def test_pynector_plugins_limits_which_installed_plugins_load(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-recorder", "pynector-broken")
    discovery.set_plugins_env(" Recorder , ")
    assert _plugins.plugin_manager().get_plugin("recorder") is not None
    found = plugins_by_name(registry.available_plugins())
    assert found["recorder"][0].status == "ok"
    assert found["broken"][0].status == "disabled: not listed in PYNECTOR_PLUGINS"
    assert found["badhooks"][0].status == "disabled: not listed in PYNECTOR_PLUGINS"
    assert "pynector_broken" not in sys.modules
    assert warnings_from(caplog) == []


def test_an_empty_pynector_plugins_loads_no_installed_plugin(discovery: Discovery) -> None:
    discovery.install("pynector-recorder")
    discovery.set_plugins_env("")
    assert _plugins.plugin_manager().get_plugin("recorder") is None
    assert plugins_by_name(registry.available_plugins())["recorder"] == [
        registry.PluginInfo(
            "recorder", "pynector-recorder", "0.3.0", "disabled: PYNECTOR_PLUGINS is empty"
        )
    ]


def test_pynector_plugins_naming_an_uninstalled_plugin_logs_a_warning(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-recorder")
    discovery.set_plugins_env("recorder,otle")
    _plugins.hooks()
    (warning,) = warnings_from(caplog)
    assert "PYNECTOR_PLUGINS names 'otle'" in warning
    assert "installed plugins: " in warning
    assert "recorder" in warning.split("installed plugins: ")[1]


# Broken installed plugins


def test_a_plugin_that_fails_to_import_is_skipped_and_logged_once(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-recorder", "pynector-broken")
    discovery.set_plugins_env("recorder,broken")
    relay = _plugins.hooks()
    _plugins.hooks()
    registry.available_plugins()
    (warning,) = warnings_from(caplog)
    assert "plugin 'broken' from pynector-broken 0.1.0 could not be loaded" in warning
    assert "pynector.plugins: broken = pynector_broken" in warning
    assert "ImportError: pynector_broken needs the 'frobnicate' library" in warning
    assert "PYNECTOR_PLUGINS" in warning
    assert relay is not None
    relay.pynector_configure_telemetry(service_name="still", log_level="INFO")
    assert sys.modules["pynector_recorder"].calls == [("still", "INFO")]


@pytest.mark.anyio
async def test_a_plugin_that_calls_sys_exit_at_import_breaks_only_itself(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-recorder", "pynector-exits")
    async with Pynector(transport=MockTransport(lambda data, **options: {"ok": data})) as client:
        assert await client.request("unrelated") == {"ok": "unrelated"}
    (warning,) = warnings_from(caplog)
    assert "plugin 'exits' from pynector-exits 0.1.0 could not be loaded" in warning
    assert "SystemExit: 3" in warning
    found = plugins_by_name(registry.available_plugins())
    assert found["exits"] == [
        registry.PluginInfo("exits", "pynector-exits", "0.1.0", "error: SystemExit: 3")
    ]
    assert found["recorder"][0].status == "ok"
    relay = _plugins.hooks()
    assert relay is not None
    relay.pynector_configure_telemetry(service_name="after", log_level="INFO")
    assert sys.modules["pynector_recorder"].calls == [("after", "INFO")]


def test_a_plugin_whose_hooks_do_not_match_the_specification_is_skipped(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-broken")
    discovery.set_plugins_env("badhooks")
    assert _plugins.hooks() is None
    (warning,) = warnings_from(caplog)
    assert "plugin 'badhooks' from pynector-broken 0.1.0 could not be loaded" in warning
    assert "PluginValidationError" in warning
    assert "colour" in warning
    status = plugins_by_name(registry.available_plugins())["badhooks"][0].status
    assert status.startswith("error: PluginValidationError: Plugin 'badhooks' for hook ")
    assert "colour" in status


def test_broken_plugins_are_listed_with_the_reason(discovery: Discovery) -> None:
    discovery.install("pynector-broken")
    found = plugins_by_name(registry.available_plugins())
    assert found["broken"] == [
        registry.PluginInfo(
            "broken",
            "pynector-broken",
            "0.1.0",
            "error: ImportError: pynector_broken needs the 'frobnicate' library, "
            "which is not installed",
        )
    ]
    assert found["badhooks"][0].status.startswith("error: PluginValidationError")


def test_a_plugin_name_claimed_by_two_distributions_loads_neither(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.install("pynector-recorder", "pynector-echo-clone")
    discovery.set_plugins_env("recorder")
    assert _plugins.hooks() is None
    (warning,) = warnings_from(caplog)
    assert "pynector-recorder 0.3.0 (pynector_recorder)" in warning
    assert "pynector-echo-clone 0.2.0 (pynector_echo_clone:recorder)" in warning
    assert [r.status for r in plugins_by_name(registry.available_plugins())["recorder"]] == [
        "conflict: 'recorder' is also claimed by pynector-recorder 0.3.0",
        "conflict: 'recorder' is also claimed by pynector-echo-clone 0.2.0",
    ]


# Run-time registration


def test_a_runtime_plugin_receives_hook_calls_until_unregistered(discovery: Discovery) -> None:
    discovery.set_plugins_env("")
    plugin = WaitRecorder()
    name = registry.register_plugin(plugin, name="waits")
    assert name == "waits"
    relay = _plugins.hooks()
    assert relay is not None
    relay.pynector_retry_wait(info=wait(0.5))
    assert plugin.waits == [0.5]
    assert plugins_by_name(registry.available_plugins())["waits"] == [
        registry.PluginInfo("waits", None, None, "ok")
    ]
    registry.unregister_plugin("waits")
    assert _plugins.hooks() is None
    assert "waits" not in plugins_by_name(registry.available_plugins())


def test_a_runtime_plugin_can_be_unregistered_by_object(discovery: Discovery) -> None:
    discovery.set_plugins_env("")
    plugin = WaitRecorder()
    registry.register_plugin(plugin)
    registry.unregister_plugin(plugin)
    assert _plugins.hooks() is None


def test_runtime_plugins_survive_clear_cache(discovery: Discovery) -> None:
    plugin = WaitRecorder()
    registry.register_plugin(plugin, name="waits")
    registry.clear_cache()
    relay = _plugins.hooks()
    assert relay is not None
    relay.pynector_retry_wait(info=wait(2.0))
    assert plugin.waits == [2.0]


def test_pynector_plugins_does_not_apply_to_runtime_plugins(discovery: Discovery) -> None:
    discovery.set_plugins_env("")
    registry.register_plugin(WaitRecorder(), name="waits")
    discovery.set_plugins_env("something-else")
    assert _plugins.plugin_manager().get_plugin("waits") is not None


def test_registering_a_plugin_with_an_unknown_hook_is_a_configuration_error(
    discovery: Discovery,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        registry.register_plugin(Misspelt(), name="misspelt")
    message = str(caught.value)
    assert "unknown hook 'pynector_reqest' (did you mean 'pynector_request'?)" in message
    assert "pynector.hookspecs" in message
    assert _plugins.plugin_manager().get_plugin("misspelt") is None


def test_registering_a_plugin_with_wrong_hook_arguments_is_a_configuration_error(
    discovery: Discovery,
) -> None:
    with pytest.raises(ConfigurationError, match="extra") as caught:
        registry.register_plugin(WrongArguments(), name="wrong")
    assert type(caught.value.__cause__).__name__ == "PluginValidationError"
    assert _plugins.plugin_manager().get_plugin("wrong") is None


def test_registering_a_class_instead_of_an_instance_is_a_configuration_error(
    discovery: Discovery,
) -> None:
    with pytest.raises(
        ConfigurationError, match="WaitRecorder is a class, not a plugin object"
    ) as caught:
        registry.register_plugin(WaitRecorder)
    assert "register_plugin(WaitRecorder())" in str(caught.value)


def test_registering_the_same_plugin_twice_is_a_configuration_error(
    discovery: Discovery,
) -> None:
    plugin = WaitRecorder()
    registry.register_plugin(plugin, name="waits")
    with pytest.raises(ConfigurationError, match="already registered as 'waits'") as caught:
        registry.register_plugin(plugin, name="again")
    assert "unregister_plugin('waits') first" in str(caught.value)
    with pytest.raises(ConfigurationError, match="a plugin named 'waits' is already registered"):
        registry.register_plugin(WaitRecorder(), name="waits")
    assert _plugins.plugin_manager().get_plugin("waits") is plugin


def test_registering_a_plugin_with_an_empty_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="the name must be a non-empty string"):
        registry.register_plugin(WaitRecorder(), name=" ")


def test_unregistering_an_unknown_plugin_is_a_configuration_error(discovery: Discovery) -> None:
    with pytest.raises(ConfigurationError, match="No plugin 'nope' is registered"):
        registry.unregister_plugin("nope")
    with pytest.raises(ConfigurationError, match="nothing to unregister"):
        registry.unregister_plugin(WaitRecorder())


def test_an_installed_plugin_can_be_unregistered_until_the_cache_is_cleared(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-recorder")
    registry.unregister_plugin("recorder")
    assert plugins_by_name(registry.available_plugins())["recorder"][0].status == (
        "unregistered: removed with unregister_plugin()"
    )
    registry.clear_cache()
    assert plugins_by_name(registry.available_plugins())["recorder"][0].status == "ok"


def test_a_runtime_plugin_replaces_an_installed_plugin_of_the_same_name(
    discovery: Discovery,
) -> None:
    discovery.install("pynector-recorder")
    registry.unregister_plugin("recorder")
    replacement = WaitRecorder()
    registry.register_plugin(replacement, name="recorder")
    registry.clear_cache()
    assert _plugins.plugin_manager().get_plugin("recorder") is replacement
    assert plugins_by_name(registry.available_plugins())["recorder"] == [
        registry.PluginInfo("recorder", None, None, "ok"),
        registry.PluginInfo(
            "recorder",
            "pynector-recorder",
            "0.3.0",
            "replaced: another plugin was registered as 'recorder' at run time",
        ),
    ]


class _Counting:
    def __init__(self, telemetry: bool) -> None:
        self.pynector_telemetry = telemetry
        self.calls = 0

    @hookimpl
    def pynector_request(self, info: object) -> None:
        self.calls += 1


class _Switchable(_Counting):
    """A telemetry plugin that has somewhere to send data only while ``active``."""

    def __init__(self) -> None:
        super().__init__(telemetry=True)
        self.active = False
        self.configured: list[str] = []

    def pynector_telemetry_active(self) -> bool:
        return self.active

    @hookimpl
    def pynector_configure_telemetry(self, service_name: str, log_level: str) -> None:
        self.configured.append(service_name)
        self.active = True


@pytest.mark.anyio
@pytest.mark.usefixtures("pynector_logger")  # configure_telemetry sets its level
async def test_telemetry_plugins_with_nowhere_to_send_data_are_left_out(
    discovery: Discovery,
) -> None:
    discovery.set_plugins_env("")  # only this test's plugins
    tracer, other = _Switchable(), _Counting(telemetry=False)
    names = [registry.register_plugin(tracer), registry.register_plugin(other)]
    try:
        async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
            await client.request("x")  # the tracer is inactive: only the other plugin
            assert (tracer.calls, other.calls) == (0, 1)
            # configure_telemetry reaches inactive plugins (it is what activates them)
            configure_telemetry(service_name="svc")
            assert tracer.configured == ["svc"]
            await client.request("x")
            assert (tracer.calls, other.calls) == (1, 2)
        registry.unregister_plugin(names.pop())  # only the telemetry plugin is left
        tracer.active = False
        assert _plugins.hooks() is None  # nothing to call at all
        assert _plugins.relay() is not None
    finally:
        for name in names:
            registry.unregister_plugin(name)


@pytest.mark.anyio
async def test_clients_with_telemetry_off_never_call_telemetry_plugins() -> None:
    tracer, other = _Counting(telemetry=True), _Counting(telemetry=False)
    names = [registry.register_plugin(tracer), registry.register_plugin(other)]
    try:
        for enabled in (True, False):
            async with Pynector(
                transport=MockTransport(lambda d, **o: d), enable_telemetry=enabled
            ) as client:
                await client.request("x")
        registry.unregister_plugin(names.pop())  # only the telemetry plugin is left
        async with Pynector(
            transport=MockTransport(lambda d, **o: d), enable_telemetry=False
        ) as client:
            await client.request("x")
    finally:
        for name in names:
            registry.unregister_plugin(name)
    assert tracer.calls == 1
    assert other.calls == 2
