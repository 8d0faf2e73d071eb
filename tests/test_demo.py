"""``pynector demo`` (the README's ``make demo``) runs end to end with no network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

# The demo's promise: a newcomer sees all of it in under ten seconds.
DEMO_SECONDS = 10.0


def _demo(*args: str, prelude: str = "") -> tuple[subprocess.CompletedProcess[str], float]:
    code = f"{prelude}\nfrom pynector.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.perf_counter() - start


REQUESTS = {"asyncio": "300", "trio": "100"}  # asyncio: the default size, as make demo runs it

# Says on stderr when anything registers a plugin for the whole process.
GLOBAL_PLUGIN = "a plugin was registered for the whole process"
_WATCH_REGISTRATIONS = f"""
import pynector.registry
_register = pynector.registry.register_plugin
def _announce(*args, **kwargs):
    sys.stderr.write({GLOBAL_PLUGIN!r} + "\\n")
    return _register(*args, **kwargs)
pynector.registry.register_plugin = _announce
"""

Demo = tuple[str, str, float, str]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def demo(request: pytest.FixtureRequest) -> Demo:
    """The demo run once per event loop: (backend, its stdout, its wall time, its stderr)."""
    backend: str = request.param
    done, elapsed = _demo(
        "--backend", backend, "--requests", REQUESTS[backend], prelude=_WATCH_REGISTRATIONS
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return backend, done.stdout, elapsed, done.stderr


def test_demo_shows_request_timeout_retry_and_batch_within_ten_seconds(demo: Demo) -> None:
    backend, out, elapsed, _ = demo
    requests = REQUESTS[backend]
    assert "GET /users/1 -> 200" in out
    assert "with timeout=0.5 -> TimeoutError" in out
    assert "429 RateLimitError; waiting 1.00 s (retry-after)" in out
    assert "the server counted 3 requests" in out
    assert f"{'succeeded':<20}{requests:>12}" in out
    assert f"progress: {requests}/{requests} lines (100%): {requests} succeeded, 0 failed" in out
    assert elapsed < DEMO_SECONDS, out


def test_demo_makes_an_llm_call_through_the_sdk_transport(demo: Demo) -> None:
    out = demo[1]
    assert "5. An LLM call through the sdk transport" in out
    assert "POST /v1/chat/completions through the openai SDK: 'What does pynector do?'" in out
    assert "-> ChatCompletion from demo-model:" in out
    assert "'Hello from the demo server: pynector sent this through the openai SDK.'" in out
    assert "4 prompt + 12 completion tokens; the server counted 1 request" in out


def test_demo_stops_a_batch_with_sigterm_and_resumes_it_with_nothing_lost_or_repeated(
    demo: Demo,
) -> None:
    out = demo[1]
    stopped = re.search(r"sent SIGTERM \(what `kill` sends\) at (\d+) of 150 lines done", out)
    assert stopped is not None, out
    assert "SIGTERM: starting no new requests; waiting for the 5 in flight" in out
    written = re.search(r"it wrote (\d+) results and exited with status 143", out)
    assert written is not None, out
    # Stopped mid-way: what was done by then is kept (the batch goes on while the
    # signal travels, and finishes the requests in flight).
    assert int(stopped[1]) <= int(written[1]) < 150
    resumed = re.search(
        r"the same command again: (\d+) already done, (\d+) sent; exit status 0", out
    )
    assert resumed is not None, out
    assert resumed[1] == written[1]
    assert int(resumed[1]) + int(resumed[2]) == 150
    assert (
        "150 result lines for 150 ids; the server answered 150 requests for 150 orders: "
        "0 lost, 0 repeated" in out
    )


def test_demo_traces_its_retries_and_progress_with_a_plugin_of_its_client_alone(
    demo: Demo,
) -> None:
    # The retry lines and the batch's progress come from the client's own plugin
    # and results: the demo registers nothing for the whole process.
    out, err = demo[1], demo[3]
    assert "attempt 1: 503 ServerError; waiting" in out
    assert "progress: " in out
    assert GLOBAL_PLUGIN not in err


@pytest.mark.parametrize("missing", ["pynector_sdk", "openai"])
def test_demo_without_the_sdk_says_how_to_install_it_and_goes_on(missing: str) -> None:
    # As if the distribution were not installed: its import fails.
    done, _ = _demo("--requests", "20", prelude=f"sys.modules[{missing!r}] = None")

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    section = out[out.index("5. An LLM call") : out.index("6. A batch")]
    assert "skipped: " in section
    assert 'Install the sdk transport and the openai SDK with: pip install "pynector[sdk]"' in (
        section
    )
    assert "0 lost, 0 repeated" in out


def test_the_cli_and_the_demo_do_not_import_the_sdk_until_the_demo_runs() -> None:
    code = (
        "import json, sys\n"
        "import pynector, pynector.cli, pynector.cli._demo, pynector.cli._demo_server\n"
        "pynector.cli.build_parser()\n"
        "print(json.dumps([m for m in ('pynector_sdk', 'openai', 'anthropic', 'rich') "
        "if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout) == []


def test_demo_rejects_a_bad_batch_size_with_a_clear_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "demo", "--requests", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--requests and --concurrency must be at least 1" in done.stderr


def test_demo_on_trio_without_trio_says_how_to_install_it() -> None:
    done, _ = _demo("--backend", "trio", prelude="sys.modules['trio'] = None")
    assert done.returncode == 2
    assert "--backend trio needs trio: pip install trio" in done.stderr
