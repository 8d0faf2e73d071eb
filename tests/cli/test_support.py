"""What transports tell the command line: the ``pynector_cli_support`` hook and its defaults."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

import pynector
from pynector.cli import (
    BatchAPILine,
    CLISupport,
    LineError,
    RequestWords,
    UsageError,
    read_batch_api_line,
)
from pynector.cli._arguments import check_transport
from pynector.cli._support import cli_support
from pynector_http._cli import HTTPCLISupport
from pynector_sdk._cli import SDKCLISupport


def support_of(name: str) -> CLISupport:
    return check_transport(name, argparse.Namespace(option=[]))


def test_each_first_party_transport_declares_its_support_and_others_get_the_defaults() -> None:
    assert type(support_of("http")) is HTTPCLISupport
    assert type(support_of("SDK")) is SDKCLISupport
    assert type(support_of("echo")) is CLISupport  # the example third-party transport


def test_a_third_party_factory_contributes_support_with_or_without_the_marker() -> None:
    class Words(CLISupport):
        header_option = "metadata"

    class Plain:
        @staticmethod
        def pynector_cli_support(transport_type: str) -> CLISupport:
            return Words()

    class Marked:
        @staticmethod
        @pynector.hookimpl
        def pynector_cli_support(transport_type: str) -> CLISupport | None:
            return Words() if transport_type == "mine" else None

    assert cli_support("x", Plain).header_option == "metadata"
    assert cli_support("mine", Marked).header_option == "metadata"
    assert type(cli_support("other", Marked)) is CLISupport
    assert type(cli_support("f", lambda **options: None)) is CLISupport


def test_a_hook_that_returns_something_else_is_an_error_naming_the_fix() -> None:
    class Wrong:
        @staticmethod
        def pynector_cli_support(transport_type: str) -> Any:
            return "http"

    with pytest.raises(TypeError, match=r"not a pynector\.cli\.CLISupport; return an instance"):
        cli_support("wrong", Wrong)


def test_the_defaults_take_the_json_value_and_refuse_what_only_other_transports_take() -> None:
    support = CLISupport()
    assert support.request_data(RequestWords("x", body=("json", {"q": 1}))) == {"q": 1}
    with pytest.raises(UsageError, match="the x transport takes no --param"):
        support.request_data(RequestWords("x", body=("json", {}), params={"a": "1"}))
    with pytest.raises(UsageError, match="takes no URL or path"):
        support.request_data(RequestWords("x", target="/v1/embeddings", body=("json", {})))
    assert support.read_line({"id": "a", "q": 1}, {}) == ("a", {"q": 1})
    assert support.read_line({"q": 1}, {}) == (None, {"q": 1})
    assert support.reply_json(b"\xff") == {"base64": "/w=="}
    assert support.error_reply(ValueError("x")) is None


def test_an_api_path_picks_the_sdk_operation() -> None:
    sdk = SDKCLISupport()
    words = RequestWords("sdk", target="/v1/embeddings", body=("json", {"input": "x"}))
    assert sdk.request_data(words) == {"input": "x", "operation": "embeddings.create"}
    full = RequestWords("sdk", target="https://h/v1/responses/", body=("json", {}))
    assert sdk.request_data(full) == {"operation": "responses.create"}
    with pytest.raises(UsageError, match=r"'/v1/images' is not a supported API path"):
        sdk.request_data(RequestWords("sdk", target="/v1/images", body=("json", {})))
    with pytest.raises(UsageError, match="takes no method"):
        sdk.request_data(RequestWords("sdk", method="GET", body=("json", {})))


def test_the_http_words_make_an_http_request() -> None:
    http = HTTPCLISupport()
    words = RequestWords(
        "http", method=None, target="/u", body=("json", {"a": 1}), params={"p": "1"}
    )
    assert http.request_data(words) == {
        "method": "POST",
        "path": "/u",
        "params": {"p": "1"},
        "json": {"a": 1},
    }
    assert http.request_data(RequestWords("http", target="https://h/")) == {
        "method": "GET",
        "url": "https://h/",
    }
    with pytest.raises(UsageError, match="give the URL to request"):
        http.request_data(RequestWords("http"))


def test_an_sdk_status_error_shows_its_http_reply_with_secret_headers_redacted() -> None:
    import httpx2

    from pynector.errors import RateLimitError

    response = httpx2.Response(429, json={"error": "slow down"}, headers={"Set-Cookie": "s=1"})
    error = RateLimitError("429 Too Many Requests", status_code=429, response=response)
    sdk = SDKCLISupport()

    reply = sdk.error_reply(error)

    assert reply is response
    assert sdk.reply_json(reply) == {
        "status_code": 429,
        "headers": {
            "content-length": response.headers["content-length"],
            "content-type": "application/json",
            "set-cookie": "[redacted]",
        },
        "body": {"error": "slow down"},
    }
    assert sdk.error_reply(ValueError("no reply")) is None


def test_a_batch_api_line_is_read_once_for_every_transport() -> None:
    openai = {"custom_id": "a", "url": "/v1/chat/completions", "body": {"model": "m"}}
    assert read_batch_api_line(openai) == BatchAPILine(
        "a", "/v1/chat/completions", "POST", {"model": "m"}
    )
    anthropic = {"custom_id": 7, "params": {"max_tokens": 1}}
    assert read_batch_api_line(anthropic) == BatchAPILine(7, None, "POST", {"max_tokens": 1})
    with pytest.raises(LineError, match="unexpected key"):
        read_batch_api_line({**anthropic, "extra": 1})
    with pytest.raises(LineError, match="needs body"):
        read_batch_api_line({"custom_id": "a", "url": "/v1/embeddings"})
    with pytest.raises(LineError, match='"body" must be a JSON object'):
        read_batch_api_line({**openai, "body": []})
