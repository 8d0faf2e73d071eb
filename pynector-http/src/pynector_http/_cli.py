"""What ``pynector request`` and ``pynector batch`` know about the HTTP transport.

:class:`HTTPCLISupport` is returned by ``HTTPTransport.pynector_cli_support``:

- the words of ``pynector request [METHOD] URL`` build an HTTP request dict
  (``method``, ``url`` or ``path``, ``params``, ``json`` or ``content``);
- batch lines: pynector's own (a body and no method is a POST, as curl does),
  OpenAI Batch API lines (``custom_id``, ``method``, ``url``, ``body``: the
  ``body`` sent as JSON to ``url``) and Anthropic Message Batches lines
  (``custom_id``, ``params``: a POST of ``params`` to ``/v1/messages``);
- replies are printed as status line, headers and body, and written as
  ``{"status_code", "headers", "body"}``; an HTTP status error shows its reply.

Imported only by the command line, never by ``import pynector_http``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, TextIO
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

__all__ = ["HTTPCLISupport", "http_response_json", "is_http_response"]

_BODY_KEYS = ("json", "data", "content", "files")


def is_http_response(value: object) -> bool:
    """Whether ``value`` looks like an HTTP response (pynector-http's, httpx's, ...)."""
    try:
        return (
            isinstance(getattr(value, "status_code", None), int)
            and hasattr(value, "headers")
            and isinstance(getattr(value, "content", None), bytes)
        )
    except Exception:  # a streamed response whose body was not read
        return False


def _is_json_type(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def http_response_json(response: Any, secrets: Scrubber | None = None) -> dict[str, Any]:
    """``{"status_code", "headers", "body"}``, or ``"body_base64"`` for binary content.

    The body is the parsed JSON when the Content-Type is JSON and it parses, else
    the decoded text. Secret headers (``Set-Cookie``, ...; see
    :func:`pynector.redact.is_secret_header`) show ``[redacted]``. A binary body
    is scrubbed of ``secrets`` as bytes before it is encoded (text is scrubbed
    when the JSON is written).
    """
    headers: dict[str, str] = {}
    content_type = ""
    for name, value in response.headers.items():
        lowered = str(name).lower()
        headers[lowered] = REDACTED if is_secret_header(lowered) else str(value)
        if lowered == "content-type":
            content_type = str(value)
    result: dict[str, Any] = {"status_code": response.status_code, "headers": headers}
    content: bytes = response.content
    if content and _is_json_type(content_type):
        try:
            result["body"] = json.loads(content)
        except ValueError:
            pass
        else:
            return result
    encoding = getattr(response, "encoding", None) or "utf-8"
    try:
        result["body"] = content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        if secrets is not None:
            content = secrets.scrub_bytes(content)
        result["body_base64"] = base64.b64encode(content).decode("ascii")
    return result


class HTTPCLISupport(CLISupport):
    """The command line's view of the ``http`` transport (see the module docstring)."""

    header_option = "headers"

    def request_data(self, words: RequestWords) -> Any:
        """``{"method", "url" or "path", "params"?, "json" or "content"?}`` from the words.

        Raises:
            UsageError: If there is neither a URL nor a ``--base-url``.
        """
        body = words.body
        request: dict[str, Any] = {"method": words.method or ("POST" if body else "GET")}
        target = words.target
        if target is not None:
            request["url" if "://" in target else "path"] = target
        elif words.base_url is None:
            raise UsageError(
                "give the URL to request, e.g. pynector request https://example.com/, "
                "or a path with --base-url"
            )
        if words.params:
            request["params"] = words.params
        if body is not None:
            request[body[0]] = body[1]
        return request

    def read_line(
        self, line: dict[str, Any], options: Mapping[str, Any]
    ) -> tuple[str | int | None, Any]:
        """A batch line as an HTTP request: pynector's, OpenAI Batch API's or Anthropic's.

        A Batch API ``url`` ``/v1/...`` under a ``base_url`` that ends in ``/v1``
        loses its ``/v1``.

        Raises:
            LineError: For a malformed Batch API line.
        """
        if "custom_id" in line:
            base_url = options.get("base_url")
            path = urlsplit(base_url).path.rstrip("/") if isinstance(base_url, str) else ""
            return self._batch_api(line, strip_v1=path.endswith("/v1"))
        request_id, data = super().read_line(line, options)
        if "method" not in data and any(key in data for key in _BODY_KEYS):
            data["method"] = "POST"  # a body and no method: POST, as curl does
        return request_id, data

    def _batch_api(self, line: dict[str, Any], *, strip_v1: bool) -> tuple[str | int, Any]:
        request_id, url, method, body = read_batch_api_line(line)
        if url is None:  # Anthropic Message Batches
            path = "/messages" if strip_v1 else "/v1/messages"
            return request_id, {"method": "POST", "path": path, "json": body}
        if not isinstance(method, str) or not method.isalpha():
            raise LineError(f'"method" must be an HTTP method such as "POST", not {method!r:.40}')
        request: dict[str, Any] = {"method": method.upper(), "json": body}
        if "://" in url:
            request["url"] = url
        else:
            if strip_v1 and url.startswith("/v1/"):
                url = url[3:]
            request["path"] = url
        return request_id, request

    def reply_json(self, reply: Any, secrets: Scrubber | None = None) -> Any:
        """An HTTP response as ``{"status_code", "headers", "body"}``; anything else as JSON."""
        if is_http_response(reply):
            return http_response_json(reply, secrets)
        return jsonable(reply, secrets)

    def error_reply(self, error: BaseException) -> Any | None:
        """The response of an HTTP status error, when it carries one."""
        response = getattr(error, "response", None)
        return response if response is not None and is_http_response(response) else None

    def print_reply(self, reply: Any, secrets: Scrubber, out: TextIO) -> None:
        """The status line, the headers (secrets redacted) and the body.

        A JSON body is indented; a body that is not text goes to ``out``'s
        binary buffer (a terminal gets a note instead).
        """
        if not is_http_response(reply):
            super().print_reply(reply, secrets, out)
            return
        version = getattr(reply, "http_version", None) or "HTTP/1.1"
        reason = getattr(reply, "reason_phrase", "") or ""
        lines = [f"{version} {reply.status_code} {reason}".rstrip()]
        content_type = ""
        for name, value in reply.headers.items():
            shown = REDACTED if is_secret_header(str(name)) else value
            lines.append(f"{name}: {shown}")
            if str(name).lower() == "content-type":
                content_type = str(value)
        content: bytes = reply.content
        text = _text(content, content_type, getattr(reply, "encoding", None))
        if text is None:
            out.write(secrets.scrub("\n".join(lines)) + "\n\n")
            out.flush()
            if out.isatty():
                out.write(
                    f"[{len(content)} bytes of binary content; redirect the output to a file "
                    "or pass --format json]\n"
                )
            else:
                out.buffer.write(secrets.scrub_bytes(content))
            return
        out.write(secrets.scrub("\n".join([*lines, "", text])).rstrip("\n") + "\n")


def _text(content: bytes, content_type: str, encoding: str | None) -> str | None:
    """The body to print: indented JSON, the decoded text, or ``None`` for binary."""
    if content and "json" in content_type.lower():
        try:
            return json.dumps(json.loads(content), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    try:
        return content.decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return None
