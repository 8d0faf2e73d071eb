"""A small fake of OpenAI's Files and Batches and Anthropic's Message Batches endpoints.

For driving the real openai and anthropic SDKs (``pynector batch --via
batch-api``). A threaded stdlib HTTP/1.1 server on 127.0.0.1 and an
ephemeral port, in the style of ``_fake_api.py``. It answers:

* OpenAI: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET
  /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``,
  ``POST /v1/batches/{id}/cancel``;
* Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
  ``GET /v1/messages/batches/{id}/results``, ``POST
  /v1/messages/batches/{id}/cancel``.

A batch is ``in_progress`` at its first retrieval and ends at its
second, unless :meth:`FakeBatchAPI.hold` keeps every batch running until
:meth:`FakeBatchAPI.release` (or a cancel). Each request is answered as the
live fake answers it (``_fake_api.chat_completion`` / ``message``), except
``"model": "fail"`` (a 400: an error response, or an ``errored`` result) and,
for OpenAI, ``"model": "lost"`` (an error line without a response).
:meth:`FakeBatchAPI.expire_next` makes the next batch to end expire, its
requests unrun. Everything is counted (:attr:`FakeBatchAPI.created`,
:attr:`FakeBatchAPI.cancelled`, :attr:`FakeBatchAPI.uploads`), and the exact
result lines are kept for comparison (:attr:`FakeBatchAPI.result_lines`).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._fake_api import CREATED, LocalAPI, chat_completion, error_body, message

_MESSAGE_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass
class _Batch:
    id: str
    kind: str  # "openai" or "anthropic"
    endpoint: str
    requests: list[dict[str, Any]]
    status: str = "validating"
    polls: int = 0
    cancelling: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: list[bytes] = field(default_factory=list)


def _openai_result(batch_id: str, number: int, line: dict[str, Any]) -> tuple[bool, bytes]:
    """``(ok, output line)`` of one OpenAI batch request."""
    body = line.get("body") or {}
    model = str(body.get("model", "fake-model"))
    request_id = f"req_{batch_id}_{number}"
    result: dict[str, Any] = {
        "id": f"batch_req_{batch_id}_{number}",
        "custom_id": line["custom_id"],
    }
    if model == "lost":
        result["response"] = None
        result["error"] = {"code": "server_error", "message": "the request was lost"}
        return False, json.dumps(result).encode()
    if model == "fail":
        reply = {"status_code": 400, "request_id": request_id, "body": error_body(line["url"], 400)}
        ok = False
    else:
        reply = {"status_code": 200, "request_id": request_id, "body": chat_completion(model)}
        ok = True
    result["response"] = reply
    result["error"] = None
    return ok, json.dumps(result).encode()


def _anthropic_result(request: dict[str, Any], unrun: str | None) -> bytes:
    """The result line of one Anthropic batch request (``unrun``: canceled or expired)."""
    if unrun is not None:
        result: dict[str, Any] = {"type": unrun}
    elif request["params"].get("model") == "fail":
        error = error_body("/v1/messages", 400)
        result = {"type": "errored", "error": {**error, "request_id": "req_fail"}}
    else:
        result = {"type": "succeeded", "message": message(str(request["params"].get("model")))}
    return json.dumps({"custom_id": request["custom_id"], "result": result}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", "req_fake")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")

    def _handle(self, raw: bytes) -> None:
        api = self.server.api
        path = self.path.split("?", 1)[0]
        parts = [part for part in path.split("/") if part]
        try:
            status, body, content_type = api._answer(
                self.command, parts, raw, self.headers.get("Content-Type", "")
            )
        except KeyError as exc:
            status, body, content_type = 404, error_body(path, 404), "application/json"
            body["error"]["message"] = f"no such object: {exc}"
        self._send(status, body, content_type)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: FakeBatchAPI


class FakeBatchAPI(LocalAPI):
    """The fake Batch API server; ``start()`` it, read :attr:`url` / :attr:`root`, ``stop()``."""

    server_class = _Server
    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self.uploads = 0
        """Files uploaded (OpenAI)."""
        self.created: list[str] = []
        """The ids of the batches created, in order."""
        self.cancelled: list[str] = []
        """The ids of the batches a cancel was asked for."""
        self.result_lines: list[bytes] = []
        """Every result line of every ended batch, as sent."""
        self._held = False
        self._expire_next = False

    # -- steering ----------------------------------------------------------------------

    def hold(self) -> None:
        """Keep every batch in progress until :meth:`release` (or a cancel)."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False

    def expire_next(self) -> None:
        """Make the next batch to end expire, none of its requests run."""
        with self._lock:
            self._expire_next = True

    def wait_for_cancel(self, count: int = 1, timeout: float = 30) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.cancelled) >= count, timeout)

    # -- the endpoints -----------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def _answer(
        self, method: str, parts: list[str], raw: bytes, content_type: str
    ) -> tuple[int, Any, str]:
        json_type = "application/json"
        with self._lock:
            if parts == ["v1", "files"] and method == "POST":
                return 200, self._upload(raw, content_type), json_type
            if parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
                return 200, self.files[parts[2]], "application/octet-stream"
            if parts == ["v1", "batches"] and method == "POST":
                return 200, self._create_openai(json.loads(raw)), json_type
            if parts[:2] == ["v1", "batches"] and len(parts) == 3:
                return 200, self._openai_view(self._advance(self.batches[parts[2]])), json_type
            if parts[:2] == ["v1", "batches"] and parts[3:] == ["cancel"]:
                batch = self._cancel(parts[2])
                return 200, self._openai_view(batch), json_type
            if parts == ["v1", "messages", "batches"] and method == "POST":
                return 200, self._create_anthropic(json.loads(raw)), json_type
            if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 4:
                batch = self._advance(self.batches[parts[3]])
                return 200, self._anthropic_view(batch), json_type
            if parts[:3] == ["v1", "messages", "batches"] and parts[4:] == ["results"]:
                batch = self.batches[parts[3]]
                return 200, b"".join(line + b"\n" for line in batch.results), "application/binary"
            if parts[:3] == ["v1", "messages", "batches"] and parts[4:] == ["cancel"]:
                return 200, self._anthropic_view(self._cancel(parts[3])), json_type
        return 404, error_body("/" + "/".join(parts), 404), json_type

    def _upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields: dict[str, bytes] = {}
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
        assert fields.get("purpose") == b"batch", fields.get("purpose")
        file_id = self._new_id("file-")
        self.files[file_id] = fields["file"]
        self.uploads += 1
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(fields["file"]),
            "created_at": CREATED,
            "filename": "input.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def _create_openai(self, body: dict[str, Any]) -> dict[str, Any]:
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].splitlines()]
        assert body["completion_window"] == "24h"
        assert all(line["url"] == body["endpoint"] for line in lines)
        batch = _Batch(self._new_id("batch_"), "openai", body["endpoint"], lines)
        self.batches[batch.id] = batch
        self.created.append(batch.id)
        self._lock.notify_all()
        return self._openai_view(batch)

    def _create_anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        requests = body["requests"]
        batch = _Batch(self._new_id("msgbatch_"), "anthropic", "/v1/messages", requests)
        batch.status = "in_progress"
        self.batches[batch.id] = batch
        self.created.append(batch.id)
        self._lock.notify_all()
        return self._anthropic_view(batch)

    def _cancel(self, batch_id: str) -> _Batch:
        batch = self.batches[batch_id]
        self.cancelled.append(batch_id)
        self._lock.notify_all()
        if batch.kind == "openai":
            batch.status = "cancelling"
        else:
            batch.status = "canceling"
        batch.cancelling = True
        return batch

    def _advance(self, batch: _Batch) -> _Batch:
        """One retrieval: the batch moves on (see the module docstring)."""
        batch.polls += 1
        ended = ("completed", "expired", "cancelled", "ended")
        if batch.status in ended:
            return batch
        if batch.cancelling:
            self._end(batch, "cancelled" if batch.kind == "openai" else "ended", "canceled")
        elif batch.polls == 1 or self._held:
            batch.status = "in_progress"
        elif self._expire_next:
            self._expire_next = False
            self._end(batch, "expired" if batch.kind == "openai" else "ended", "expired")
        else:
            self._end(batch, "completed" if batch.kind == "openai" else "ended", None)
        return batch

    def _end(self, batch: _Batch, status: str, unrun: str | None) -> None:
        batch.status = status
        if batch.kind == "anthropic":
            batch.results = [_anthropic_result(request, unrun) for request in batch.requests]
            self.result_lines += batch.results
            return
        if unrun is not None:
            return  # an expired or cancelled OpenAI batch of unrun requests: no file
        output: list[bytes] = []
        errors: list[bytes] = []
        for number, line in enumerate(batch.requests):
            ok, result = _openai_result(batch.id, number, line)
            (output if ok else errors).append(result)
        self.result_lines += output + errors
        for lines, attribute in ((output, "output_file_id"), (errors, "error_file_id")):
            if lines:
                file_id = self._new_id("file-")
                self.files[file_id] = b"".join(line + b"\n" for line in lines)
                setattr(batch, attribute, file_id)

    # -- the views ---------------------------------------------------------------------

    def _openai_view(self, batch: _Batch) -> dict[str, Any]:
        ended = batch.status in ("completed", "expired", "cancelled")
        failed = sum(1 for line in batch.requests if line["body"].get("model") in ("fail", "lost"))
        done = len(batch.requests) if batch.status == "completed" else 0
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "input_file_id": "file-input",
            "completion_window": "24h",
            "status": batch.status,
            "created_at": CREATED,
            "output_file_id": batch.output_file_id if ended else None,
            "error_file_id": batch.error_file_id if ended else None,
            "request_counts": {
                "total": len(batch.requests),
                "completed": done - (failed if done else 0),
                "failed": failed if done else 0,
            },
        }

    def _anthropic_view(self, batch: _Batch) -> dict[str, Any]:
        counts = dict.fromkeys(_MESSAGE_COUNTS, 0)
        if batch.status == "ended":
            for line in batch.results:
                counts[str(json.loads(line)["result"]["type"])] += 1
        else:
            counts["processing"] = len(batch.requests)
        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": "2024-01-01T00:00:00Z",
            "expires_at": "2024-01-02T00:00:00Z",
            "ended_at": "2024-01-01T01:00:00Z" if ended else None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": f"{self.root}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


if __name__ == "__main__":  # pragma: no cover - manual runs
    api = FakeBatchAPI().start()
    print(api.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        api.stop()
