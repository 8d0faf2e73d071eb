"""Fixtures for the SDK transport's tests: a fake OpenAI/Anthropic API on 127.0.0.1.

The real openai and anthropic SDKs talk HTTP to :class:`FakeAPI` (see
``_fake_api.py``); nothing of the SDKs is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pynector import Pynector

# `pynector batch` run in this process (the --via batch-api tests).
from tests.cli.conftest import run as run

from ._fake_api import FakeAPI

API_KEY = "sk-test-7d1f0c2a9b8e4f3d"
"""A recognisable fake key: tests assert it never shows up where it must not."""

# The openai SDK ends a chat-completions stream with `break` at "data: [DONE]",
# leaving its SSE generators for the event loop to finalise; trio (unlike
# asyncio) reports each one as a ResourceWarning when it is collected. Nothing
# stays open (the response is closed). Only those generators are exempt from
# -W error, in the tests that stream.
SDK_STREAM_GENERATORS = pytest.mark.filterwarnings(
    "ignore:Async generator '(openai._streaming|httpx2._models|httpcore2.):ResourceWarning"
)


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    """A fresh fake API server per test (own port, own counters)."""
    server = FakeAPI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _hermetic_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Keep the developer's credentials, profiles and base URLs out of the tests."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_ADMIN_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_CUSTOM_HEADERS",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CUSTOM_HEADERS",
        "ANTHROPIC_IDENTITY_TOKEN",
        "ANTHROPIC_IDENTITY_TOKEN_FILE",
        "ANTHROPIC_FEDERATION_RULE_ID",
        "ANTHROPIC_ORGANIZATION_ID",
        "ANTHROPIC_CONFIG_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    # The anthropic SDK also looks for profiles under ~/.config/anthropic.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def openai_client(api: FakeAPI, **options: Any) -> Pynector:
    """A client of the sdk transport for OpenAI, on the fake API."""
    return Pynector(
        transport_type="sdk", provider="openai", api_key=API_KEY, base_url=api.url, **options
    )


def anthropic_client(api: FakeAPI, **options: Any) -> Pynector:
    """A client of the sdk transport for Anthropic, on the fake API."""
    return Pynector(
        transport_type="sdk", provider="anthropic", api_key=API_KEY, base_url=api.root, **options
    )
