"""``pynector batch``, run as a real subprocess against a loopback server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    PYNECTOR,
    CountingServer,
    env,
    read_results,
    read_stderr_until,
    run_cli,
    start_cli,
    wait_for_in_flight,
    wait_for_lines,
    write_lines,
)


def summary(stdout: str) -> dict[str, str]:
    """The plain summary table as {measure: value}."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        name, _, value = line.strip().rpartition("  ")
        rows[name.strip()] = value.strip()
    return rows


def ids(results: list[dict[str, Any]]) -> list[Any]:
    return [result["id"] for result in results]


def slow_requests(count: int, delay: float) -> list[dict[str, Any]]:
    return [{"id": f"r{n}", "path": f"/ok/{n}", "params": {"delay": delay}} for n in range(count)]


def test_a_batch_writes_one_result_per_line_with_its_id_and_exits_zero(
    tmp_path: Path, server: CountingServer
) -> None:
    lines: list[dict[str, Any]] = [
        {"id": f"r{n}", "path": f"/ok/{n}", "params": {"delay": 0.01}} for n in range(30)
    ]
    lines += [{"path": f"/ok/plain-{n}", "method": "GET"} for n in range(10)]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--base-url", server.url, "--concurrency", "4")

    assert done.returncode == 0, done.stderr
    results = read_results(out)
    assert sorted(ids(results), key=str) == sorted(
        [f"r{n}" for n in range(30)] + list(range(31, 41)), key=str
    )
    by_id = {result["id"]: result for result in results}
    first = by_id["r7"]
    assert first["ok"] is True
    assert first["line"] == 8
    assert first["attempts"] == 1
    assert isinstance(first["elapsed"], float)
    assert first["response"]["status_code"] == 200
    assert first["response"]["headers"]["content-type"] == "application/json"
    assert first["response"]["body"] == {"path": "/ok/7", "hits": 1}
    assert by_id[31]["response"]["body"]["path"] == "/ok/plain-0"  # no id: the line number
    assert server.total_hits == 40
    assert 1 < server.max_in_flight <= 4
    rows = summary(done.stdout)
    assert done.stdout.startswith("Batch summary")
    assert (rows["sent"], rows["succeeded"], rows["failed"]) == ("40", "40", "0")


def test_running_the_same_command_again_skips_the_ids_already_done(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": f"/ok/{n}"} for n in range(12)])
    out = tmp_path / "out.jsonl"
    first = run_cli("batch", source, "-o", out, "--base-url", server.url)
    assert first.returncode == 0, first.stderr
    written = out.read_bytes()

    again = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert again.returncode == 0, again.stderr
    assert out.read_bytes() == written
    assert server.total_hits == 12
    rows = summary(again.stdout)
    assert (rows["sent"], rows["already done"]) == ("0", "12")


def test_a_batch_killed_half_way_resumes_with_every_id_exactly_once(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", slow_requests(200, 0.02))
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url, "--concurrency", "4")

    process = start_cli(*args)
    wait_for_lines(out, 50, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    before = out.read_bytes()
    whole = before[: before.rfind(b"\n") + 1]
    assert 50 <= whole.count(b"\n") < 200

    resumed = run_cli(*args)

    assert resumed.returncode == 0, resumed.stderr
    after = out.read_bytes()
    assert after.startswith(whole), "a whole line written before the kill was lost"
    results = read_results(out)
    assert sorted(ids(results)) == sorted(f"r{n}" for n in range(200))
    assert all(result["ok"] for result in results)
    rows = summary(resumed.stdout)
    assert int(rows["already done"]) == whole.count(b"\n")
    assert int(rows["sent"]) == 200 - whole.count(b"\n")


def test_a_torn_last_line_is_dropped_and_its_request_sent_again(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": n, "path": f"/ok/{n}"} for n in range(5)])
    out = tmp_path / "out.jsonl"
    assert run_cli("batch", source, "-o", out, "--base-url", server.url).returncode == 0
    lines = out.read_bytes().splitlines(keepends=True)
    kept = lines[:3]
    torn = lines[3][: len(lines[3]) // 2]
    out.write_bytes(b"".join(kept) + torn)
    redone = {json.loads(line)["id"] for line in lines[3:]}

    resumed = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert resumed.returncode == 0, resumed.stderr
    assert "dropped a last line cut short" in resumed.stderr
    assert out.read_bytes().startswith(b"".join(kept))
    assert sorted(ids(read_results(out))) == [0, 1, 2, 3, 4]
    assert sum(server.hits[f"/ok/{n}"] for n in redone) == 2 * len(redone)


def test_a_whole_last_line_missing_its_newline_is_kept(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": n, "path": f"/ok/{n}"} for n in range(3)])
    out = tmp_path / "out.jsonl"
    assert run_cli("batch", source, "-o", out, "--base-url", server.url).returncode == 0
    out.write_bytes(out.read_bytes().rstrip(b"\n"))

    resumed = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert resumed.returncode == 0, resumed.stderr
    assert sorted(ids(read_results(out))) == [0, 1, 2]
    assert server.total_hits == 3


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_new_requests_and_leaves_a_valid_file_to_resume(
    tmp_path: Path, server: CountingServer, signum: signal.Signals, status: int
) -> None:
    source = write_lines(tmp_path / "in.jsonl", slow_requests(40, 0.05))
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url, "--concurrency", "2")

    process = start_cli(*args)
    wait_for_lines(out, 10, process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == status, stderr
    assert f"{signum.name}: starting no new requests" in stderr
    assert "Run the same command again to resume" in stderr
    assert stdout.startswith("Batch summary")
    interrupted = read_results(out)  # every line is whole JSON
    assert 10 <= len(interrupted) < 40
    assert server.total_hits == len(interrupted)  # the requests in flight were finished

    resumed = run_cli(*args)

    assert resumed.returncode == 0, resumed.stderr
    assert sorted(ids(read_results(out))) == sorted(f"r{n}" for n in range(40))


def test_bad_lines_are_reported_with_their_line_numbers_skipped_and_not_fatal(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "path": "/ok/a"},
            "{not json",
            "[1, 2]",
            {"id": True, "path": "/ok/x"},
            "",
            {"id": "b", "path": "/ok/b"},
            {"custom_id": "c", "url": "/v1/chat/completions"},
            b"\xff\xfe".decode("latin-1"),
        ],
    )
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert done.returncode == 1
    assert f"{source}:2: skipped: not valid JSON" in done.stderr
    assert f"{source}:3: skipped: a request line must be a JSON object, not list" in done.stderr
    assert f'{source}:4: skipped: "id" must be a non-empty string or an integer' in done.stderr
    assert f"{source}:7: skipped: a Batch API line (it has custom_id) needs body" in done.stderr
    assert f"{source}:8: skipped: not valid JSON" in done.stderr
    assert f"{source}:5:" not in done.stderr  # a blank line is not an error
    assert sorted(ids(read_results(out))) == ["a", "b"]
    assert summary(done.stdout)["bad lines"] == "5"


def test_a_duplicate_id_is_reported_and_only_its_first_line_is_sent(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "same", "path": "/ok/first"},
            {"id": "same", "path": "/ok/second"},
            {"path": "/ok/three"},
            {"id": 3, "path": "/ok/explicit-three"},
        ],
    )
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert done.returncode == 1
    assert f"{source}:2: skipped: duplicate id 'same'" in done.stderr
    assert f"{source}:4: skipped: duplicate id 3" in done.stderr
    assert sorted(ids(read_results(out)), key=str) == [3, "same"]
    assert server.hits["/ok/first"] == 1
    assert server.hits["/ok/second"] == 0
    assert summary(done.stdout)["duplicate ids"] == "2"


def test_an_unknown_transport_is_a_usage_error_that_names_the_installed_ones(
    tmp_path: Path,
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": "/x"}])
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--transport", "htp")

    assert done.returncode == 2
    assert "Unknown --transport 'htp'. Did you mean 'http'?" in done.stderr
    assert "Installed transports: echo, http" in done.stderr
    assert not out.exists()


def test_a_missing_input_file_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", tmp_path / "missing.jsonl", "-o", out, "--transport", "echo")

    assert done.returncode == 2
    assert f"pynector batch: {tmp_path / 'missing.jsonl'}: no such file" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("parent-is-a-file", "is not a directory"),
        ("missing-directory", "does not exist; create it first"),
        ("proc", "No such file or directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_a_usage_error_before_anything_is_sent(
    tmp_path: Path, server: CountingServer, where: str, why: str
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": "/ok/1"}])
    (tmp_path / "file").write_text("a regular file\n")
    out = {
        "parent-is-a-file": tmp_path / "file" / "out.jsonl",
        "missing-directory": tmp_path / "no" / "such" / "out.jsonl",
        "proc": Path("/proc/pynector-test-out.jsonl"),  # root cannot create files here either
    }[where]

    for dry_run in ([], ["--dry-run"]):
        done = run_cli("batch", source, "-o", out, "--base-url", server.url, *dry_run)

        assert done.returncode == 2, done.stderr
        assert f"pynector batch: cannot write the output -o {out}: " in done.stderr
        assert why in done.stderr
    assert server.total_hits == 0


def test_a_store_that_is_not_installed_is_a_usage_error_without_its_password(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": "/ok/1"}])
    out = tmp_path / "out.jsonl"

    done = run_cli(
        "batch", source, "-o", out, "--base-url", server.url, "--store", "nosuch://:pw-9f3@host/0"
    )

    assert done.returncode == 2
    assert "no store is installed for nosuch:// URLs (--store 'nosuch://" in done.stderr
    assert "pw-9f3" not in done.stderr + done.stdout
    assert server.total_hits == 0
    assert not out.exists()


def test_the_input_file_cannot_be_the_output(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"a": 1}])

    done = run_cli("batch", source, "-o", source, "--transport", "echo")

    assert done.returncode == 2
    assert "is the input file too" in done.stderr
    assert source.read_text() == '{"a": 1}\n'


def test_dry_run_checks_the_file_and_sends_and_writes_nothing(
    tmp_path: Path, server: CountingServer
) -> None:
    good = write_lines(tmp_path / "good.jsonl", [{"path": f"/ok/{n}"} for n in range(3)])
    bad = write_lines(tmp_path / "bad.jsonl", [{"path": "/ok/1"}, "oops", {"path": "/ok/2"}])
    out = tmp_path / "out.jsonl"

    valid = run_cli("batch", good, "-o", out, "--base-url", server.url, "--dry-run")
    invalid = run_cli("batch", bad, "-o", out, "--base-url", server.url, "--dry-run")

    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("Dry run: nothing was sent")
    assert summary(valid.stdout)["to send"] == "3"
    assert invalid.returncode == 1
    assert f"{bad}:2: skipped: not valid JSON" in invalid.stderr
    assert summary(invalid.stdout)["bad lines"] == "1"
    assert not out.exists()
    assert server.total_hits == 0


def test_dry_run_counts_what_an_earlier_run_already_did(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": f"/ok/{n}"} for n in range(4)])
    half = write_lines(tmp_path / "half.jsonl", [{"path": f"/ok/{n}"} for n in range(2)])
    out = tmp_path / "out.jsonl"
    assert run_cli("batch", half, "-o", out, "--base-url", server.url).returncode == 0

    done = run_cli("batch", source, "-o", out, "--base-url", server.url, "--dry-run")

    assert done.returncode == 0, done.stderr
    rows = summary(done.stdout)
    assert (rows["to send"], rows["already done"]) == ("2", "2")
    assert server.total_hits == 2


def test_batch_api_lines_become_sdk_calls_and_an_unsupported_url_is_skipped(
    tmp_path: Path, server: CountingServer
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"custom_id": "chat-1", "method": "POST", "url": "/v1/chat/completions", "body": body},
            {"custom_id": "bad-1", "method": "POST", "url": "/v1/images", "body": {}},
        ],
    )
    out = tmp_path / "out.jsonl"
    sdk = ["--transport", "sdk", "--provider", "openai", "--api-key", "sk-test-key"]

    done = run_cli("batch", source, "-o", out, *sdk, "--base-url", f"{server.url}/v1")

    assert done.returncode == 1  # the unsupported url
    assert f"{source}:2: skipped: \"url\" '/v1/images' is not one of the supported" in done.stderr
    (result,) = read_results(out)
    assert result["id"] == "chat-1"
    assert result["response"]["choices"][0]["message"]["content"].startswith("echo: Hi")
    assert server.hits["/v1/chat/completions"] == 1


def test_a_transport_without_cli_support_gets_each_line_as_its_request(tmp_path: Path) -> None:
    lines = [{"id": "a", "question": 42}, {"custom_id": "b", "params": {"x": 1}}]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--transport", "echo")

    assert done.returncode == 0, done.stderr
    responses = {result["id"]: result["response"] for result in read_results(out)}
    # echo (an example third-party transport) declares no pynector_cli_support:
    # the defaults read pynector's own lines and know no provider format.
    assert responses == {"a": {"question": 42}, 2: {"custom_id": "b", "params": {"x": 1}}}


def test_openai_batch_lines_are_posted_by_the_http_transport(
    tmp_path: Path, server: CountingServer
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    line = {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": body}
    source = write_lines(tmp_path / "in.jsonl", [line])
    out = tmp_path / "out.jsonl"

    # A base URL ending in /v1 does not double it: the request goes to /v1/chat/completions.
    done = run_cli("batch", source, "-o", out, "--base-url", f"{server.url}/v1")

    assert done.returncode == 0, done.stderr
    (result,) = read_results(out)
    assert result["id"] == "q1"
    reply = result["response"]["body"]
    assert reply["choices"][0]["message"]["content"].startswith("echo: hello")
    assert server.hits["/v1/chat/completions"] == 1


def test_openai_batch_lines_through_the_sdk_transport_never_write_the_api_key(
    tmp_path: Path, server: CountingServer
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    line = {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": body}
    source = write_lines(tmp_path / "in.jsonl", [line])
    out = tmp_path / "out.jsonl"
    key = "sk-test-very-secret-key-123"

    done = run_cli(
        "batch",
        source,
        "-o",
        out,
        "--transport",
        "sdk",
        "--provider",
        "openai",
        "--api-key",
        key,
        "--base-url",
        f"{server.url}/v1",
    )

    assert done.returncode == 0, done.stderr
    (result,) = read_results(out)
    message = result["response"]["choices"][0]["message"]["content"]
    # The server echoed the Authorization header it received; the key is redacted.
    assert message == "echo: hello (auth: Bearer [redacted])"
    assert key not in out.read_text() + done.stdout + done.stderr


def test_secret_headers_never_reach_the_output_or_the_terminal(
    tmp_path: Path, server: CountingServer
) -> None:
    secret = "tok-SECRET-123456"
    source = write_lines(
        tmp_path / "in.jsonl",
        [{"id": "echo", "path": "/headers"}, {"id": "err", "path": "/status/500"}],
    )
    out = tmp_path / "out.jsonl"

    done = run_cli(
        "batch",
        source,
        "-o",
        out,
        "--base-url",
        server.url,
        "--header",
        f"Authorization: Bearer {secret}",
        "--header",
        f"X-Api-Key: {secret}-2",
        "--retries",
        "0",
    )

    assert done.returncode == 1, done.stderr
    written = out.read_text()
    assert secret not in written + done.stdout + done.stderr
    results = {result["id"]: result for result in read_results(out)}
    seen = results["echo"]["response"]["body"]["headers"]
    assert seen["Authorization"] == "[redacted]"
    assert seen["X-Api-Key"] == "[redacted]"
    assert results["err"]["error"]["type"] == "ServerError"


def test_an_api_key_rejected_by_the_transport_is_not_shown(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": "/"}])
    key = "sk-never-show-this-one"

    done = run_cli("batch", source, "-o", tmp_path / "out.jsonl", "--api-key", key)

    assert done.returncode == 2
    assert "rejected its options [--api-key]" in done.stderr
    assert key not in done.stdout + done.stderr


def test_attempts_and_errors_are_recorded_per_request(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "recovers", "path": "/flaky/a", "params": {"fail": 2}},
            {"id": "gives-up", "path": "/flaky/b", "params": {"fail": 5}},
            {"id": "missing", "path": "/status/404"},
        ],
    )
    out = tmp_path / "out.jsonl"

    done = run_cli(
        "batch", source, "-o", out, "--base-url", server.url, "--retries", "2", "--retry-delay", "0"
    )

    assert done.returncode == 1
    results = {result["id"]: result for result in read_results(out)}
    assert (results["recovers"]["ok"], results["recovers"]["attempts"]) == (True, 3)
    gave_up = results["gives-up"]
    assert (gave_up["ok"], gave_up["attempts"]) == (False, 3)
    assert gave_up["error"]["type"] == "ServerError"
    assert gave_up["error"]["status_code"] == 503
    assert gave_up["error"]["retryable"] is True
    assert gave_up["error"]["response"]["body"] == {"error": "try again"}
    missing = results["missing"]
    assert (missing["ok"], missing["attempts"]) == (False, 1)
    assert missing["error"]["type"] == "NotFoundError"
    assert missing["error"]["status_code"] == 404
    assert "404 Not Found" in missing["error"]["message"]
    rows = summary(done.stdout)
    assert (rows["succeeded"], rows["failed"], rows["retries"]) == ("1", "2", "4")


# An installed plugin, as an entry point would install it: it reports the
# batch's hook and every attempt on stderr.
_WATCHING_PLUGIN = """
import json, sys
from contextlib import contextmanager
import pynector.registry
from pynector.hookspecs import hookimpl

class Watch:
    @hookimpl
    def pynector_batch(self, info):
        @contextmanager
        def batch():
            yield
            sys.stderr.write("batch " + json.dumps([info.max_concurrency, info.stats]) + "\\n")
        return batch()

    @hookimpl
    def pynector_request(self, info):
        sys.stderr.write(f"attempt {info.batch_index} {info.attempt}\\n")

pynector.registry.register_plugin(Watch(), name="watch")
from pynector.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_an_installed_plugin_sees_one_batch_around_every_attempt_with_its_index(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "ok", "path": "/ok/1"},
            {"id": "recovers", "path": "/flaky/a", "params": {"fail": 1}},
            {"id": "missing", "path": "/status/404"},
        ],
    )
    argv = [sys.executable, "-c", _WATCHING_PLUGIN, "batch", str(source)]
    argv += ["-o", str(tmp_path / "out.jsonl"), "--base-url", server.url, "--concurrency", "2"]
    argv += ["--retries", "2", "--retry-delay", "0", "--progress", "none"]

    done = subprocess.run(argv, capture_output=True, text=True, timeout=50, env=env(), check=False)

    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    batches = [json.loads(line[len("batch ") :]) for line in lines if line.startswith("batch ")]
    assert batches == [[2, {"total": 3, "succeeded": 2, "failed": 1}]]
    # Each attempt carries its line's index in the batch (the input order, from 0).
    attempts = sorted(line for line in lines if line.startswith("attempt "))
    assert attempts == ["attempt 0 1", "attempt 1 1", "attempt 1 2", "attempt 2 1"]


def test_retry_failed_sends_the_failed_requests_again_keeping_each_id_once(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [{"id": "ok", "path": "/ok/1"}, {"id": "flaky", "path": "/flaky/x", "params": {"fail": 1}}],
    )
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url, "--retries", "0")
    assert run_cli(*args).returncode == 1

    plain_rerun = run_cli(*args)
    assert plain_rerun.returncode == 1
    assert "1 request failed in an earlier run; pass --retry-failed" in plain_rerun.stderr
    assert server.hits["/flaky/x"] == 1

    retried = run_cli(*args, "--retry-failed")

    assert retried.returncode == 0, retried.stderr
    assert "removed 1 failed results" in retried.stderr
    results = read_results(out)
    assert Counter(ids(results)) == {"ok": 1, "flaky": 1}
    assert all(result["ok"] for result in results)
    assert server.hits["/ok/1"] == 1


def test_a_tokens_per_minute_budget_fails_a_request_that_can_never_fit(
    tmp_path: Path, server: CountingServer
) -> None:
    def chat(request_id: str, text: str) -> dict[str, object]:
        messages = [{"role": "user", "content": text}]
        return {"id": request_id, "model": "m", "messages": messages, "max_tokens": 20}

    source = write_lines(tmp_path / "in.jsonl", [chat("small", "x" * 40), chat("huge", "x" * 400)])
    out = tmp_path / "out.jsonl"
    sdk = ["--transport", "sdk", "--provider", "openai", "--api-key", "sk-test-key"]

    done = run_cli(
        "batch", source, "-o", out, *sdk, "--base-url", f"{server.url}/v1", "--tpm", "100"
    )

    assert done.returncode == 1
    results = {result["id"]: result for result in read_results(out)}
    assert results["small"]["ok"] is True, results["small"]["error"]
    huge = results["huge"]
    assert (huge["ok"], huge["attempts"]) == (False, 0)
    assert huge["error"]["type"] == "TokenBudgetError"
    # The sdk transport's estimate: text / 4 plus the output allowance.
    assert "an estimated 120 tokens, more than --tpm 100" in huge["error"]["message"]
    assert summary(done.stdout)["over --tpm"] == "1"
    assert server.hits["/v1/chat/completions"] == 1


def test_the_tpm_budget_is_given_back_what_the_replies_did_not_use(
    tmp_path: Path, server: CountingServer
) -> None:
    # Each request reserves an estimated 151 tokens of --tpm 200; the replies report 8.
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 150}
    lines = [{"id": f"r{n}", **chat} for n in range(5)]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    sdk = ["--transport", "sdk", "--provider", "openai", "--api-key", "sk-test-key"]

    started = time.monotonic()
    done = run_cli(
        "batch", source, "-o", out, *sdk, "--base-url", f"{server.url}/v1", "--tpm", "200"
    )

    assert done.returncode == 0, done.stderr
    assert all(result["ok"] for result in read_results(out))
    assert server.hits["/v1/chat/completions"] == 5
    # Kept at their estimates, one request a minute would fit: four minutes.
    assert time.monotonic() - started < 60


def test_the_default_token_estimate_is_the_text_over_four(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "text": "x" * 404}])
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--transport", "echo", "--tpm", "100")

    assert done.returncode == 1
    (result,) = read_results(out)
    assert "an estimated 101 tokens, more than --tpm 100" in result["error"]["message"]


def test_the_rate_limit_spaces_the_requests_of_the_batch(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": f"/ok/{n}"} for n in range(6)])

    done = run_cli(
        "batch", source, "-o", tmp_path / "out.jsonl", "--base-url", server.url, "--rate", "20/s"
    )

    assert done.returncode == 0, done.stderr
    assert len(server.arrivals) == 6
    # Spaced 0.051 s apart, where the default concurrency would send all six at once.
    assert server.arrivals[5] - server.arrivals[0] >= 5 * 0.05 * 0.9


def test_progress_is_printed_as_plain_lines_when_not_on_a_terminal(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": f"/ok/{n}"} for n in range(20)])

    done = run_cli("batch", source, "-o", tmp_path / "out.jsonl", "--base-url", server.url)

    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert len(progress) == 10
    assert progress[-1].startswith("progress: 20/20 lines (100%): 20 succeeded, 0 failed")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--rate", "fast"], "--rate 'fast' is invalid"),
        (["--concurrency", "0"], "argument -c/--concurrency: '0' must be at least 1"),
        (["--header", "NoColon"], "--header 'NoColon' is not a header"),
        (["--option", "no-equals"], "--option 'no-equals' is not KEY=VALUE"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, option: list[str], message: str) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"a": 1}])

    done = run_cli("batch", source, "-o", tmp_path / "out.jsonl", *option)

    assert done.returncode == 2
    assert message in done.stderr


def run_on_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal (100 columns) as stdin, stdout and stderr."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    variables = {**env(), "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"}
    with subprocess.Popen(
        argv, stdin=terminal, stdout=terminal, stderr=terminal, env=variables, close_fds=True
    ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        returncode = process.wait(timeout=50)
    return returncode, b"".join(chunks).decode("utf-8")


def test_a_terminal_gets_a_rich_progress_bar_and_summary_table(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": f"/ok/{n}"} for n in range(20)])

    status, output = run_on_terminal(
        [
            *PYNECTOR,
            "batch",
            str(source),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--base-url",
            server.url,
        ]
    )

    assert status == 0, output
    assert "batch" in output
    assert "━" in output  # the bar
    assert "20/20" in output
    assert "Batch summary" in output
    assert "│ succeeded" in output  # a table, not plain lines
    assert "progress: " not in output


def test_a_second_signal_stops_at_once_and_the_requests_in_flight_are_redone(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", slow_requests(4, 3.0))
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url, "--concurrency", "2")

    process = start_cli(*args)
    wait_for_in_flight(server, 2, process)
    process.send_signal(signal.SIGINT)
    first = read_stderr_until(process, "SIGINT: starting no new requests")
    process.send_signal(signal.SIGINT)
    _stdout, rest = process.communicate(timeout=30)
    stderr = first + rest

    assert process.returncode == 130, stderr
    assert "SIGINT: stopping now; the requests in flight are sent again on resume" in stderr
    assert read_results(out) == []  # cut short before any reply: nothing half-written


def test_a_second_batch_cannot_write_to_an_output_that_one_is_writing(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", slow_requests(2, 3.0))
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url)
    first = start_cli(*args)
    try:
        wait_for_in_flight(server, 2, first)

        second = run_cli(*args)

        assert second.returncode == 2
        assert f"{out} is being written by another `pynector batch`" in second.stderr
        assert server.total_hits == 2
    finally:
        first.kill()
        first.communicate(timeout=30)


def test_an_id_that_contains_a_secret_is_written_as_read_and_skipped_on_resume(
    tmp_path: Path, server: CountingServer
) -> None:
    secret = "tok-SECRET-123456"
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": secret, "path": "/ok/same"},
            {"id": f"user-{secret}-1", "path": "/ok/inside"},
            {"id": "echo", "path": "/headers"},
        ],
    )
    out = tmp_path / "out.jsonl"
    args = (
        "batch",
        source,
        "-o",
        out,
        "--base-url",
        server.url,
        "--header",
        f"Authorization: Bearer {secret}",
    )

    first = run_cli(*args)
    resumed = run_cli(*args)

    assert first.returncode == 0, first.stderr
    assert resumed.returncode == 0, resumed.stderr
    results = {result["id"]: result for result in read_results(out)}
    assert sorted(results) == sorted([secret, f"user-{secret}-1", "echo"])
    assert results["echo"]["response"]["body"]["headers"]["Authorization"] == "[redacted]"
    assert summary(resumed.stdout)["already done"] == "3"
    assert server.hits == {"/ok/same": 1, "/ok/inside": 1, "/headers": 1}
    assert secret not in first.stdout + first.stderr + resumed.stdout + resumed.stderr


def nested(depth: int) -> str:
    return '{"id": "deep", "json": ' + "[" * depth + "]" * depth + "}"


def test_a_line_nested_too_deeply_is_a_bad_line_in_a_run_a_resume_and_a_dry_run(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        # Too deep for Python's JSON reader on every version (3.13 reads 2,000 levels).
        [{"id": "a", "path": "/ok/a"}, nested(100_000), {"id": "b", "path": "/ok/b"}],
    )
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url)

    runs = [run_cli(*args), run_cli(*args), run_cli(*args, "--dry-run")]

    for done in runs:
        assert done.returncode == 1, done.stderr
        assert f"{source}:2: skipped: nested too deeply" in done.stderr
        assert "Traceback" not in done.stderr
        assert summary(done.stdout)["bad lines"] == "1"
    assert sorted(ids(read_results(out))) == ["a", "b"]
    assert server.hits == {"/ok/a": 1, "/ok/b": 1}


def test_path_lines_without_base_url_are_a_usage_error_before_anything_is_written(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "path": "/ok/a"}])
    out = tmp_path / "out.jsonl"
    kept = tmp_path / "kept.jsonl"
    kept.write_text('{"note": "an earlier file"}\n')

    for target, dry_run in [(out, []), (out, ["--dry-run"]), (kept, [])]:
        done = run_cli("batch", source, "-o", target, *dry_run)

        assert done.returncode == 2, done.stderr
        assert f"pynector batch: {source}:1: the first request to send is rejected" in done.stderr
        assert "needs a --base-url" in done.stderr
        assert "base_url" not in done.stderr
    assert not out.exists()
    assert kept.read_text() == '{"note": "an earlier file"}\n'
    assert server.total_hits == 0


def test_dry_run_checks_every_request_as_the_transport_would(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "good", "path": "/ok/1"},
            {"id": "typo", "path": "/ok/2", "methd": "GET"},
            {"id": "both", "path": "/ok/3", "url": "http://127.0.0.1:9/"},
        ],
    )

    done = run_cli(
        "batch", source, "-o", tmp_path / "out.jsonl", "--base-url", server.url, "--dry-run"
    )

    assert done.returncode == 1, done.stderr
    assert f"{source}:2: the http transport rejects it: " in done.stderr
    assert "'methd'" in done.stderr
    assert f"{source}:3: the http transport rejects it: " in done.stderr
    assert f"{source}:1:" not in done.stderr
    rows = summary(done.stdout)
    assert (rows["to send"], rows["rejected by the transport"]) == ("3", "2")
    assert server.total_hits == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_line_with_a_body_and_no_method_is_posted(tmp_path: Path, server: CountingServer) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [{"id": "body", "path": "/echo", "json": {"a": 1}}, {"id": "none", "path": "/ok/1"}],
    )
    out = tmp_path / "out.jsonl"

    done = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert done.returncode == 0, done.stderr
    assert sorted(server.methods) == [("GET", "/ok/1"), ("POST", "/echo")]
    results = {result["id"]: result for result in read_results(out)}
    assert results["body"]["response"]["body"]["body"] == {"a": 1}


def test_a_binary_reply_is_scrubbed_as_bytes_before_it_is_written(
    tmp_path: Path, server: CountingServer
) -> None:
    import base64

    secret = "tok-SECRET-123456"
    source = write_lines(tmp_path / "in.jsonl", [{"id": "bin", "path": "/binary"}])
    out = tmp_path / "out.jsonl"

    done = run_cli(
        "batch",
        source,
        "-o",
        out,
        "--base-url",
        server.url,
        "--header",
        f"Authorization: Bearer {secret}",
    )

    assert done.returncode == 0, done.stderr
    (result,) = read_results(out)
    body = base64.b64decode(result["response"]["body_base64"])
    assert body == b"\xff\xfe[redacted] \x80"


def test_the_first_request_checked_is_the_first_one_a_resume_would_send(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "path": "/ok/a"}])
    out = tmp_path / "out.jsonl"
    args = ("batch", source, "-o", out, "--base-url", server.url)
    assert run_cli(*args).returncode == 0
    write_lines(source, [{"id": "a", "path": "/ok/a"}, {"id": "b", "path": "/ok/b", "methd": 1}])
    before = out.read_bytes()

    done = run_cli(*args)

    assert done.returncode == 2, done.stderr
    assert f"{source}:2: the first request to send is rejected by the http transport" in (
        done.stderr
    )
    assert "'methd'" in done.stderr
    assert out.read_bytes() == before
    assert server.total_hits == 1
