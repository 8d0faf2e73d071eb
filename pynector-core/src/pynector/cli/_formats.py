"""The output formats of ``pynector batch``: one result record, three ways to write it.

- ``pynector`` (the default): ``{"id", "line", "ok", "attempts", "elapsed",
  "response" or "error"}``.
- ``openai``: the OpenAI Batch API output line, ``{"id": "batch_req_...",
  "custom_id", "response": {"status_code", "request_id", "body"} or null,
  "error": {"code", "message"} or null}``. ``error`` is set only when there is
  no HTTP reply (a timeout, a connection error); an HTTP error is a
  ``response`` with its status and body, as OpenAI writes it.
- ``anthropic``: the Message Batches result line, ``{"custom_id", "result":
  {"type": "succeeded", "message"} | {"type": "errored", "error": {"type":
  "error", "error": {"type", "message"}}} | {"type": "canceled"} | {"type":
  "expired"}}``.

:func:`render` writes a :class:`ResultRecord` in a format; :func:`result_id`
reads any result line back (its id, whether it succeeded, its format), so a
resumed run skips what is done whatever the format, and refuses to append
lines of another format. The live batch and every other mode of ``pynector
batch`` write through these two.
"""

from __future__ import annotations

import json
import re
import secrets as _random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ._support import check_id

__all__ = [
    "OutputFormat",
    "ResultKey",
    "ResultRecord",
    "anthropic_error_type",
    "key_id",
    "live_record",
    "outcome_parts",
    "pynector_record",
    "render",
    "result_id",
]


class OutputFormat(StrEnum):
    """The ``--output-format`` of ``pynector batch``."""

    PYNECTOR = "pynector"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


@dataclass(slots=True)
class ResultRecord:
    """The result of one request, as every output format needs it.

    Attributes:
        id: The request's id, as read from the input.
        line: Its line number in the input.
        ok: Whether it succeeded.
        attempts: The attempts it took (0: refused before any was made).
        elapsed: Seconds from its first attempt to its result.
        value: pynector's JSON of the outcome: the reply (``ok``) or the error
            object (``{"type", "message", ...}``), already scrubbed of secrets.
        status_code: The HTTP status of the reply or of the error's reply;
            ``None`` when there was no HTTP reply.
        request_id: The provider's request id, when known.
        body: The JSON body of that HTTP reply.
        error_code: For a failure without an HTTP reply, a short code
            (``timeout``, ``connection_error``; ``batch_expired`` and
            ``batch_cancelled`` for a request a batch never ran, written as
            Anthropic's ``expired`` and ``canceled`` results).
        message: For a failure, what went wrong, in words.
        provider_lines: Lines the provider wrote for this result, by format,
            written verbatim when that format is chosen.
    """

    id: str | int
    line: int
    ok: bool
    attempts: int
    elapsed: float
    value: Any
    status_code: int | None = None
    request_id: str | None = None
    body: Any = None
    error_code: str | None = None
    message: str | None = None
    provider_lines: dict[OutputFormat, bytes] | None = None


class ResultKey(NamedTuple):
    """What :func:`result_id` reads from a result line."""

    id: str | int
    ok: bool
    format: OutputFormat


def key_id(request_id: str | int, fmt: OutputFormat) -> str | int:
    """The id a result line of ``fmt`` holds for ``request_id``.

    The providers' ``custom_id`` is a string: ``5`` and ``"5"`` are one id there.
    """
    return request_id if fmt is OutputFormat.PYNECTOR else str(request_id)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _batch_request_id() -> str:
    return "batch_req_" + _random.token_hex(16)


# Anthropic's error types (a closed set: the SDK's ErrorObject), by HTTP status.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# The OpenAI error codes of requests a batch never ran -> the Anthropic result type.
_ANTHROPIC_ENDS = {"batch_cancelled": "canceled", "batch_expired": "expired"}


def anthropic_error_type(status: int | None, error_code: str | None = None) -> str:
    """The Anthropic error ``type`` of an HTTP status, or of a failure without one.

    Another 4xx is an ``invalid_request_error``, another 5xx an ``api_error``;
    without a status, a timeout is a ``timeout_error``, the rest ``api_error``.
    """
    if status is None:
        return "timeout_error" if error_code == "timeout" else "api_error"
    found = _ANTHROPIC_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def _anthropic_error(record: ResultRecord) -> dict[str, Any]:
    body = record.body
    if (
        isinstance(body, dict)
        and body.get("type") == "error"
        and isinstance(body.get("error"), dict)
    ):
        return body
    error = {
        "type": anthropic_error_type(record.status_code, record.error_code),
        "message": record.message or "",
    }
    return {"type": "error", "error": error}


def render(record: ResultRecord, fmt: OutputFormat, dumps: Callable[[Any], str] = _dumps) -> bytes:
    """The output line (UTF-8, with its newline) of ``record`` in ``fmt``.

    Args:
        record: The result.
        fmt: The output format.
        dumps: Writes a JSON value as compact text: the reply or error of a
            pynector line, the whole of a provider line (pass one that scrubs
            secrets). Provider lines the record carries for ``fmt`` are
            written as they are.
    """
    verbatim = (record.provider_lines or {}).get(fmt)
    if verbatim is not None:
        return verbatim.rstrip(b"\r\n") + b"\n"
    if fmt is OutputFormat.OPENAI:
        response = None
        error = None
        if record.status_code is not None:
            response = {
                "status_code": record.status_code,
                "request_id": record.request_id,
                "body": record.body,
            }
        else:
            error = {"code": record.error_code or "error", "message": record.message or ""}
        line = {
            "id": _batch_request_id(),
            "custom_id": str(record.id),
            "response": response,
            "error": error,
        }
        text = dumps(line)
    elif fmt is OutputFormat.ANTHROPIC:
        result: dict[str, Any]
        if record.ok:
            result = {"type": "succeeded", "message": record.body}
        elif record.error_code in _ANTHROPIC_ENDS:
            result = {"type": _ANTHROPIC_ENDS[record.error_code]}
        else:
            result = {"type": "errored", "error": _anthropic_error(record)}
        text = dumps({"custom_id": str(record.id), "result": result})
    else:
        key = "response" if record.ok else "error"
        head = _dumps(record.id)
        text = (
            f'{{"id":{head},"line":{record.line},"ok":{"true" if record.ok else "false"},'
            f'"attempts":{record.attempts},"elapsed":{round(record.elapsed, 6)!r},'
            f'"{key}":{dumps(record.value)}}}'
        )
    return (text + "\n").encode("utf-8", "backslashreplace")


def _openai_ok(line: dict[str, Any]) -> bool | None:
    response, error = line.get("response"), line.get("error")
    if error is not None:
        return False if isinstance(error, dict) else None
    if not isinstance(response, dict):
        return None
    status = response.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool):
        return None
    return 200 <= status < 300


_ANTHROPIC_RESULTS = frozenset({"succeeded", "errored", "canceled", "expired"})


def result_id(raw: bytes | str) -> ResultKey | None:
    """The id, outcome and format of a result line, or ``None`` if it is not one.

    A pynector line has ``id`` and a boolean ``ok``; an OpenAI line has
    ``custom_id``, ``response`` and ``error`` (it succeeded when the response's
    status is 2xx); an Anthropic line has ``custom_id`` and a ``result`` whose
    ``type`` is ``succeeded`` when it succeeded.
    """
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(line) is not dict:
        return None
    try:
        if "custom_id" in line:
            custom_id = check_id(line["custom_id"], "custom_id")
            if "result" in line:
                kind = line["result"].get("type")
                if kind not in _ANTHROPIC_RESULTS:
                    return None
                return ResultKey(str(custom_id), kind == "succeeded", OutputFormat.ANTHROPIC)
            if "response" in line and "error" in line:
                ok = _openai_ok(line)
                if ok is None:
                    return None
                return ResultKey(str(custom_id), ok, OutputFormat.OPENAI)
            return None
        ok = line["ok"]
        request_id = check_id(line["id"])
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    if not isinstance(ok, bool):
        return None
    return ResultKey(request_id, ok, OutputFormat.PYNECTOR)


# -- a live result's parts --------------------------------------------------------------

_REQUEST_ID_HEADERS = ("x-request-id", "request-id")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _http_reply(value: Any) -> tuple[int, Any, str | None] | None:
    """``(status, body, request id)`` of a reply's JSON when it is an HTTP response's."""
    if not isinstance(value, dict):
        return None
    status = value.get("status_code")
    headers = value.get("headers")
    if not isinstance(status, int) or isinstance(status, bool) or not isinstance(headers, dict):
        return None
    request_id = next((str(headers[name]) for name in _REQUEST_ID_HEADERS if name in headers), None)
    return status, value.get("body"), request_id


def _error_code(kind: str) -> str:
    lowered = kind.lower()
    if "timeout" in lowered:
        return "timeout"
    if "connect" in lowered:
        return "connection_error"
    return _CAMEL.sub("_", kind).lower()


def outcome_parts(ok: bool, value: Any, request_id: str | None = None) -> dict[str, Any]:
    """The provider-format fields of a live result, from pynector's JSON of it.

    Args:
        ok: Whether the request succeeded.
        value: The reply's JSON (``ok``), or the error object of
            :func:`pynector.cli._json.error_json`.
        request_id: The provider's request id the reply object carries, if any.

    Returns:
        The keyword arguments ``status_code``, ``request_id``, ``body``,
        ``error_code`` and ``message`` of a :class:`ResultRecord`. A reply
        that is an HTTP response (``{"status_code", "headers", "body"}``) gives
        its status and body; any other reply is a 200 with the reply as body.
    """
    if ok:
        http = _http_reply(value)
        if http is not None:
            status, body, found = http
            return {"status_code": status, "body": body, "request_id": request_id or found}
        return {"status_code": 200, "body": value, "request_id": request_id}
    if not isinstance(value, dict):
        return {"error_code": "error", "message": str(value)}
    message = str(value.get("message", ""))
    kind = str(value.get("type", "Error"))
    http = _http_reply(value.get("response"))
    if http is not None:
        status, body, found = http
        return {"status_code": status, "body": body, "request_id": found, "message": message}
    code = value.get("status_code")
    if isinstance(code, int) and not isinstance(code, bool):
        body = {"error": {"message": message, "type": kind}}
        return {"status_code": code, "body": body, "message": message}
    return {"error_code": _error_code(kind), "message": message}


def live_record(
    request_id: str | int,
    line: int,
    ok: bool,
    value: Any,
    attempts: int,
    elapsed: float,
    provider_request_id: object = None,
) -> ResultRecord:
    """The record of a request sent live, from pynector's JSON of its outcome.

    Args:
        request_id: The request's id, as read.
        line: Its line number in the input.
        ok: Whether it succeeded.
        value: The reply's JSON (scrubbed of secrets), or the error object.
        attempts: The attempts made.
        elapsed: Seconds from its first attempt to its result.
        provider_request_id: The reply object's ``_request_id`` (the SDKs set
            it), used when it is a string.
    """
    found = provider_request_id if isinstance(provider_request_id, str) else None
    return ResultRecord(
        request_id, line, ok, attempts, elapsed, value, **outcome_parts(ok, value, found)
    )


def pynector_record(line: str | bytes) -> ResultRecord:
    """The record of a result line in pynector's format (a job keeps its results so).

    Raises:
        ValueError: If ``line`` is not a pynector result line.
    """
    parsed = json.loads(line)
    if not isinstance(parsed, dict) or not {"id", "line", "ok"} <= parsed.keys():
        raise ValueError("not a pynector result line")
    ok = parsed["ok"] is True
    value = parsed.get("response") if ok else parsed.get("error")
    return live_record(
        parsed["id"],
        parsed["line"],
        ok,
        value,
        int(parsed.get("attempts", 1)),
        float(parsed.get("elapsed", 0.0)),
    )
