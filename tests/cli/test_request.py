"""``pynector request``, run as a real subprocess against a loopback server."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from .conftest import PYNECTOR, CountingServer, env, run_cli, write_lines


def test_a_get_prints_the_status_line_the_headers_and_the_json_body(
    server: CountingServer,
) -> None:
    done = run_cli("request", f"{server.url}/ok/1")

    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition("\n\n")
    status, *headers = head.splitlines()
    assert status == "HTTP/1.1 200 OK"
    assert "content-type: application/json" in headers
    assert json.loads(body) == {"path": "/ok/1", "hits": 1}
    assert body.startswith('{\n  "path": "/ok/1"')  # pretty-printed


def test_a_path_is_resolved_against_base_url_with_method_params_and_json_body(
    server: CountingServer,
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    done = run_cli(
        "request",
        "POST",
        "/v1/chat/completions",
        "--base-url",
        server.url,
        "--json",
        json.dumps(body),
        "--param",
        "a=1",
    )

    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.partition("\n\n")[2])
    assert reply["choices"][0]["message"]["content"] == "echo: hi (auth: )"
    assert server.hits["/v1/chat/completions"] == 1


def test_a_failed_request_prints_the_reply_and_the_error_and_exits_one(
    server: CountingServer,
) -> None:
    done = run_cli("request", f"{server.url}/status/404")

    assert done.returncode == 1
    assert done.stdout.startswith("HTTP/1.1 404 Not Found\n")
    assert '"error": "status 404"' in done.stdout
    assert done.stderr.startswith("pynector request: NotFoundError: GET ")


def test_a_connection_refused_is_a_failure_with_the_reason() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    done = run_cli("request", f"http://127.0.0.1:{port}/", "--timeout", "5")

    assert done.returncode == 1
    assert "pynector request: ConnectionError:" in done.stderr


def test_secret_headers_are_sent_but_never_printed(server: CountingServer) -> None:
    secret = "tok-SECRET-987654"

    done = run_cli(
        "request", f"{server.url}/headers", "--header", f"Authorization: Bearer {secret}"
    )

    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    seen = json.loads(done.stdout.partition("\n\n")[2])["headers"]
    assert seen["Authorization"] == "[redacted]"


def test_json_format_prints_one_result_object_like_a_batch_line(server: CountingServer) -> None:
    done = run_cli(
        "request",
        f"{server.url}/flaky/r",
        "--format",
        "json",
        "--retries",
        "2",
        "--retry-delay",
        "0",
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert result["attempts"] == 2
    assert result["response"]["status_code"] == 200
    assert result["response"]["body"] == {"path": "/flaky/r", "hits": 2}


def test_text_format_says_when_it_took_several_attempts(server: CountingServer) -> None:
    done = run_cli("request", f"{server.url}/flaky/t", "--retries", "1", "--retry-delay", "0")

    assert done.returncode == 0, done.stderr
    assert "(succeeded after 2 attempts)" in done.stderr


def test_a_request_that_keeps_failing_says_how_many_attempts_it_made(
    server: CountingServer,
) -> None:
    done = run_cli(
        "request", f"{server.url}/flaky/z?fail=5", "--retries", "1", "--retry-delay", "0"
    )

    assert done.returncode == 1
    assert done.stderr.startswith("pynector request: ServerError: ")
    assert done.stderr.rstrip().endswith("(after 2 attempts)")
    assert server.hits["/flaky/z"] == 2


def test_any_transport_gets_the_json_value_as_its_request_data() -> None:
    done = run_cli("request", "--transport", "echo", "--json", '{"question": 42}')

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"question": 42}


def test_an_api_path_picks_the_operation_of_the_sdk_transport(server: CountingServer) -> None:
    sdk = ["--transport", "sdk", "--provider", "openai", "--api-key", "sk-test-key"]
    chat = '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'

    done = run_cli(
        "request", *sdk, "--base-url", f"{server.url}/v1", "/v1/chat/completions", "--json", chat
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["object"] == "chat.completion"
    assert server.hits["/v1/chat/completions"] == 1


def test_a_transport_without_cli_support_takes_no_path() -> None:
    done = run_cli("request", "--transport", "echo", "/v1/embeddings", "--json", '{"input": "x"}')

    assert done.returncode == 2
    assert "the echo transport takes no URL or path ('/v1/embeddings')" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the URL to request"),
        (["--transport", "echo"], "give the request data of the echo transport with --json"),
        (["http://x/", "--json", "{oops"], "--json is not valid JSON"),
        (
            ["--transport", "sdk", "--provider", "openai", "/v1/images", "--json", "{}"],
            "is not a supported API path",
        ),
        (["a", "b", "c"], "expected [METHOD] URL, got 3 words"),
        (["--transport", "nope", "--json", "1"], "Unknown --transport 'nope'"),
    ],
)
def test_usage_errors_exit_two_with_the_fix(args: list[str], message: str) -> None:
    done = run_cli("request", *args)

    assert done.returncode == 2
    assert message in done.stderr


QUERY_SECRET = "s3cr3t/va lue+x=y"
OTHER_SECRET = "an0ther/secret&value"


def forms(secret: str) -> list[str]:
    """The secret as it is and as a URL carries it."""
    return [secret, quote(secret, safe=""), quote(secret), quote_plus(secret)]


@pytest.mark.parametrize("given", ["params", "url", "error"])
@pytest.mark.parametrize("output", ["text", "json"])
def test_a_secret_query_value_is_never_printed_in_any_encoding(
    server: CountingServer, given: str, output: str
) -> None:
    query = ["--param", f"access_token={QUERY_SECRET}", "--param", f"auth_token={OTHER_SECRET}"]
    args = {
        "params": [f"{server.url}/echo", *query],
        "url": [
            f"{server.url}/echo?access_token={quote(QUERY_SECRET, safe='')}"
            f"&auth_token={quote_plus(OTHER_SECRET)}"
        ],
        "error": [f"{server.url}/status/500", *query],
    }[given]

    done = run_cli("request", *args, "--format", output)

    assert done.returncode == (1 if given == "error" else 0), done.stderr
    shown = done.stdout + done.stderr
    for secret in (QUERY_SECRET, OTHER_SECRET):
        for form in forms(secret):
            assert form not in shown
    assert server.total_hits == 1
    if given != "error":
        assert "[redacted]" in shown


def test_a_reply_that_is_not_text_is_scrubbed_as_bytes(server: CountingServer) -> None:
    secret = "tok-SECRET-424242"
    argv = [*PYNECTOR, "request", f"{server.url}/binary", "-H", f"Authorization: Bearer {secret}"]

    raw = subprocess.run(argv, capture_output=True, check=False, timeout=50, env=env())
    as_json = run_cli(*argv[3:], "--format", "json")

    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.endswith(b"\n\n\xff\xfe[redacted] \x80")  # written raw to a pipe
    assert secret.encode() not in raw.stdout
    assert as_json.returncode == 0, as_json.stderr
    body = base64.b64decode(json.loads(as_json.stdout)["response"]["body_base64"])
    assert body == b"\xff\xfe[redacted] \x80"


def test_a_body_without_a_method_is_posted(server: CountingServer) -> None:
    done = run_cli("request", f"{server.url}/echo", "--json", '{"a": 1}')

    assert done.returncode == 0, done.stderr
    assert server.methods == [("POST", "/echo")]
    assert json.loads(done.stdout.partition("\n\n")[2])["body"] == {"a": 1}


@pytest.mark.parametrize(
    ("args", "status", "shown", "hidden"),
    [
        (["--base-url", "ftp://x", "/x"], 2, "--base-url 'ftp://x' must be", "base_url"),
        (["/x"], 2, "needs a --base-url: run with --base-url", "base_url"),
        (["--option", "follow_redirects=5", "{url}/ok/1"], 2, "--option follow_redirects=5", ""),
        (["{url}/ok/1?delay=3", "--timeout", "0.3"], 1, "pass a larger --timeout", "config="),
        (
            ["--option", "follow_redirect=true", "{url}/ok/1"],
            2,
            "Did you mean --option follow_redirects?",
            "base_url",
        ),
    ],
)
def test_errors_name_the_flags_of_the_command_line(
    server: CountingServer, args: list[str], status: int, shown: str, hidden: str
) -> None:
    done = run_cli("request", *(arg.format(url=server.url) for arg in args))

    assert done.returncode == status, done.stderr
    assert shown in done.stderr
    assert not hidden or hidden not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["request", "--transport", "htp", "http://x/"],
        ["request", "--transport", "HTP"],
        ["request", "--transport", "htp", "--json", "{}"],
        ["request", "--transport", "htp", "-H", "no colon", "http://x/"],
        ["batch", "in.jsonl", "-o", "out.jsonl", "--transport", "htp", "--option", "bad"],
        ["batch", "missing.jsonl", "-o", "out.jsonl", "--transport", "htp"],
        ["batch", "in.jsonl", "-o", "out.jsonl", "--transport", "htp", "--dry-run"],
        ["batch", "in.jsonl", "-o", "/dev/full", "--transport", "htp"],
    ],
)
def test_a_typo_in_transport_gets_did_you_mean_in_every_command(
    tmp_path: Path, argv: list[str]
) -> None:
    write_lines(tmp_path / "in.jsonl", [{"path": "/x"}])
    paths = [str(tmp_path / arg) if arg.endswith(".jsonl") else arg for arg in argv]

    done = run_cli(*paths)

    assert done.returncode == 2, done.stderr
    assert "Unknown --transport 'htp'. Did you mean 'http'?" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
