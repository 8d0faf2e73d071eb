"""The shared arguments: transport options, their secrets, errors in the command line's words."""

from __future__ import annotations

import argparse

import pytest

from pynector.cli._arguments import (
    add_transport_arguments,
    check_transport,
    cli_message,
    transport_options,
)
from pynector.cli._errors import UsageError
from pynector.cli._secrets import Secrets


def options(*argv: str) -> tuple[str, dict[str, object], Secrets]:
    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    args = parser.parse_args(list(argv))
    support = check_transport(args.transport, args)
    return transport_options(args, support.header_option)


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
