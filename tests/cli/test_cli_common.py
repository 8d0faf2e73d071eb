"""The JSON form of replies and errors, and keeping command-line secrets out of output."""

from __future__ import annotations

import argparse
import base64
import json
import re
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import pytest
from pydantic import BaseModel

from pynector.cli._arguments import (
    Secrets,
    UsageError,
    add_transport_arguments,
    cli_message,
    error_json,
    jsonable,
    request_secrets,
    transport_options,
)
from pynector.errors import NotFoundError
from pynector.redact import scrub_bytes
from pynector_http import Response


def test_an_http_response_becomes_status_headers_and_parsed_json_body() -> None:
    response = Response(
        200,
        headers=[("Content-Type", "application/json"), ("Set-Cookie", "session=abc")],
        content=b'{"a": [1, 2]}',
    )
    assert jsonable(response) == {
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
    assert jsonable(text)["body"] == "café"
    assert jsonable(binary)["body_base64"] == "iVBOR/8="
    assert jsonable(not_json)["body"] == "{oops"


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
    assert error_json(error) == {
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
    assert error_json(ValueError("bad")) == {
        "type": "ValueError",
        "message": "bad",
        "retryable": False,
    }


def options(*argv: str) -> tuple[str, dict[str, object], Secrets]:
    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    return transport_options(parser.parse_args(list(argv)))


def test_command_line_options_become_transport_options_and_secrets() -> None:
    name, given, secrets = options(
        "--transport",
        "HTTP",
        "--base-url",
        "https://user:pa55word@api.example.com",
        "-H",
        "Authorization: Bearer tok-123456",
        "-H",
        "Accept: text/plain",
        "--option",
        "follow_redirects=true",
        "--option",
        "engine=httpx2",
    )
    assert name == "http"
    assert given == {
        "follow_redirects": True,
        "engine": "httpx2",
        "base_url": "https://user:pa55word@api.example.com",
        "headers": {"Authorization": "Bearer tok-123456", "Accept": "text/plain"},
    }
    text = "sent Bearer tok-123456 to https://user:pa55word@host; plain: text/plain"
    assert secrets.scrub(text) == "sent [redacted] to https://[redacted]@host; plain: text/plain"


def test_sdk_headers_go_to_default_headers_and_the_api_key_is_a_secret() -> None:
    _name, given, secrets = options(
        "--transport", "sdk", "--provider", "openai", "--api-key", "sk-abcdef", "-H", "X-A: 1"
    )
    assert given == {"provider": "openai", "api_key": "sk-abcdef", "default_headers": {"X-A": "1"}}
    assert secrets.scrub("key=sk-abcdef") == "key=[redacted]"


def test_secret_looking_option_values_are_secrets_too() -> None:
    _, _, secrets = options("--option", "auth_token=abcd-1234", "--option", "timeout=5")
    assert secrets.scrub("abcd-1234 5") == "[redacted] 5"


def test_scrubbing_json_never_breaks_it_even_for_a_secret_that_looks_like_a_number() -> None:
    secrets = Secrets(["1234", 'quo"te-secret'])
    text = secrets.dumps({"elapsed": 0.1234, "echo": "id 1234", "q": 'a quo"te-secret'})
    assert json.loads(text) == {"elapsed": 0.1234, "echo": "id [redacted]", "q": "a [redacted]"}
    assert Secrets(["abc"]).scrub("abc") == "abc"  # too short to hide without mangling text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-H", "Bad Header: 1"], "is not a header"),
        (["--option", "9x=1"], "is not KEY=VALUE"),
    ],
)
def test_malformed_headers_and_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options(*argv)


def lower_hex(encoded: str) -> str:
    """Percent-encoding with lower-case hex digits, as some servers write it."""
    return re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), encoded)


def test_a_secret_is_found_percent_encoded_escaped_in_json_and_in_base64() -> None:
    secret = 'a/b c+d="é"'
    secrets = Secrets([secret])
    shown = [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        lower_hex(quote(secret, safe="")),
        "%61" + quote(secret)[1:],  # even a letter that needs no encoding
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=True)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    ]

    for form in shown:
        assert secrets.scrub(f"<{form}>") == "<[redacted]>", form
        assert secrets.found_in(form)
    assert not secrets.found_in("a/b c")


def test_the_secrets_of_a_request_include_query_values_under_any_credential_name() -> None:
    found = request_secrets(
        {
            "url": "https://h.test/x?auth_token=abc%2Fdef&page=10",
            "params": {"accessToken": "tok-aaaa", "client-secret": "sec-bbbb", "limit": "1000"},
        }
    )
    assert {"abc/def", "abc%2Fdef", "tok-aaaa", "sec-bbbb"} <= set(found)
    assert "10" not in found
    assert "1000" not in found


def test_scrub_bytes_finds_secrets_in_a_body_that_is_not_text() -> None:
    secret = "tok-SE CRET/é"
    body = b"\xff".join(
        [
            b"",
            secret.encode(),
            quote_plus(secret).encode(),
            lower_hex(quote(secret)).encode(),
            base64.b64encode(secret.encode()),
            base64.urlsafe_b64encode(secret.encode()).rstrip(b"="),
            secret.encode("latin-1"),
            b"tok-",
        ]
    )

    assert scrub_bytes(body, [secret, "abc"]) == b"\xff".join([b"", *[b"[redacted]"] * 6, b"tok-"])
    assert scrub_bytes(body, [secret], mask="*").count(b"*") == 6
    assert scrub_bytes(b"\xff", []) == b"\xff"


def test_a_binary_body_in_a_json_form_is_scrubbed_before_it_is_encoded() -> None:
    secrets = Secrets(["tok-123456"])
    raw = b"\xff tok-123456 \x80"

    shown = jsonable({"data": raw}, secrets)

    assert base64.b64decode(shown["data"]["base64"]) == b"\xff [redacted] \x80"
    assert jsonable(raw)["base64"] == base64.b64encode(raw).decode()  # no secrets given


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("base_url='x' must be a URL, e.g. base_url='https://h'", "--base-url 'x' must be a URL"),
        ("config['timeout']=0 is invalid", "--timeout 0 is invalid"),
        ("config['max_connections']=0 is invalid", "--concurrency 0 is invalid"),
        ("Unknown transport_type 'htp'.", "Unknown --transport 'htp'."),
        ("transport 'http' rejected its options ['api_key']", "rejected its options [--api-key]"),
        ("follow_redirects=5 is invalid", "--option follow_redirects=5 is invalid"),
        ("'path' '/x' needs a base_url", "'path' '/x' needs a --base-url"),
        ("check 'headers' and 'url'", "check 'headers' and 'url'"),  # the request's own keys
        (
            "timed out after 0.5 s; pass a larger timeout=... or set config={'timeout': ...}",
            "timed out after 0.5 s; pass a larger --timeout ...",
        ),
        (
            "unknown option 'follow_redirect'. Did you mean 'follow_redirects'? Its options: "
            "base_url, follow_redirects, headers, timeout.",
            "unknown option 'follow_redirect'. Did you mean --option follow_redirects? Its "
            "options: --base-url, --option follow_redirects, --header, --option timeout.",
        ),
    ],
)
def test_client_messages_are_put_in_the_words_of_the_command_line(message: str, shown: str) -> None:
    args = argparse.Namespace(option=["follow_redirects=5"])
    shown_by_the_cli = cli_message(message, args)
    assert shown in shown_by_the_cli
    assert "config" not in shown_by_the_cli


def test_a_message_about_a_request_keeps_the_names_of_its_keys() -> None:
    message = "unknown key(s) 'timeout'; 'path' '/x' needs a base_url"

    shown = cli_message(message, argparse.Namespace(option=[]), about_request=True)

    assert shown == "unknown key(s) 'timeout'; 'path' '/x' needs a --base-url"
