"""The JSON forms of replies and errors: any transport's, and the HTTP transport's."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from pydantic import BaseModel

from pynector.cli import jsonable
from pynector.cli._json import error_json
from pynector.cli._secrets import Secrets
from pynector.errors import NotFoundError
from pynector_http import Response
from pynector_http._cli import HTTPCLISupport

HTTP = HTTPCLISupport()


def test_an_http_response_becomes_status_headers_and_parsed_json_body() -> None:
    response = Response(
        200,
        headers=[("Content-Type", "application/json"), ("Set-Cookie", "session=abc")],
        content=b'{"a": [1, 2]}',
    )
    assert HTTP.reply_json(response) == {
        "status_code": 200,
        "headers": {"content-type": "application/json", "set-cookie": "[redacted]"},
        "body": {"a": [1, 2]},
    }


def test_a_text_or_binary_http_body_is_kept_as_text_or_base64() -> None:
    text = Response(
        200, headers={"Content-Type": "text/plain; charset=latin-1"}, content=b"caf\xe9"
    )
    binary = Response(200, headers={"Content-Type": "image/png"}, content=b"\x89PNG\xff")
    not_json = Response(200, headers={"Content-Type": "application/json"}, content=b"{oops")
    assert HTTP.reply_json(text)["body"] == "café"
    assert HTTP.reply_json(binary)["body_base64"] == "iVBOR/8="
    assert HTTP.reply_json(not_json)["body"] == "{oops"


class Reply(BaseModel):
    text: str
    score: float


@dataclass
class Point:
    x: int
    label: bytes


def test_sdk_models_bytes_dataclasses_and_others_become_json_values() -> None:
    assert jsonable(Reply(text="hi", score=0.5)) == {"text": "hi", "score": 0.5}
    assert jsonable(b"plain") == "plain"
    assert jsonable(b"\xff\x00") == {"base64": "/wA="}
    assert jsonable(Point(1, b"p")) == {"x": 1, "label": "p"}
    assert jsonable({1: (float("nan"), {2})}) == {"1": ["nan", [2]]}
    assert jsonable(object).startswith("<class")


def test_an_error_becomes_its_type_message_status_and_reply() -> None:
    response = Response(404, headers={"Content-Type": "application/json"}, content=b'{"e": 1}')
    error = NotFoundError("GET /x -> 404 Not Found", status_code=404, response=response)
    assert error_json(error, None, HTTP.reply_json(HTTP.error_reply(error))) == {
        "type": "NotFoundError",
        "message": "GET /x -> 404 Not Found",
        "status_code": 404,
        "retryable": False,
        "response": {
            "status_code": 404,
            "headers": {"content-type": "application/json"},
            "body": {"e": 1},
        },
    }
    assert HTTP.error_reply(ValueError("bad")) is None
    assert error_json(ValueError("bad")) == {
        "type": "ValueError",
        "message": "bad",
        "retryable": False,
    }


def test_a_binary_body_in_a_json_form_is_scrubbed_before_it_is_encoded() -> None:
    secrets = Secrets(["tok-123456"])
    raw = b"\xff tok-123456 \x80"

    shown = jsonable({"data": raw}, secrets)

    assert base64.b64decode(shown["data"]["base64"]) == b"\xff [redacted] \x80"
    assert jsonable(raw)["base64"] == base64.b64encode(raw).decode()  # no secrets given
