"""The soak's fault server: a raw-socket HTTP/1.1 server in its own process.

It runs in a separate process so that the client under test owns every file
descriptor and task of its own process (what the soak counts), and so that
client and server each get a core. It answers by path:

================================  ===============================================
``/ok``                           200 with a small body; the connection stays open
``/ok-close``                     200, then the server closes the idle connection
``/slow?ms=N``                    200 after N milliseconds
``/body?chunks=N``                200, a chunked body of N chunks, 1 ms apart
``/status/CODE?ra=FORM``          that status (with a ``Retry-After`` of that form)
``/flaky/KEY?fail=N&status=S``    status S for the first N requests of KEY, then 200
``/reset``                        head and part of the body, then a TCP reset
``/reset-early``                  a TCP reset instead of any reply
``/close``                        the connection closed without a reply
``/truncated``                    ``Content-Length: 1000``, 100 bytes, then closed
``/stall-headers``                nothing, until the client hangs up
``/stall-body``                   head and 10 bytes, then nothing
``/trickle``                      one byte every 20 ms (never trips a read timeout)
``/malformed``                    an invalid status line
``/huge-headers``                 a 300 kB header line
``/redirect-loop``                302 to itself
``/__stats?idle=1``               counters as JSON (after waiting for idle)
================================  ===============================================

Two more ports cover the faults before any request: ``refused_port`` (bound,
never listening: connecting is refused) and ``hang_port`` (a full accept queue:
connecting never completes). Every wait on the server side is bounded by
``MAX_HOLD``. Only 127.0.0.1 is used.

Start it with :class:`FaultServerProcess` (a context manager); run this file
directly to serve by hand (it prints the ports as one JSON line and stops when
its standard input closes).

:class:`EchoServer` is a second, well-behaved raw-socket server (threads of the
test process) that echoes every request as JSON: method, target, header fields
and body exactly as they arrived.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import logging
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

MAX_HOLD = 10.0
BODY_LENGTH = 1000
HOST = "127.0.0.1"

# Retry-After forms a 429 or 503 reply can carry (``ra=`` query parameter).
RETRY_AFTER_FORMS = ("zero", "one", "negative", "past-date", "future-date", "junk", "ms")


def retry_after_header(form: str) -> tuple[str, str] | None:
    """The header a reply with Retry-After ``form`` carries."""
    now = time.time()
    if form == "zero":
        return "Retry-After", "0"
    if form == "one":
        return "Retry-After", "1"
    if form == "negative":
        return "Retry-After", "-5"
    if form == "past-date":
        return "Retry-After", email.utils.formatdate(now - 3600, usegmt=True)
    if form == "future-date":
        return "Retry-After", email.utils.formatdate(now + 2, usegmt=True)
    if form == "junk":
        return "Retry-After", "soon"
    if form == "ms":
        return "retry-after-ms", "3"
    return None


def _head(
    status: str = "200 OK",
    length: int | None = BODY_LENGTH,
    extra: list[tuple[str, str]] | None = None,
    content_type: str = "application/octet-stream",
) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(f"{name}: {value}" for name, value in extra or ())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_REASONS = {
    200: "OK",
    302: "Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _reply(code: int, body: bytes, extra: list[tuple[str, str]] | None = None) -> bytes:
    status = f"{code} {_REASONS.get(code, 'Status')}"
    return _head(status, len(body), extra, "application/json") + body


class _Closed(Exception):
    """The client hung up."""


class FaultServer:
    """The server itself (runs inside the server process, on asyncio)."""

    def __init__(self) -> None:
        self.open = 0
        self.connections = 0
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.flaky: dict[str, int] = {}
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.connections += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        aborted = False
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                _, target = request
                path, _, query = target.partition("?")
                self.requests += 1
                self.by_path[path.split("/")[1]] += 1
                keep, aborted = await self._answer(path, parse_qs(query), reader, writer)
                if not keep:
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Closed):
            pass
        finally:
            if not aborted:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            self.open -= 1
            self._notify()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length:
            await reader.readexactly(length)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        return method, target

    async def _until_closed(self, reader: asyncio.StreamReader, timeout: float = MAX_HOLD) -> None:
        """Wait until the client hangs up (or ``timeout``)."""
        with contextlib.suppress(asyncio.TimeoutError, OSError):
            async with asyncio.timeout(timeout):
                while await reader.read(65536):
                    pass

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _answer(
        self,
        path: str,
        query: dict[str, list[str]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> tuple[bool, bool]:
        """Misbehave as ``path`` says; return (keep the connection, it was aborted)."""
        arg = {name: values[-1] for name, values in query.items()}
        parts = path.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "ok":
            writer.write(_reply(200, b'{"ok":true}'))
            await writer.drain()
            return True, False
        if kind == "ok-close":
            writer.write(_reply(200, b'{"ok":true}'))
            await writer.drain()
            return False, False
        if kind == "slow":
            await asyncio.sleep(int(arg.get("ms", "10")) / 1000)
            writer.write(_reply(200, b'{"ok":true}'))
            await writer.drain()
            return True, False
        if kind == "body":
            writer.write(_head(length=None, extra=[("Transfer-Encoding", "chunked")]))
            for _ in range(int(arg.get("chunks", "4"))):
                writer.write(b"40\r\n" + b"b" * 64 + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.001)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True, False
        if kind == "status":
            code = int(parts[2])
            header = retry_after_header(arg.get("ra", ""))
            writer.write(_reply(code, b'{"error":"scripted"}', [header] if header else None))
            await writer.drain()
            return True, False
        if kind == "flaky":
            key = parts[2]
            attempt = self.flaky.get(key, 0) + 1
            if attempt <= int(arg.get("fail", "1")):
                self.flaky[key] = attempt
                writer.write(_reply(int(arg.get("status", "503")), b'{"error":"flaky"}'))
            else:
                self.flaky.pop(key, None)
                writer.write(_reply(200, b'{"ok":true}'))
            await writer.drain()
            return True, False
        if kind == "reset":
            writer.write(_head() + b"x" * 100)
            await writer.drain()
            await asyncio.sleep(0.002)  # let the client read the head first
            self._reset(writer)
            return False, True
        if kind == "reset-early":
            self._reset(writer)
            return False, True
        if kind == "close":
            return False, False
        if kind == "truncated":
            writer.write(_head() + b"x" * 100)
            await writer.drain()
            return False, False
        if kind == "stall-headers":
            await self._until_closed(reader)
            return False, False
        if kind == "stall-body":
            writer.write(_head() + b"x" * 10)
            await writer.drain()
            await self._until_closed(reader)
            return False, False
        if kind == "trickle":
            writer.write(_head())
            await writer.drain()
            for _ in range(BODY_LENGTH):
                writer.write(b"x")
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    async with asyncio.timeout(0.02):
                        if not await reader.read(1):
                            raise _Closed
            return False, False
        if kind == "malformed":
            writer.write(b"HTTP/1.1 two-hundred OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return False, False
        if kind == "huge-headers":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 300_000 + b"\r\n\r\n")
            await writer.drain()
            return False, False
        if kind == "redirect-loop":
            writer.write(_head("302 Found", 0, [("Location", "/redirect-loop")]))
            await writer.drain()
            return True, False
        if kind == "__stats":
            if arg.get("idle"):
                with contextlib.suppress(asyncio.TimeoutError):
                    async with asyncio.timeout(MAX_HOLD / 2):
                        while self.open > 1:
                            await self._changed.wait()
            body = json.dumps(self.stats()).encode()
            writer.write(_reply(200, body, [("Connection", "close")]))
            await writer.drain()
            return False, False
        writer.write(_reply(404, b'{"error":"no such fault"}'))
        await writer.drain()
        return True, False

    def stats(self) -> dict[str, Any]:
        """The counters; ``open`` does not count the connection asking."""
        return {
            "open": self.open - 1,
            "connections": self.connections - 1,
            "requests": self.requests - 1,
            "by_path": dict(self.by_path),
        }


def _hanging_listener() -> list[socket.socket]:
    """A listener whose accept queue is full: new connects never complete."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    return [listener, *fillers]


async def _serve() -> None:
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    state = FaultServer()
    server = await asyncio.start_server(state.handle, HOST, 0, backlog=1024, limit=1 << 20)
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.bind((HOST, 0))  # bound and never listening: connecting is refused
    hanging = _hanging_listener()
    ports = {
        "port": server.sockets[0].getsockname()[1],
        "refused_port": refused.getsockname()[1],
        "hang_port": hanging[0].getsockname()[1],
    }
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our standard input.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    for sock in [refused, *hanging]:
        sock.close()


CONTROL = "/__echo__/"
"""Path prefix of the echo server's few non-echo routes."""


class EchoServer:
    """A raw-socket HTTP/1.1 server (threads of this process) that echoes each request.

    The reply is JSON: the method, the request target, the header fields as
    received (names and values, in order) and the body (base64), so a test can
    compare what went over the wire with what it asked for, and see what a
    server that reflects its input would show. Connections are kept alive;
    chunked request bodies are decoded. Every request is kept in
    :attr:`received`. Three routes do more than echo:

    * ``/__echo__/status/CODE``: the echo, with that status;
    * ``/__echo__/redirect?to=URL&code=302``: a redirect;
    * ``/__echo__/sleep?s=SECONDS``: the echo, late.

    ``with EchoServer() as echo:``.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((HOST, 0))
        self._listener.listen(128)
        self.url = f"http://{HOST}:{self._listener.getsockname()[1]}"
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(MAX_HOLD)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        try:
            while True:
                line = stream.readline(65536)
                if not line:
                    return
                method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
                fields = []
                while (line := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
                    fields.append((name, value.strip(" \t")))
                lowered = {name.lower(): value for name, value in fields}
                if "content-length" in lowered:
                    body = stream.read(int(lowered["content-length"]))
                elif lowered.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while size := int(stream.readline().split(b";")[0], 16):
                        body += stream.read(size)
                        stream.readline()
                    stream.readline()
                else:
                    body = b""
                echo = {
                    "method": method,
                    "target": target,
                    "headers": fields,
                    "body": base64.b64encode(body).decode(),
                }
                with self._lock:
                    self.received.append(echo)
                sock.sendall(self._route(target, echo))
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
            sock.close()
            with self._lock:
                self._connections.discard(sock)

    def _route(self, target: str, echo: dict[str, Any]) -> bytes:
        path, _, query = target.partition("?")
        arg = {name: values[-1] for name, values in parse_qs(query).items()}
        if path.startswith(CONTROL + "status/"):
            return _reply(int(path.rsplit("/", 1)[1]), json.dumps(echo).encode())
        if path == CONTROL + "redirect":
            location = [("Location", arg["to"])]
            return _reply(int(arg.get("code", "302")), b"{}", location)
        if path == CONTROL + "sleep":
            time.sleep(min(float(arg.get("s", "1")), MAX_HOLD))
        return _reply(200, json.dumps(echo).encode())

    def headers_seen(self) -> list[dict[str, str]]:
        """The header fields of every request received so far (names lower-cased)."""
        with self._lock:
            return [{name.lower(): value for name, value in r["headers"]} for r in self.received]

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FaultServerProcess:
    """The fault server in a child process: ``with FaultServerProcess() as server:``.

    Attributes:
        url: ``http://127.0.0.1:PORT`` of the fault server.
        refused_url: A URL whose connection is refused.
        hang_url: A URL whose connection never completes.
    """

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the fault server process did not start")
        ports = json.loads(line)
        self.port = int(ports["port"])
        self.url = f"http://{HOST}:{self.port}"
        self.refused_url = f"http://{HOST}:{ports['refused_port']}"
        self.hang_url = f"http://{HOST}:{ports['hang_port']}"

    def stats(self, *, idle: bool = True) -> dict[str, Any]:
        """The server's counters, once every other connection is closed when ``idle``."""
        with socket.create_connection((HOST, self.port), timeout=MAX_HOLD) as sock:
            query = "?idle=1" if idle else ""
            sock.sendall(f"GET /__stats{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return dict(json.loads(data.partition(b"\r\n\r\n")[2]))

    def stop(self) -> None:
        """Stop the server process (closing its input) and wait for it."""
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FaultServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(_serve())
