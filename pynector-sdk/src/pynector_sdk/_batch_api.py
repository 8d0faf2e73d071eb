"""The providers' Batch APIs behind ``pynector batch --via batch-api``.

:func:`batch_api` returns the :class:`pynector.cli.BatchAPI` of an ``sdk``
transport's client:

- OpenAI (:class:`OpenAIBatchAPI`): each batch is a JSONL file uploaded with
  ``files.create(purpose="batch")`` and a ``batches.create`` for one endpoint,
  at most 50,000 requests and 200 MB; its results are the lines of its output
  file and of its error file.
- Anthropic (:class:`AnthropicBatchAPI`): ``messages.batches.create`` with the
  requests, at most 100,000 requests and 256 MB; its results are the lines of
  ``messages.batches.results``.

Every SDK call goes through the transport's SDK client (its key, base URL,
headers and connection pool) and its error translation, so a failure is a
:mod:`pynector.errors` error with the SDK's as its cause.

Imported only by the command line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynector.cli import LineError, RemoteStatus, UsageError

if TYPE_CHECKING:
    from pynector.cli import BatchAPI

__all__ = ["AnthropicBatchAPI", "OpenAIBatchAPI", "batch_api"]

OPENAI_ENDPOINTS: dict[str, str] = {
    "chat.completions.create": "/v1/chat/completions",
    "embeddings.create": "/v1/embeddings",
    "responses.create": "/v1/responses",
    "completions.create": "/v1/completions",
    "moderations.create": "/v1/moderations",
}
"""The operations OpenAI's Batch API runs -> the endpoint of their batch."""

_MB = 1_000_000
_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _json_line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _arguments(data: Any, provider: str) -> tuple[str | None, dict[str, Any]]:
    if not isinstance(data, dict):
        raise LineError(f"a {provider} Batch API request must be a JSON object of arguments")
    arguments = dict(data)
    operation = arguments.pop("operation", None)
    if operation is not None and not isinstance(operation, str):
        raise LineError('"operation" must be a string such as "chat.completions.create"')
    if arguments.get("stream") is True:
        raise LineError('a Batch API request cannot stream; drop "stream": true')
    return operation, arguments


class _SDKBatchAPI:
    """What both providers share: the transport's SDK client and error translation."""

    provider = ""
    max_requests = 0
    max_bytes = 0

    def __init__(self, transport: Any) -> None:
        # An SDKTransport; not imported, because the transport imports the command
        # line's support, which imports this module.
        self._transport = transport

    @property
    def _client(self) -> Any:
        return self._transport.sdk_client

    async def _call(self, operation: str, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        with self._transport._errors.around(operation):
            return await method(*args, **kwargs)


class OpenAIBatchAPI(_SDKBatchAPI):
    """OpenAI's Files and Batches endpoints (see the module docstring)."""

    provider = "openai"
    max_requests = 50_000
    max_bytes = 200 * _MB

    def request_line(self, custom_id: str, data: Any) -> tuple[str, bytes]:
        """``(endpoint, {"custom_id", "method", "url", "body"})`` of a request.

        Raises:
            LineError: For an operation OpenAI's Batch API does not run.
        """
        operation, body = _arguments(data, "OpenAI")
        name = operation or self._transport.default_operation
        url = OPENAI_ENDPOINTS.get(name)
        if url is None:
            raise LineError(
                f"OpenAI's Batch API does not run {name}; it runs {', '.join(OPENAI_ENDPOINTS)}"
            )
        line = {"custom_id": custom_id, "method": "POST", "url": url, "body": body}
        return url, _json_line(line)

    async def create(self, group: str, lines: Sequence[bytes]) -> str:
        """Upload the lines as a batch input file and create a 24 h batch of them."""
        client = self._client
        content = b"".join(line + b"\n" for line in lines)
        uploaded = await self._call(
            "files.create",
            client.files.create,
            file=("pynector-batch.jsonl", content, "application/jsonl"),
            purpose="batch",
        )
        created = await self._call(
            "batches.create",
            client.batches.create,
            input_file_id=uploaded.id,
            endpoint=group,
            completion_window="24h",
            metadata={"created_by": "pynector batch"},
        )
        return str(created.id)

    async def status(self, batch_id: str) -> RemoteStatus:
        """The batch's status and counts."""
        batch = await self._call("batches.retrieve", self._client.batches.retrieve, batch_id)
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts is not None else 0
        total = counts.total if counts is not None else 0
        ended = batch.status in ("completed", "failed", "expired", "cancelled")
        missing = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(
            batch.status, "batch_failed"
        )
        message = None
        errors = getattr(batch, "errors", None)
        if batch.status == "failed" and errors is not None and errors.data:
            message = "; ".join(str(error.message) for error in errors.data if error.message)
        return RemoteStatus(batch.status, ended, done, total, missing, message)

    async def results(self, batch_id: str) -> list[bytes]:
        """The lines of the batch's output file, then of its error file."""
        client = self._client
        batch = await self._call("batches.retrieve", client.batches.retrieve, batch_id)
        lines: list[bytes] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._call("files.content", client.files.content, file_id)
            lines += [line for line in content.content.splitlines() if line.strip()]
        return lines

    async def cancel(self, batch_id: str) -> None:
        """Ask OpenAI to cancel the batch (it stops within minutes, keeping what is done)."""
        await self._call("batches.cancel", self._client.batches.cancel, batch_id)


class AnthropicBatchAPI(_SDKBatchAPI):
    """Anthropic's Message Batches endpoints (see the module docstring)."""

    provider = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * _MB

    def request_line(self, custom_id: str, data: Any) -> tuple[str, bytes]:
        """``("/v1/messages", {"custom_id", "params"})`` of a request.

        Raises:
            LineError: For an operation other than ``messages.create``.
        """
        operation, params = _arguments(data, "Anthropic")
        if not _ANTHROPIC_ID.fullmatch(custom_id):
            raise LineError(
                f"the id {custom_id!r:.70} cannot be a Message Batches custom_id: it takes 1 "
                "to 64 letters, digits, '-' and '_'"
            )
        if operation not in (None, "messages.create"):
            raise LineError(
                f"Anthropic's Message Batches run messages.create only, not {operation}"
            )
        return "/v1/messages", _json_line({"custom_id": custom_id, "params": params})

    async def create(self, group: str, lines: Sequence[bytes]) -> str:
        """Create a Message Batch of the requests."""
        requests = [json.loads(line) for line in lines]
        created = await self._call(
            "messages.batches.create", self._client.messages.batches.create, requests=requests
        )
        return str(created.id)

    async def status(self, batch_id: str) -> RemoteStatus:
        """The batch's processing status and counts."""
        batch = await self._call(
            "messages.batches.retrieve", self._client.messages.batches.retrieve, batch_id
        )
        counts = batch.request_counts
        done = counts.succeeded + counts.errored + counts.canceled + counts.expired
        total = done + counts.processing
        state = batch.processing_status
        return RemoteStatus(state, state == "ended", done, total)

    async def results(self, batch_id: str) -> list[bytes]:
        """The batch's result lines, as Anthropic sent them (the decoder's body, unparsed)."""
        decoder = await self._call(
            "messages.batches.results", self._client.messages.batches.results, batch_id
        )
        try:
            with self._transport._errors.around("messages.batches.results"):
                content: bytes = await decoder.http_response.aread()
        finally:
            await decoder.close()
        return [line for line in content.splitlines() if line.strip()]

    async def cancel(self, batch_id: str) -> None:
        """Ask Anthropic to cancel the batch (the requests not run yet end as ``canceled``)."""
        await self._call("messages.batches.cancel", self._client.messages.batches.cancel, batch_id)


def batch_api(transport: Any) -> BatchAPI | None:
    """The Batch API of an ``sdk`` transport (``None`` for any other transport).

    Raises:
        UsageError: For a provider without a Batch API.
    """
    if getattr(transport, "transport_type", None) != "sdk" or not hasattr(transport, "sdk_client"):
        return None
    if transport.provider == "openai":
        return OpenAIBatchAPI(transport)
    if transport.provider == "anthropic":
        return AnthropicBatchAPI(transport)
    raise UsageError(  # pragma: no cover - every provider has one today
        f"the {transport.provider} provider has no Batch API pynector can use"
    )
