"""The public surface: sorted __all__, a light import, one shared version."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pynector

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_MODULES = [
    "pynector",
    "pynector.cli",
    "pynector.errors",
    "pynector.concurrency",
    "pynector.hookspecs",
    "pynector.redact",
    "pynector.registry",
    "pynector.telemetry",
    "pynector.testing",
    "pynector.transport",
    "pynector.transport.protocol",
]


def _isort_order(name: str) -> tuple[int, str]:
    """ruff's order for ``__all__`` (RUF022): CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_modules_list_their_names_sorted_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    assert module.__all__ == sorted(module.__all__, key=_isort_order)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"


# Modules that cost milliseconds to import, or that only some programs need.
HEAVY = [
    "asyncio",
    "email",
    "ssl",
    "importlib.metadata",
    "pydantic",
    "pluggy",
    "rich",
    "trio",
    "httpx2",
    "httpx",
    "httpcore2",
    "aiohttp",
    "openai",
    "anthropic",
    "opentelemetry",
    "pynector_http",
    "pynector_sdk",
    "pynector_otel",
]

IMPORT_PYNECTOR = """
import json, sys
import anyio
before = set(sys.modules)
import pynector
added = set(sys.modules) - before
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in added if any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def test_import_pynector_pulls_in_no_heavy_module() -> None:
    # Only what pynector adds to `import anyio` counts (AnyIO decides its own imports).
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PYNECTOR, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []


def test_every_distribution_shares_one_version() -> None:
    versions = {
        path.parent.name: tomllib.loads(path.read_text())["project"]["version"]
        for path in [ROOT / "pyproject.toml", *ROOT.glob("pynector-*/pyproject.toml")]
    }
    assert set(versions.values()) == {pynector.__version__}, versions


def test_every_distribution_ships_py_typed() -> None:
    for package in [
        "pynector-core/src/pynector",
        "pynector-http/src/pynector_http",
        "pynector-sdk/src/pynector_sdk",
        "pynector-otel/src/pynector_otel",
    ]:
        assert (ROOT / package / "py.typed").exists(), package


def test_redact_hides_credentials_in_urls_headers_and_text() -> None:
    from pynector.redact import Secret, is_secret_header, redact_url, scrub, secret_values

    assert (
        redact_url("https://me:pw@h.test/p?token=abc&page=2")
        == "https://[redacted]:[redacted]@h.test/p?token=[redacted]&page=2"
    )
    assert redact_url("https://h.test/p?x=1", mask="REDACTED") == "https://h.test/p?x=1"
    assert all(map(is_secret_header, ["Authorization", "X-Api-Key", "Cookie", "X-Auth-Token"]))
    assert not is_secret_header("Content-Type")
    secrets = secret_values([("Authorization", "Bearer sk-123456"), ("Accept", "text/plain")])
    assert secrets == {"Bearer sk-123456", "sk-123456"}
    assert scrub("token sk-123456 was rejected", secrets) == "token [redacted] was rejected"
    assert repr(Secret("sk-123456")) == str(Secret("sk-123456")) == "'[redacted]'"


def test_response_too_large_error_is_a_public_non_retryable_transport_error() -> None:
    from pynector import errors

    assert "ResponseTooLargeError" in pynector.__all__
    assert "ResponseTooLargeError" in errors.__all__
    assert pynector.ResponseTooLargeError is errors.ResponseTooLargeError
    error = errors.ResponseTooLargeError("too large", limit=1024)
    assert isinstance(error, errors.TransportError)
    assert error.retryable is False
    assert error.limit == 1024
    assert "ResponseTooLargeError" in (errors.__doc__ or "")
