"""Fixtures for the command-line tests: a counting loopback HTTP server and a runner.

The server runs in a thread of the test process on 127.0.0.1 and an ephemeral
port; the CLI runs as a real subprocess (``python -m pynector``) against it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

PYNECTOR = [sys.executable, "-m", "pynector"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reply_bytes(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._serve(json.loads(raw) if raw else None)

    def _serve(self, body: Any) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [part for part in url.path.split("/") if part]
        server = self.server
        with server.lock:
            server.arrivals.append(time.monotonic())
            server.hits[url.path] += 1
            server.methods.append((self.command, url.path))
            hits = server.hits[url.path]
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            gate = int(query.get("gate", ["0"])[0])
            if gate:
                server.meet(gate)
            delay = float(query.get("delay", ["0"])[0])
            if delay:
                server.stopping.wait(delay)
            if parts[:1] == ["ok"]:
                self._reply(200, {"path": url.path, "hits": hits})
            elif parts[:1] == ["status"] and len(parts) == 2:
                self._reply(int(parts[1]), {"error": f"status {parts[1]}"})
            elif parts[:1] == ["flaky"]:
                fail = int(query.get("fail", ["1"])[0])
                if hits <= fail:
                    self._reply(503, {"error": "try again"}, {"Retry-After": "0"})
                else:
                    self._reply(200, {"path": url.path, "hits": hits})
            elif parts == ["headers"]:
                self._reply(200, {"headers": dict(self.headers.items())})
            elif parts == ["echo"]:
                self._reply(200, {"method": self.command, "target": self.path, "body": body})
            elif parts == ["binary"]:
                # Not UTF-8, with the credentials and the query as they arrived.
                seen = f"{self.headers.get('Authorization', '')} {url.query}".encode("latin-1")
                self._reply_bytes(b"\xff\xfe" + seen + b"\x80")
            elif parts == ["v1", "chat", "completions"]:
                self._reply(200, _chat_completion(body, self.headers.get("Authorization", "")))
            else:
                self._reply(404, {"error": f"no such path: {url.path}"})
        finally:
            with server.lock:
                server.in_flight -= 1


def _chat_completion(body: Any, authorization: str) -> dict[str, Any]:
    """An OpenAI chat completion that echoes the last message and the credentials seen."""
    messages = (body or {}).get("messages") or [{"content": ""}]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": (body or {}).get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"echo: {messages[-1].get('content')} (auth: {authorization})",
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # no dropped connects (and 1 s SYN retries) under concurrency

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.methods: list[tuple[str, str]] = []
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self.gate = threading.Condition(self.lock)
        self.at_gate = 0

    def meet(self, count: int) -> None:
        """Hold a request until ``count`` requests with a gate have arrived (10 s at most)."""
        with self.gate:
            self.at_gate += 1
            self.gate.notify_all()
            self.gate.wait_for(lambda: self.at_gate >= count or self.stopping.is_set(), timeout=10)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-request is part of the tests


class CountingServer:
    """A loopback HTTP server that counts requests per path and requests in flight.

    Paths: ``/ok/<anything>`` (200), ``/status/<code>``, ``/flaky/<key>?fail=N``
    (503 with ``Retry-After: 0`` N times, then 200), ``/headers`` (echoes the
    request headers), ``/echo`` (echoes the method, the target as sent and the
    JSON body), ``/binary`` (a body that is not UTF-8, echoing the Authorization
    header and the query), ``POST /v1/chat/completions`` (an OpenAI chat
    completion). Any path takes ``?delay=SECONDS``, and ``?gate=N``: the request
    is held until N requests with a gate have arrived (10 s at most), so that
    two clients are known to be in flight at once.
    """

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.hits = self._server.hits
        self.methods = self._server.methods
        self.arrivals = self._server.arrivals

    @property
    def in_flight(self) -> int:
        return self._server.in_flight

    @property
    def max_in_flight(self) -> int:
        return self._server.max_in_flight

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    counting = CountingServer()
    counting.start()
    try:
        yield counting
    finally:
        counting.stop()


def write_lines(path: Path, lines: Sequence[object]) -> Path:
    """Write each item as a JSON line (strings are written as they are)."""
    with open(path, "w", encoding="utf-8") as file:
        for line in lines:
            file.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every line of an output file, parsed (fails the test on an invalid line)."""
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the output does not end with a whole line"
    return [json.loads(line) for line in raw.splitlines()]


def env() -> dict[str, str]:
    """The environment of a CLI subprocess: plain output, no installed plugins."""
    variables = {**os.environ, "PYNECTOR_PLUGINS": "", "NO_COLOR": "1"}
    variables.pop("PYNECTOR_TIMEOUT", None)
    return variables


def run_cli(*args: str | Path, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pynector ARGS`` to the end and capture its output."""
    return subprocess.run(
        [*PYNECTOR, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env(),
    )


def start_cli(*args: str | Path) -> subprocess.Popen[str]:
    """Start ``python -m pynector ARGS`` in the background."""
    return subprocess.Popen(
        [*PYNECTOR, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    """Poll ``path`` until it holds ``count`` whole lines (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"the batch ended (status {process.returncode}) too early:\n{err}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"{path} did not reach {count} lines within 30 s")


def wait_for_in_flight(server: CountingServer, count: int, process: subprocess.Popen[str]) -> None:
    """Poll the server until ``count`` requests are in flight (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.in_flight >= count:
            return
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"the batch ended (status {process.returncode}) too early:\n{err}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"the server did not see {count} requests in flight within 30 s")


def read_stderr_until(process: subprocess.Popen[str], text: str) -> str:
    """Read the process's stderr until ``text`` appears (30 s at most); return what was read."""
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + 30
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([descriptor], [], [], max(left, 0))
        chunk = os.read(descriptor, 65536) if ready else b""
        if not chunk:
            process.kill()
            pytest.fail(f"{text!r} did not appear on stderr; it showed:\n{seen.decode()}")
        seen += chunk
    return seen.decode()


@dataclass
class Done:
    """What a run of the command returned and printed."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[..., Done]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Run ``pynector ARGS`` in this process, in the environment :func:`run_cli` gives.

    For runs that need no process of their own (no signal, no terminal): the
    same code, without an interpreter's start and the transports' imports.
    """
    monkeypatch.setenv("PYNECTOR_PLUGINS", "")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("PYNECTOR_TIMEOUT", raising=False)

    def run(*args: str | Path) -> Done:
        from pynector.cli import main

        capsys.readouterr()
        status = main([str(arg) for arg in args])
        stdout, stderr = capsys.readouterr()
        return Done(status, stdout, stderr)

    return run
