"""Bad input is a ConfigurationError naming it and the fix; SDKs load lazily; SDK extras are off."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anthropic
import pytest
from opentelemetry import context, trace

from pynector import Pynector
from pynector.errors import ConfigurationError
from pynector_sdk import SDKTransport

from ._fake_api import FakeAPI
from .conftest import API_KEY

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


# -- providers and client options ---------------------------------------------------


@pytest.mark.parametrize("provider", ["gemini", "", 3])
def test_an_unknown_provider_lists_the_supported_ones(provider: object) -> None:
    with pytest.raises(ConfigurationError, match="'anthropic', 'openai'") as caught:
        Pynector(transport_type="sdk", provider=provider, api_key=API_KEY)
    assert "unknown provider" in str(caught.value)


def test_a_misspelt_provider_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="Did you mean 'openai'"):
        SDKTransport("opneai", api_key=API_KEY)


def test_the_provider_is_required() -> None:
    with pytest.raises(ConfigurationError, match=r"needs provider=\.\.\..*'anthropic', 'openai'"):
        Pynector(transport_type="sdk", api_key=API_KEY)


def test_provider_names_are_case_insensitive() -> None:
    assert SDKTransport(" OpenAI ", api_key=API_KEY).provider == "openai"


@pytest.mark.parametrize(
    ("provider", "env"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_a_missing_api_key_names_the_option_and_the_environment_variable(
    provider: str, env: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Pynector(transport_type="sdk", provider=provider)
    message = str(caught.value)
    assert "api_key=" in message
    assert env in message
    with pytest.raises(ConfigurationError, match=env):
        SDKTransport(provider, api_key="")


@pytest.mark.parametrize(
    ("provider", "env"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_the_api_key_may_come_from_the_sdks_environment_variable(
    provider: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, API_KEY)
    transport = SDKTransport(provider)
    assert transport.sdk_client.api_key == API_KEY


def test_anthropic_accepts_its_other_credentials() -> None:
    transport = SDKTransport("anthropic", auth_token="token-1234")
    assert transport.sdk_client.auth_token == "token-1234"


def test_sdk_client_options_pass_through() -> None:
    transport = SDKTransport(
        "openai",
        api_key=API_KEY,
        organization="org-1",
        project="proj-1",
        default_headers={"x-team": "a"},
    )
    client = transport.sdk_client
    assert (client.organization, client.project) == ("org-1", "proj-1")
    assert client.default_headers["x-team"] == "a"


def test_an_unknown_option_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match=r"'api_kye'.*Did you mean 'api_key'"):
        Pynector(transport_type="sdk", provider="openai", api_kye=API_KEY)


def test_organization_is_an_openai_option() -> None:
    with pytest.raises(ConfigurationError, match="'organization' is not accepted by provider"):
        SDKTransport("anthropic", api_key=API_KEY, organization="org-1")


@pytest.mark.parametrize(
    ("provider", "option", "reason"),
    [
        ("openai", "max_retries", "request_with_retry"),
        ("anthropic", "max_retries", "request_with_retry"),
        ("anthropic", "open_telemetry", "pynector-otel"),
    ],
)
def test_options_pynector_owns_are_refused_with_the_reason(
    provider: str, option: str, reason: str
) -> None:
    options: dict[str, Any] = {option: 3}
    with pytest.raises(ConfigurationError, match=reason):
        SDKTransport(provider, api_key=API_KEY, **options)


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), "10"])
def test_a_bad_timeout_is_refused(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout="):
        SDKTransport("openai", api_key=API_KEY, timeout=timeout)


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_a_bad_max_connections_is_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_connections="):
        SDKTransport("openai", api_key=API_KEY, max_connections=value)


def test_an_api_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="api_key must be a string"):
        SDKTransport("anthropic", api_key=12345678)


def test_options_the_sdk_rejects_become_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="rejected the options") as caught:
        SDKTransport("openai", api_key=API_KEY, base_url="http://x/v1", data_residency="eu")
    assert isinstance(caught.value.__cause__, ValueError)
    assert "mutually exclusive" in str(caught.value)


# -- the SDKs' own retries and tracing are off -----------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_sdks_own_retries_are_off(provider: str) -> None:
    assert SDKTransport(provider, api_key=API_KEY).sdk_client.max_retries == 0


@pytest.mark.anyio
async def test_the_anthropic_sdks_own_tracing_is_off(api: FakeAPI) -> None:
    transport = SDKTransport("anthropic", api_key=API_KEY, base_url=api.root)
    options = transport.sdk_client.open_telemetry
    assert options["traces"]["enabled"] is False
    assert options["propagation"] is False
    # With a trace in progress, the SDK on its own sends its trace context...
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    token = context.attach(trace.set_span_in_context(parent))
    try:
        raw = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=api.root, max_retries=0)
        try:
            await raw.messages.create(**MESSAGE)  # type: ignore[call-overload]
        finally:
            await raw.close()
        async with transport:
            await transport.request(MESSAGE)
    finally:
        context.detach(token)
    by_sdk, by_pynector = api.requests
    assert "0af7651916cd43dd8448eb211c80319c" in by_sdk.headers.get("traceparent", "")
    # ... and through pynector it does not: pynector's own span is the one per call.
    assert "traceparent" not in by_pynector.headers


# -- requests -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("data", [["model", "m"], "hello", 42, ("a", 1)])
async def test_request_data_that_is_not_a_dict_is_refused(api: FakeAPI, data: object) -> None:
    async with Pynector(
        transport_type="sdk", provider="openai", api_key=API_KEY, base_url=api.url
    ) as client:
        with pytest.raises(ConfigurationError, match="must be a dict"):
            await client.request(data)
    assert api.count() == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("embedings.create", "Did you mean 'embeddings.create'"),
        ("chat.completions.creat", "Did you mean 'chat.completions.create'"),
        ("close", "not a dotted path"),
        ("_client.post", "not a dotted path"),
        ("with_options.chat", "no API resource 'with_options'"),
        ("chat.completions.with_raw_response", "has no method 'with_raw_response'"),
        ("chat..create", "not a dotted path"),
    ],
)
async def test_an_unknown_operation_is_refused_with_a_hint(
    api: FakeAPI, operation: str, expected: str
) -> None:
    async with Pynector(
        transport_type="sdk", provider="openai", api_key=API_KEY, base_url=api.url
    ) as client:
        with pytest.raises(ConfigurationError, match="unknown operation") as caught:
            await client.request({**CHAT, "operation": operation})
    assert expected in str(caught.value)
    assert "'embeddings.create'" in str(caught.value)
    assert api.count() == 0


@pytest.mark.anyio
async def test_an_operation_that_is_not_a_string_is_refused(api: FakeAPI) -> None:
    async with SDKTransport("anthropic", api_key=API_KEY, base_url=api.root) as transport:
        with pytest.raises(ConfigurationError, match="'operation' must be a string"):
            await transport.request({**MESSAGE, "operation": ["messages", "create"]})


@pytest.mark.anyio
async def test_an_unknown_argument_is_named_with_a_suggestion(api: FakeAPI) -> None:
    async with SDKTransport("anthropic", api_key=API_KEY, base_url=api.root) as transport:
        with pytest.raises(ConfigurationError, match="'max_token' -> 'max_tokens'"):
            await transport.request({**MESSAGE, "max_token": 5})
        with pytest.raises(ConfigurationError, match="does not take 1"):
            await transport.request({**MESSAGE, 1: 2})  # type: ignore[dict-item]
    assert api.count() == 0


# -- lazy imports and install hints ----------------------------------------------------------


def test_importing_pynector_sdk_imports_no_sdk() -> None:
    code = (
        "import sys, pynector_sdk\n"
        "print(','.join(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))"
    )
    assert _run(code) == ""


@pytest.mark.parametrize(("provider", "other"), [("openai", "anthropic"), ("anthropic", "openai")])
def test_a_transport_imports_only_its_providers_sdk(provider: str, other: str) -> None:
    code = (
        "import sys\n"
        "from pynector import Pynector\n"
        f"Pynector(transport_type='sdk', provider={provider!r}, api_key='key-1234')\n"
        f"print({provider!r} in sys.modules, {other!r} in sys.modules)"
    )
    assert _run(code) == "True False"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_missing_sdk_gives_the_exact_pip_install(provider: str) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{provider!r}] = None  # as if it were not installed\n"
        "from pynector import Pynector\n"
        "from pynector.errors import ConfigurationError\n"
        "try:\n"
        f"    Pynector(transport_type='sdk', provider={provider!r}, api_key='key-1234')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    assert f"Install it with: pip install {provider}" in _run(code)
