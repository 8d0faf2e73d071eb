"""Fixtures for the documentation tests: the example API and a fake OpenAI/Anthropic API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sdk._fake_api import FakeAPI

from ._server import ExampleAPI


@pytest.fixture(scope="session")
def example_api() -> Iterator[ExampleAPI]:
    """The stand-in for ``https://api.example.com``."""
    with ExampleAPI() as api:
        yield api


@pytest.fixture(scope="session")
def fake_sdk_api() -> Iterator[FakeAPI]:
    """The stand-in for the OpenAI and Anthropic APIs."""
    api = FakeAPI().start()
    yield api
    api.stop()


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch, fake_sdk_api: FakeAPI) -> FakeAPI:
    """Point the SDKs at the fake API, as a user's environment points them at the real one."""
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_sdk_api.url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_sdk_api.root)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
    return fake_sdk_api
