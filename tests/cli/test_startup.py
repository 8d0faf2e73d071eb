"""``pynector request`` starts fast: on asyncio it imports only the engine it sends with.

The time itself is measured in ``benchmarks/bench_startup.py``; here the cause
is pinned: what the command leaves in ``sys.modules``, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import CountingServer, env

# Runs the command in-process, then prints which of the named modules it imported.
_PROBE = """
import json, sys
from pynector.cli import main
status = main(sys.argv[2:])
print(json.dumps({"status": status, "loaded": [m for m in sys.argv[1].split(",")
                                               if m in sys.modules]}), file=sys.stderr)
"""

_NOT_ON_ASYNCIO = (
    "httpx2",
    "httpcore2",
    "trio",
    "h2",
    "rich",
    "pydantic",
    "openai",
    "pynector_sdk",
)


def _modules_loaded_by(*args: str, extra_env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join((*_NOT_ON_ASYNCIO, "aiohttp")), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env(), **(extra_env or {})},
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["status"] == 0, done.stderr
    loaded: list[str] = report["loaded"]
    return loaded


def test_request_on_asyncio_imports_aiohttp_and_not_httpx2_httpcore2_or_trio(
    server: CountingServer,
) -> None:
    loaded = _modules_loaded_by("request", f"{server.url}/ok/1")
    assert loaded == ["aiohttp"]


def test_a_base_url_needs_httpx2_to_parse_it_but_still_no_httpcore2_or_trio(
    server: CountingServer,
) -> None:
    loaded = _modules_loaded_by("request", "/ok/2", "--base-url", server.url)
    assert sorted(loaded) == ["aiohttp", "httpx2"]


def test_a_proxy_in_the_environment_is_still_honoured_on_aiohttp(server: CountingServer) -> None:
    # A proxy that refuses connections: routing through it makes the request fail,
    # which shows the environment is still read when the direct path skips httpx2.
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "request", f"{server.url}/ok/3", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env(), "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""},
    )
    assert done.returncode == 1, done.stdout
    assert "ConnectionError" in done.stderr
    assert server.hits["/ok/3"] == 0


def test_importing_pynector_and_its_transports_imports_no_command_line_code() -> None:
    probe = (
        "import sys, pynector, pynector_http, pynector_sdk\n"
        "print(sorted(m for m in sys.modules if m.startswith('pynector.cli') or m.endswith('._cli')"
        " or m == 'pluggy'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
