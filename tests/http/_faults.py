"""The fault server: a raw-socket loopback server that misbehaves on purpose.

It reads one request head per connection and answers according to the path
(``/slow-headers``, ``/truncated``, ...). It counts open connections, so a test
can check from the server's side that the client closed every connection it
gave up on. ``refused_port()`` and ``HangingListener`` cover the two faults that
happen before any request: connection refused and a connect that never completes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

MAX_HOLD = 10.0
BODY_LENGTH = 1000


def _recv_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def _wait_closed(sock: socket.socket, timeout: float = MAX_HOLD) -> bool:
    """Block until the peer closes (EOF or reset) or ``timeout``; True if it did."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            try:
                if not sock.recv(65536):
                    return True
            except OSError:
                return True
    return False


def _head(status: str = "200 OK", length: int | None = BODY_LENGTH, extra: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/octet-stream"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FaultServer:
    """Serve one misbehaviour per request path; count connections."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cond = threading.Condition()
        self.open_connections = 0
        self.connections = 0
        self.requests: list[str] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self.cond:
                self.open_connections += 1
                self.connections += 1
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(MAX_HOLD)
            while True:
                head = _recv_head(sock)
                if not head:
                    return
                path = head.split(b" ", 2)[1].decode()
                with self.cond:
                    self.requests.append(path)
                    self.cond.notify_all()
                if not self._answer(sock, path.split("?")[0]):
                    return
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self.cond:
                self.open_connections -= 1
                self.cond.notify_all()

    def _answer(self, sock: socket.socket, path: str) -> bool:
        """Misbehave as ``path`` says; return True to keep reading requests."""
        if path == "/ok":
            sock.sendall(_head(length=2) + b"ok")
            return True
        if path == "/slow-headers":
            _wait_closed(sock)
        elif path == "/stall-body":
            sock.sendall(_head() + b"x" * 10)
            _wait_closed(sock)
        elif path == "/trickle":
            sock.sendall(_head())
            for _ in range(BODY_LENGTH):
                sock.sendall(b"x")
                readable, _, _ = select.select([sock], [], [], 0.02)
                if readable and not sock.recv(1):
                    break
        elif path == "/reset-mid-body":
            sock.sendall(_head() + b"x" * 100)
            time.sleep(0.05)  # let the client read the head before the reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == "/close-without-response":
            pass
        elif path == "/truncated":
            sock.sendall(_head() + b"x" * 100)
        elif path == "/malformed-status":
            sock.sendall(b"HTTP/1.1 two-hundred OK\r\nContent-Length: 0\r\n\r\n")
        elif path == "/huge-headers":
            with contextlib.suppress(OSError):
                sock.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 300_000 + b"\r\n\r\n")
        elif path == "/redirect-loop":
            sock.sendall(_head("302 Found", 0, "Location: /redirect-loop"))
            return True
        elif path == "/bad-gzip":
            # Declares gzip, sends bytes that are not.
            sock.sendall(_head(length=16, extra="Content-Encoding: gzip") + b"not gzip at all!")
            return True
        elif path == "/idle-close":
            # A complete keep-alive reply, then the server drops the idle connection.
            sock.sendall(_head(length=2) + b"ok")
            sock.shutdown(socket.SHUT_RDWR)
        else:
            sock.sendall(_head("404 Not Found", 0))
            return True
        return False


def refused_port() -> int:
    """A loopback port with nothing listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HangingListener:
    """A listener whose accept queue is full, so new connects never complete.

    Linux drops the SYN of a connection that does not fit in a full accept
    queue; the client keeps retransmitting until its connect timeout fires.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def start(self) -> HangingListener:
        return self

    def stop(self) -> None:
        for sock in [*self._fillers, self._listener]:
            sock.close()
