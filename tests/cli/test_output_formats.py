"""``pynector batch --output-format openai|anthropic|pynector``, live, as a real subprocess.

The http transport against the counting loopback server, the sdk transport
against the fake OpenAI and Anthropic API (through the real SDKs). The
Anthropic lines are checked with the anthropic SDK's own type of a result line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.messages import MessageBatchIndividualResponse

from tests.sdk._fake_api import FakeAPI

from .conftest import CountingServer, Runner, read_results, write_lines

OPENAI_KEYS = {"id", "custom_id", "response", "error"}
API_KEY = "sk-test-5c0ffee5c0ffee"


@pytest.fixture
def api() -> Any:
    server = FakeAPI().start()
    yield server
    server.stop()


def http_lines() -> list[dict[str, Any]]:
    return [
        {"id": "good", "path": "/ok/1"},
        {"id": "missing", "path": "/status/404"},
        {"id": "slow", "path": "/ok/slow", "params": {"delay": 5}},
        {"path": "/ok/numbered"},  # no id: the line number, 4
    ]


def run_http(run: Runner, source: Path, out: Path, server: CountingServer, *extra: str) -> Any:
    return run(
        "batch", source, "-o", out, "--base-url", server.url,
        "--retries", "0", "--timeout", "0.5", "--progress", "none", *extra,
    )  # fmt: skip


def test_the_openai_format_writes_http_errors_as_responses_and_timeouts_as_errors(
    tmp_path: Path, server: CountingServer, run: Runner
) -> None:
    source = write_lines(tmp_path / "in.jsonl", http_lines())
    out = tmp_path / "out.jsonl"

    done = run_http(run, source, out, server, "--output-format", "openai")

    assert done.returncode == 1, done.stderr
    results = {result["custom_id"]: result for result in read_results(out)}
    assert set(results) == {"good", "missing", "slow", "4"}
    for result in results.values():
        assert set(result) == OPENAI_KEYS
        assert re.fullmatch(r"batch_req_[0-9a-f]{32}", result["id"])
    good = results["good"]
    assert good["error"] is None
    assert good["response"]["status_code"] == 200
    assert good["response"]["body"] == {"path": "/ok/1", "hits": 1}  # the parsed JSON reply
    assert set(good["response"]) == {"status_code", "request_id", "body"}
    missing = results["missing"]
    assert missing["error"] is None  # an HTTP error is a response, as OpenAI writes it
    assert missing["response"]["status_code"] == 404
    assert missing["response"]["body"] == {"error": "status 404"}
    slow = results["slow"]
    assert slow["response"] is None  # no HTTP reply: the error
    assert slow["error"]["code"] == "timeout"
    assert slow["error"]["message"]
    assert len({result["id"] for result in results.values()}) == 4


def test_the_anthropic_format_writes_result_lines_of_the_sdks_type(
    tmp_path: Path, server: CountingServer, run: Runner
) -> None:
    source = write_lines(tmp_path / "in.jsonl", http_lines())
    out = tmp_path / "out.jsonl"

    done = run_http(run, source, out, server, "--output-format", "anthropic")

    assert done.returncode == 1, done.stderr
    lines = read_results(out)
    results = {line["custom_id"]: line["result"] for line in lines}
    for line in lines:
        assert set(line) == {"custom_id", "result"}
        if line["result"]["type"] != "succeeded":  # an HTTP reply is no Message
            MessageBatchIndividualResponse.model_validate(line)
    assert results["good"] == {"type": "succeeded", "message": {"path": "/ok/1", "hits": 1}}
    assert results["missing"]["type"] == "errored"
    error = results["missing"]["error"]
    assert error["type"] == "error"
    assert error["error"]["type"] == "not_found_error"
    assert "404" in error["error"]["message"]
    assert results["slow"]["type"] == "errored"
    assert results["slow"]["error"]["error"]["type"] == "timeout_error"


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])  # pynector's: test_batch.py
def test_a_resume_skips_done_ids_and_retry_failed_resends_only_the_failures_in_every_format(
    tmp_path: Path, server: CountingServer, fmt: str, run: Runner
) -> None:
    lines = [{"id": f"r{n}", "path": f"/ok/{n}"} for n in range(4)]
    lines += [{"id": "bad", "path": "/status/500"}, {"path": "/ok/by-number"}]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"

    first = run_http(run, source, out, server, "--output-format", fmt)
    again = run_http(run, source, out, server, "--output-format", fmt)
    hits_after_resume = server.total_hits
    retried = run_http(run, source, out, server, "--output-format", fmt, "--retry-failed")

    assert first.returncode == 1, first.stderr
    assert again.returncode == 1
    assert hits_after_resume == 6  # the resume sent nothing: every id was done
    assert "pass --retry-failed" in again.stderr
    assert retried.returncode == 1
    assert server.hits["/status/500"] == 2  # only the failure was sent again
    assert server.total_hits == 7
    results = read_results(out)
    key = "id" if fmt == "pynector" else "custom_id"
    found = sorted(str(result[key]) for result in results)
    assert found == sorted(["r0", "r1", "r2", "r3", "bad", "6"])


def test_a_resume_in_another_format_is_refused_and_writes_nothing(
    tmp_path: Path, server: CountingServer, run: Runner
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "path": "/ok/a"}])
    more = write_lines(tmp_path / "more.jsonl", [{"id": "a", "path": "/ok/a"}, {"path": "/ok/b"}])
    out = tmp_path / "out.jsonl"
    run_http(run, source, out, server, "--output-format", "anthropic")
    before = out.read_bytes()

    refused = run_http(run, more, out, server)  # the default format: pynector
    also = run_http(run, more, out, server, "--output-format", "openai")

    assert refused.returncode == 2
    assert "holds results in the anthropic output format, not pynector" in refused.stderr
    assert "--output-format anthropic" in refused.stderr
    assert also.returncode == 2
    assert "not openai" in also.stderr
    assert out.read_bytes() == before
    assert server.total_hits == 1


def test_the_sdk_transport_writes_the_sdk_reply_as_the_body_and_resumes_by_custom_id(
    tmp_path: Path, api: FakeAPI, run: Runner
) -> None:
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    source = write_lines(tmp_path / "in.jsonl", [{"id": 7, **chat}])
    out = tmp_path / "out.jsonl"
    argv = ["--transport", "sdk", "--provider", "openai", "--api-key", API_KEY]
    argv += ["--base-url", api.url, "--progress", "none", "--output-format", "openai"]

    first = run("batch", source, "-o", out, *argv)
    resumed = run("batch", source, "-o", out, *argv)

    assert first.returncode == 0, first.stderr
    (line,) = read_results(out)
    assert line["custom_id"] == "7"  # a custom_id is a string
    assert line["response"]["status_code"] == 200
    assert line["response"]["body"]["choices"][0]["message"]["content"] == "Hello!"
    assert line["error"] is None
    assert resumed.returncode == 0
    assert api.count("/v1/chat/completions") == 1  # the resume found "7" done
    assert API_KEY not in out.read_text()


def test_an_anthropic_reply_in_the_anthropic_format_is_a_result_line_of_the_sdks_type(
    tmp_path: Path, api: FakeAPI, run: Runner
) -> None:
    chat = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    api.fail("/v1/messages", 429, headers={"x-should-retry": "false"})
    source = write_lines(tmp_path / "in.jsonl", [{"id": "limited", **chat}, {"id": "ok", **chat}])
    out = tmp_path / "out.jsonl"

    done = run(
        "batch", source, "-o", out, "--transport", "sdk", "--provider", "anthropic",
        "--api-key", API_KEY, "--base-url", api.root, "--retries", "0", "--concurrency", "1",
        "--progress", "none", "--output-format", "anthropic",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    lines = read_results(out)
    parsed = {
        line["custom_id"]: MessageBatchIndividualResponse.model_validate(line) for line in lines
    }
    assert parsed["ok"].result.type == "succeeded"
    assert parsed["ok"].result.message.content[0].text == "Hello!"  # type: ignore[union-attr]
    limited = parsed["limited"].result
    assert limited.type == "errored"
    assert limited.error.error.type == "rate_limit_error"
    # The API's own error body, as the Message Batches result carries it.
    by_id = {line["custom_id"]: line for line in lines}
    assert by_id["limited"]["result"]["error"] == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "fake error 429"},
    }


def test_a_secret_in_a_reply_is_scrubbed_from_a_provider_line(
    tmp_path: Path, server: CountingServer, run: Runner
) -> None:
    secret = "Bearer very-secret-token-42"
    source = write_lines(tmp_path / "in.jsonl", [{"id": "h", "path": "/headers"}])
    out = tmp_path / "out.jsonl"

    done = run_http(
        run,
        source,
        out,
        server,
        "--header",
        f"Authorization: {secret}",
        "--output-format",
        "openai",
    )

    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "very-secret-token-42" not in text
    (line,) = read_results(out)
    assert "headers" in line["response"]["body"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b'{"id":"a","line":1,"ok":true,"attempts":1,"elapsed":0.1,"response":1}',
            ("a", True, "pynector"),
        ),
        (b'{"id":3,"ok":false}', (3, False, "pynector")),
        (
            b'{"id":"batch_req_1","custom_id":"a","response":{"status_code":201,"request_id":null,"body":{}},"error":null}',
            ("a", True, "openai"),
        ),
        (
            b'{"id":"batch_req_1","custom_id":"a","response":{"status_code":429,"body":{}},"error":null}',
            ("a", False, "openai"),
        ),
        (
            b'{"id":"x","custom_id":"a","response":null,"error":{"code":"timeout"}}',
            ("a", False, "openai"),
        ),
        (b'{"custom_id":"a","result":{"type":"succeeded","message":{}}}', ("a", True, "anthropic")),
        (b'{"custom_id":"a","result":{"type":"expired"}}', ("a", False, "anthropic")),
        # Not results: left alone, never counted as done.
        (b'{"id":"a","ok":"yes"}', None),
        (b'{"custom_id":"a","result":{"type":"later"}}', None),
        (b'{"custom_id":"a","response":{"status_code":"200"},"error":null}', None),
        (b'{"custom_id":"a","response":null,"error":null}', None),
        (b'{"custom_id":"","result":{"type":"succeeded"}}', None),
        (b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}', None),
        (b"[1, 2]", None),
        (b"not json", None),
    ],
)  # fmt: skip
def test_result_lines_of_every_format_are_read_back_and_anything_else_is_not_a_result(
    line: bytes, expected: tuple[Any, bool, str] | None
) -> None:
    from pynector.cli._formats import result_id

    found = result_id(line)

    assert (None if found is None else (found.id, found.ok, found.format.value)) == expected


def test_the_pynector_format_renders_the_line_it_always_wrote() -> None:
    from pynector.cli._formats import OutputFormat, live_record, render

    record = live_record("a", 4, False, {"type": "X", "message": "m"}, 2, 0.1234567)

    assert render(record, OutputFormat.PYNECTOR) == (
        b'{"id":"a","line":4,"ok":false,"attempts":2,"elapsed":0.123457,'
        b'"error":{"type":"X","message":"m"}}\n'
    )
