"""pynector-sdk's public surface and its registration as the ``sdk`` transport."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pynector_sdk
from pynector.registry import available_transports, resolve_transport
from pynector.transport.protocol import CallTransport


def test_public_names_are_sorted_and_documented() -> None:
    assert pynector_sdk.__doc__
    # isort-style, as ruff keeps it: CONSTANTS, then Classes, then the rest.
    assert pynector_sdk.__all__ == sorted(
        pynector_sdk.__all__, key=lambda n: (not n.isupper(), not n[:1].isupper(), n)
    )
    for name in pynector_sdk.__all__:
        obj = getattr(pynector_sdk, name)
        if inspect.isclass(obj):
            assert obj.__doc__, name
    assert pynector_sdk.SUPPORTED_PROVIDERS == ("anthropic", "openai")


def test_the_sdk_transport_is_registered_through_its_entry_point() -> None:
    (info,) = [t for t in available_transports() if t.name == "sdk"]
    assert (info.distribution, info.status) == ("pynector-sdk", "ok")
    assert info.version == pynector_sdk.__version__ == version("pynector-core")
    factory: object = resolve_transport("sdk")
    assert factory is pynector_sdk.SDKTransport


def test_the_factory_declares_max_connections_so_the_client_passes_its_config() -> None:
    assert pynector_sdk.SDKTransport.client_settings == frozenset({"max_connections"})
    parameters = inspect.signature(pynector_sdk.SDKTransport).parameters
    assert "max_connections" in parameters
    assert parameters["provider"].default is None


def test_it_is_a_full_transport() -> None:
    assert CallTransport in pynector_sdk.SDKTransport.__mro__


def test_the_transport_exposes_what_a_genai_span_needs() -> None:
    transport = pynector_sdk.SDKTransport("anthropic", api_key="sk-test-1234")
    assert transport.transport_type == "sdk"
    assert transport.provider == "anthropic"
    assert transport.default_operation == "messages.create"
    assert transport.operation_name({"model": "m"}) == "messages.create"
    assert transport.operation_name({"operation": "messages.count_tokens"}) == (
        "messages.count_tokens"
    )
    assert transport.base_url == "https://api.anthropic.com"
