"""What ``pynector request`` and ``pynector batch`` know about the SDK transport.

:class:`SDKCLISupport` is returned by ``SDKTransport.pynector_cli_support``:

- ``--header`` fills the SDK client's ``default_headers``;
- an API path (``pynector request /v1/embeddings --json ...``, or an OpenAI
  Batch API line's ``url``) picks the operation (:data:`BATCH_OPERATIONS`);
- batch lines: pynector's own (the SDK call's keyword arguments), OpenAI Batch
  API lines (``custom_id``, ``method``, ``url``, ``body``) and Anthropic Message
  Batches lines (``custom_id``, ``params``);
- the ``--tpm`` estimate counts a chat's text and its output allowance;
- ``--via batch-api``: the provider's Batch API (``_batch_api.py``).

Imported only by the command line, never by ``import pynector_sdk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pynector.cli import (
    CLISupport,
    LineError,
    RequestWords,
    UsageError,
    jsonable,
    read_batch_api_line,
)
from pynector.redact import REDACTED, Scrubber, is_secret_header

from ._tokens import estimate_tokens

if TYPE_CHECKING:
    from pynector import Pynector
    from pynector.cli import BatchAPI

__all__ = ["BATCH_OPERATIONS", "SDKCLISupport", "estimate_tokens"]

BATCH_OPERATIONS: dict[str, str] = {
    "/v1/chat/completions": "chat.completions.create",
    "/v1/embeddings": "embeddings.create",
    "/v1/responses": "responses.create",
    "/v1/completions": "completions.create",
    "/v1/moderations": "moderations.create",
    "/v1/messages": "messages.create",
}
"""Batch API ``url`` (and ``pynector request`` path) -> the ``operation``."""


def _operation_of(path: str) -> str | None:
    path = path.rstrip("/")
    if not path.startswith("/v1/"):
        path = "/v1" + (path if path.startswith("/") else "/" + path)
    return BATCH_OPERATIONS.get(path)


class SDKCLISupport(CLISupport):
    """The command line's view of the ``sdk`` transport (see the module docstring)."""

    header_option = "default_headers"

    def request_data(self, words: RequestWords) -> Any:
        """The ``--json`` value, plus the ``operation`` an API path names.

        Raises:
            UsageError: For ``--param``, a method other than POST, no ``--json``,
                or a path that names no supported operation.
        """
        target = words.target
        plain = RequestWords(words.transport, words.method, None, words.body, words.params)
        data = super().request_data(plain)
        if target is None:
            return data
        if not isinstance(data, dict):
            raise UsageError("with an API path, --json must be a JSON object")
        path = urlsplit(target).path if "://" in target else target
        operation = _operation_of(path)
        if operation is None:
            raise UsageError(
                f"{target!r} is not a supported API path ({', '.join(BATCH_OPERATIONS)}); or "
                'leave it out and put "operation": "..." in --json'
            )
        return {**data, "operation": operation}

    def read_line(
        self, line: dict[str, Any], options: Mapping[str, Any]
    ) -> tuple[str | int | None, Any]:
        """A batch line as the SDK call's arguments (plus ``operation`` for a Batch API line).

        Raises:
            LineError: For a malformed Batch API line or an unsupported ``url``.
        """
        if "custom_id" not in line:
            return super().read_line(line, options)
        request_id, url, method, body = read_batch_api_line(line)
        if url is None:  # Anthropic Message Batches
            return request_id, body
        if not isinstance(method, str) or method.upper() != "POST":
            raise LineError(f'"method" must be "POST" for a Batch API line, not {method!r:.40}')
        operation = _operation_of(urlsplit(url).path if "://" in url else url)
        if operation is None:
            known = ", ".join(BATCH_OPERATIONS)
            raise LineError(f'"url" {url!r:.60} is not one of the supported endpoints: {known}')
        return request_id, {**body, "operation": operation}

    def batch_api(self, client: Pynector) -> BatchAPI | None:
        """OpenAI's Files and Batches, or Anthropic's Message Batches, through the client's SDK."""
        from ._batch_api import batch_api

        return batch_api(client.transport)

    def estimate_tokens(self, data: Any) -> int:
        """The chat estimate of :meth:`pynector_sdk.SDKTransport.estimate_tokens`."""
        return estimate_tokens(data)

    def error_reply(self, error: BaseException) -> Any | None:
        """The HTTP response an SDK status error carries, when it has one."""
        response = getattr(error, "response", None)
        if response is None or not isinstance(getattr(response, "status_code", None), int):
            return None
        return response

    def reply_json(self, reply: Any, secrets: Scrubber | None = None) -> Any:
        """The SDK's reply (a pydantic model) as JSON; an error's HTTP response as
        ``{"status_code", "headers", "body"}``."""
        if isinstance(getattr(reply, "status_code", None), int) and hasattr(reply, "headers"):
            return _response_json(reply, secrets)
        return jsonable(reply, secrets)


def _response_json(response: Any, secrets: Scrubber | None) -> dict[str, Any]:
    headers = {
        str(name).lower(): REDACTED if is_secret_header(str(name)) else str(value)
        for name, value in response.headers.items()
    }
    result: dict[str, Any] = {"status_code": response.status_code, "headers": headers}
    try:
        result["body"] = response.json()
    except Exception:  # not JSON (or not read): its text, or its bytes
        try:
            result["body"] = response.text
        except Exception:
            result["body"] = jsonable(getattr(response, "content", None), secrets)
    return result
