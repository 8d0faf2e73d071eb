"""``pynector batch --via batch-api``: the providers' Batch APIs through the real SDKs.

The openai and anthropic SDKs talk HTTP to :class:`FakeBatchAPI` (Files and
Batches, Message Batches). The Batch API objects are driven directly on
asyncio and trio. For Ctrl-C the command runs as a real OS process and gets a
real SIGINT once it says its batches exist; the other runs call
``pynector.cli.main`` in this process (the same code, without paying an
interpreter and the SDKs' import for each run).
"""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.messages import MessageBatchIndividualResponse

from pynector import Pynector
from pynector.cli import LineError, main
from pynector_sdk._batch_api import AnthropicBatchAPI, OpenAIBatchAPI, batch_api
from tests.cli.conftest import (
    Runner,
    env,
    read_results,
    read_stderr_until,
    write_lines,
)

from ._fake_batch_api import FakeBatchAPI
from .conftest import API_KEY

PROVIDERS = ["openai", "anthropic"]
FAST = ["--poll-interval", "0.02", "--progress", "none"]


@pytest.fixture
def batches() -> Iterator[FakeBatchAPI]:
    server = FakeBatchAPI().start()
    yield server
    server.stop()


def base_url(batches: FakeBatchAPI, provider: str) -> str:
    return batches.url if provider == "openai" else batches.root


def chat(provider: str, model: str = "m") -> dict[str, Any]:
    data: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if provider == "anthropic":
        data["max_tokens"] = 8
    return data


def requests(provider: str, count: int, failing: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"id": f"r{n}", **chat(provider, "fail" if n in failing else "m")} for n in range(count)
    ]


def cli_args(batches: FakeBatchAPI, provider: str) -> list[str]:
    return [
        "--transport", "sdk", "--provider", provider, "--api-key", API_KEY,
        "--base-url", base_url(batches, provider), "--via", "batch-api",
    ]  # fmt: skip


def sdk_client(batches: FakeBatchAPI, provider: str) -> Pynector[Any, Any]:
    """A client of the sdk transport for ``provider``, on the fake Batch API."""
    return Pynector(
        transport_type="sdk",
        provider=provider,
        api_key=API_KEY,
        base_url=base_url(batches, provider),
    )


def state_of(out: Path) -> dict[str, Any]:
    return json.loads(out.with_name(out.name + ".batches.json").read_text())  # type: ignore[no-any-return]


# -- the Batch API objects, on asyncio and trio ---------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_batch_is_created_polled_and_its_results_read_through_the_sdk(
    batches: FakeBatchAPI, provider: str
) -> None:
    client = sdk_client(batches, provider)
    async with client:
        api = batch_api(client.transport)
        assert isinstance(api, OpenAIBatchAPI if provider == "openai" else AnthropicBatchAPI)
        group, line = api.request_line("a", chat(provider))
        _, failing = api.request_line("b", chat(provider, "fail"))
        batch_id = await api.create(group, [line, failing])
        first = await api.status(batch_id)
        ended = await api.status(batch_id)
        lines = await api.results(batch_id)

    assert batches.created == [batch_id]
    assert (first.ended, first.total) == (False, 2)
    assert (ended.ended, ended.done, ended.total) == (True, 2, 2)
    assert sorted(lines) == sorted(batches.result_lines)  # as the provider sent them
    if provider == "openai":
        assert group == "/v1/chat/completions"
        assert json.loads(line)["url"] == group
        assert batches.uploads == 1
    else:
        assert group == "/v1/messages"
        assert json.loads(line) == {"custom_id": "a", "params": chat(provider)}


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_cancelled_batch_ends_with_its_requests_unrun(
    batches: FakeBatchAPI, provider: str
) -> None:
    batches.hold()
    client = sdk_client(batches, provider)
    async with client:
        api = batch_api(client.transport)
        assert api is not None
        group, line = api.request_line("a", chat(provider))
        batch_id = await api.create(group, [line])
        running = await api.status(batch_id)
        await api.cancel(batch_id)
        ended = await api.status(batch_id)

    assert not running.ended
    assert batches.cancelled == [batch_id]
    assert ended.ended
    if provider == "openai":
        assert (ended.state, ended.missing) == ("cancelled", "batch_cancelled")


@pytest.mark.anyio
async def test_a_request_no_batch_api_runs_is_a_line_error(batches: FakeBatchAPI) -> None:
    client, openai = sdk_client(batches, "anthropic"), sdk_client(batches, "openai")
    async with client, openai:
        anthropic_api = batch_api(client.transport)
        openai_api = batch_api(openai.transport)
        assert anthropic_api is not None
        assert openai_api is not None
        with pytest.raises(LineError, match=r"messages\.create only"):
            anthropic_api.request_line("a", {"operation": "models.list"})
        with pytest.raises(LineError, match="cannot stream"):
            openai_api.request_line("a", {**chat("openai"), "stream": True})
        with pytest.raises(LineError, match=r"does not run images\.generate"):
            openai_api.request_line("a", {"operation": "images.generate", "prompt": "x"})
        _, embedding = openai_api.request_line("e", {"operation": "embeddings.create"})
    assert json.loads(embedding)["url"] == "/v1/embeddings"
    assert batch_api(object()) is None


# -- the command -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_provider_lines_are_written_verbatim_split_at_the_batch_size(
    tmp_path: Path,
    batches: FakeBatchAPI,
    provider: str,
    run: Runner,
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(provider, 7, failing=(3,)))
    out = tmp_path / "out.jsonl"

    done = run(
        "batch", source, "-o", out, *cli_args(batches, provider), *FAST,
        "--max-batch-requests", "3", "--output-format", provider,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr  # one request failed
    assert len(batches.created) == 3  # 3 + 3 + 1
    if provider == "openai":
        assert batches.uploads == 3
    written = out.read_bytes().splitlines()
    assert sorted(written) == sorted(batches.result_lines)
    if provider == "anthropic":
        for raw in written:
            MessageBatchIndividualResponse.model_validate_json(raw)
    state = state_of(out)
    assert state["version"] == 1
    assert state["provider"] == provider
    assert [item["id"] for item in state["batches"]] == batches.created
    assert [(item["first_line"], item["last_line"]) for item in state["batches"]] == [
        (1, 3),
        (4, 6),
        (7, 7),
    ]
    assert all(item["written"] for item in state["batches"])
    assert "remote batches  3 (3 new)" in done.stdout


def test_openai_results_in_the_pynector_and_anthropic_formats(
    tmp_path: Path,
    batches: FakeBatchAPI,
    run: Runner,
) -> None:
    lines = requests("openai", 3, failing=(1,))
    lines[2] = {"id": 12, **chat("openai", "lost")}  # an error line, no response
    source = write_lines(tmp_path / "in.jsonl", lines)
    own, anthropic = tmp_path / "own.jsonl", tmp_path / "anthropic.jsonl"

    first = run("batch", source, "-o", own, *cli_args(batches, "openai"), *FAST)
    second = run(
        "batch", source, "-o", anthropic, *cli_args(batches, "openai"), *FAST,
        "--output-format", "anthropic",
    )  # fmt: skip

    assert first.returncode == 1, first.stderr
    assert second.returncode == 1, second.stderr
    results = {result["id"]: result for result in read_results(own)}
    assert results["r0"]["ok"] is True
    assert results["r0"]["line"] == 1
    assert results["r0"]["response"]["choices"][0]["message"]["content"] == "Hello!"
    assert results["r1"]["ok"] is False
    assert results["r1"]["error"]["status_code"] == 400
    assert results[12]["error"]["code"] == "server_error"  # the id as read: an integer
    by_id = {line["custom_id"]: line["result"] for line in read_results(anthropic)}
    assert by_id["r0"]["type"] == "succeeded"
    assert by_id["r1"]["error"]["error"]["type"] == "invalid_request_error"
    assert by_id["12"]["error"]["error"] == {"type": "api_error", "message": "the request was lost"}


def _interrupted_while_running(argv: list[str | Path]) -> str:
    """Run ``pynector`` with ``argv``, SIGINT it once a batch is in progress; its stderr.

    The command is expected to exit 130 (interrupted).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "pynector", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env(),
    )
    try:
        read_stderr_until(process, ": in_progress")
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    return stderr


def _held_batch(
    tmp_path: Path, batches: FakeBatchAPI, provider: str, count: int, out: Path
) -> list[str | Path]:
    """The command line of a run whose remote batch stays in progress until released."""
    batches.hold()
    source = write_lines(tmp_path / "in.jsonl", requests(provider, count))
    return ["batch", source, "-o", out, *cli_args(batches, provider), *FAST]


def test_sigint_leaves_the_batches_running_and_a_rerun_collects_them_without_new_ones(
    tmp_path: Path,
    batches: FakeBatchAPI,
    run: Runner,
) -> None:
    out = tmp_path / "out.jsonl"
    argv = _held_batch(tmp_path, batches, "openai", 4, out)
    stderr = _interrupted_while_running(argv)
    assert "keep running" in stderr
    assert "Run the same command again" in stderr
    assert batches.cancelled == []
    (created,) = batches.created
    assert state_of(out)["batches"][0]["id"] == created
    assert out.read_bytes() == b""

    batches.release()
    again = run(*argv)

    assert again.returncode == 0, again.stderr
    assert batches.created == [created]  # found in the state file, not made again
    assert "remote batches  1 (0 new)" in again.stdout
    assert sorted(result["id"] for result in read_results(out)) == ["r0", "r1", "r2", "r3"]
    assert state_of(out)["batches"][0]["written"] is True
    third = run(*argv)
    assert third.returncode == 0
    assert batches.created == [created]
    assert len(read_results(out)) == 4


def test_cancel_on_interrupt_cancels_the_remote_batch_and_a_rerun_writes_its_requests_failed(
    tmp_path: Path,
    batches: FakeBatchAPI,
    run: Runner,
) -> None:
    out = tmp_path / "out.jsonl"
    argv = _held_batch(tmp_path, batches, "anthropic", 2, out)
    stderr = _interrupted_while_running([*argv, "--cancel-on-interrupt"])
    assert batches.cancelled == batches.created
    assert f"cancelled batch {batches.created[0]}" in stderr

    again = run(*argv, "--output-format", "anthropic")

    assert again.returncode == 1
    results = read_results(out)
    assert [line["result"] for line in results] == [{"type": "canceled"}] * 2
    assert len(batches.created) == 1

    batches.release()
    retried = run(*argv, "--output-format", "anthropic", "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert len(batches.created) == 2  # the cancelled requests, in a new batch
    assert sorted(line["result"]["type"] for line in read_results(out)) == ["succeeded"] * 2


def test_an_expired_batch_writes_its_requests_as_expired(
    tmp_path: Path,
    batches: FakeBatchAPI,
    run: Runner,
) -> None:
    provider = "openai"  # an expired OpenAI batch has no result lines: pynector writes them
    batches.expire_next()
    source = write_lines(tmp_path / "in.jsonl", requests(provider, 2))
    out = tmp_path / "out.jsonl"

    done = run(
        "batch", source, "-o", out, *cli_args(batches, provider), *FAST,
        "--output-format", "openai",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    errors = [line["error"] for line in read_results(out)]
    assert [error["code"] for error in errors] == ["batch_expired"] * 2
    assert all(line["response"] is None for line in read_results(out))


def test_a_terminal_shows_the_remote_progress_and_is_asked_whether_to_cancel_on_ctrl_c(
    tmp_path: Path, batches: FakeBatchAPI
) -> None:
    batches.hold()
    source = write_lines(tmp_path / "in.jsonl", requests("openai", 1))
    out = tmp_path / "out.jsonl"
    argv = ["batch", source, "-o", out, *cli_args(batches, "openai"), "--poll-interval", "0.02"]
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    variables = {**env(), "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pynector", *map(str, argv)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=variables,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    try:
        # The rich bar's counts line says where the provider's batch stands.
        seen = _read_until(controller, b"remote: 1 batch running, 0/1 done", seen)
        process.send_signal(signal.SIGINT)
        seen = _read_until(controller, b"[y/N]", seen)
        os.write(controller, b"y\n")
        seen = _read_until(controller, b"cancelled batch", seen)
        assert process.wait(timeout=30) == 130
    finally:
        process.kill()
        process.wait()
        os.close(controller)
        assert process.stdout is not None
        process.stdout.close()

    assert batches.cancelled == batches.created
    assert b"keep running" in seen  # the question says what happens otherwise


def _read_until(descriptor: int, text: bytes, seen: bytes) -> bytes:
    import select
    import time

    deadline = time.monotonic() + 30
    while text not in seen:
        ready, _, _ = select.select([descriptor], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            pytest.fail(f"{text!r} did not appear on the terminal; it showed:\n{seen.decode()}")
        try:
            seen += os.read(descriptor, 65536)
        except OSError:
            pytest.fail(f"the terminal closed before {text!r}; it showed:\n{seen.decode()}")
    return seen


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--transport", "http", "--via", "batch-api"], "has no Batch API"),
        (
            ["--transport", "sdk", "--provider", "openai", "--api-key", API_KEY,
             "--via", "batch-api", "--rate", "5/s"],
            "--rate cannot be used with --via batch-api",
        ),
        (
            ["--transport", "sdk", "--provider", "openai", "--api-key", API_KEY,
             "--via", "batch-api", "--concurrency", "auto", "--tpm", "100"],
            "--tpm, --concurrency auto cannot be used with --via batch-api",
        ),
        (["--poll-interval", "1"], "--poll-interval only apply with --via batch-api"),
        (["--cancel-on-interrupt"], "--cancel-on-interrupt only apply with --via batch-api"),
    ],
)  # fmt: skip
def test_bad_combinations_are_usage_errors_before_anything_is_sent(
    tmp_path: Path,
    options: list[str],
    message: str,
    run: Runner,
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "path": "/x"}])
    out = tmp_path / "out.jsonl"

    done = run("batch", source, "-o", out, "--base-url", "http://127.0.0.1:9", *options)

    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists()
    assert API_KEY not in done.stderr


def test_a_state_file_of_another_provider_is_refused(
    tmp_path: Path, batches: FakeBatchAPI, run: Runner
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests("openai", 1))
    out = tmp_path / "out.jsonl"
    out.with_name("out.jsonl.batches.json").write_text(
        json.dumps({"version": 1, "provider": "anthropic", "input": "x", "batches": []})
    )

    done = run("batch", source, "-o", out, *cli_args(batches, "openai"), *FAST)

    assert done.returncode == 2
    assert "records batches at anthropic, not openai" in done.stderr
    assert batches.created == []


def test_an_unreachable_api_is_one_clear_error_and_ids_no_batch_takes_are_bad_lines(
    tmp_path: Path,
    batches: FakeBatchAPI,
    run: Runner,
) -> None:
    lines = [
        {"id": "fine", **chat("anthropic")},
        {"id": "not allowed!", **chat("anthropic")},  # a custom_id of letters, digits, - and _
        {"id": 5, **chat("anthropic")},
        {"id": "5", **chat("anthropic")},  # the same custom_id as 5
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out, unreachable = tmp_path / "out.jsonl", tmp_path / "unreachable.jsonl"

    done = run("batch", source, "-o", out, *cli_args(batches, "anthropic"), *FAST)
    down = run(
        "batch", source, "-o", unreachable, *cli_args(batches, "anthropic"), *FAST,
        "--base-url", "http://127.0.0.1:9",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr  # two bad lines
    assert "in.jsonl:2: skipped: the id 'not allowed!' cannot be a Message Batches" in done.stderr
    assert "in.jsonl:4: skipped: the id '5' is the Batch API's custom_id '5'" in done.stderr
    assert sorted(str(result["id"]) for result in read_results(out)) == ["5", "fine"]
    assert 5 in [result["id"] for result in read_results(out)]  # the id as read
    (created,) = batches.created
    assert len(batches.batches[created].requests) == 2
    assert down.returncode == 1
    assert "could not reach the API at http://127.0.0.1:9" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_batch_is_split_at_the_providers_byte_limit_too(
    tmp_path: Path, batches: FakeBatchAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process, with a limit of 400 bytes a batch instead of OpenAI's 200 MB.
    monkeypatch.setattr(OpenAIBatchAPI, "max_bytes", 400)
    monkeypatch.setenv("PYNECTOR_PLUGINS", "")
    lines = requests("openai", 5)
    lines.append({"id": "e", "operation": "embeddings.create", "model": "m", "input": "x"})
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    chat_line = {"operation": "chat.completions.create", **chat("openai")}
    size = len(OpenAIBatchAPI(None).request_line("r0", chat_line)[1]) + 1

    status = main(["batch", str(source), "-o", str(out), *cli_args(batches, "openai"), *FAST])

    assert status == 0
    uploads = [batches.files[f"file-{n:04d}"] for n in (1, 3, 5)]
    per_file = 400 // size
    assert 1 < per_file < 5
    assert [upload.count(b"\n") for upload in uploads] == [per_file, 5 - per_file, 1]
    assert all(len(upload) <= 400 for upload in uploads)
    endpoints = [batch.endpoint for batch in batches.batches.values()]
    assert sorted(endpoints) == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
    assert len(read_results(out)) == 6
