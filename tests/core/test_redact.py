"""The one rule for secret names, and scrubbing secrets in every form they travel in."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from pynector.redact import (
    REDACTED,
    SECRET_QUERY_PARAMS,
    SENSITIVE_HEADERS,
    Scrubber,
    is_secret_header,
    is_secret_name,
    redact_url,
    scrub,
    scrub_bytes,
    secret_values,
    url_secrets,
    value_secrets,
)

SECRET_NAMES = [
    # Headers people send credentials in.
    "Authorization",
    "Proxy-Authorization",
    "X-Auth-Token",
    "Private-Token",
    "X-Api-Token",
    "X-Session-Id",
    "X-Api-Key",
    "x-goog-api-key",
    "Ocp-Apim-Subscription-Key",
    "X-Amz-Security-Token",
    "X-CSRF-Token",
    "Cookie",
    "Set-Cookie",
    # Query parameters, in every spelling.
    "accessToken",
    "access_token",
    "client-secret",
    "clientSecret",
    "secret_key",
    "private_token",
    "auth_token",
    "api_token",
    "apiKey",
    "APIKey",
    "XAPIKEY",
    "AWSAccessKeyId",
    "sessionid",
    "session_id",
    "jwt",
    "key",
    "sig",
    "code",
    "password",
    "passwd",
    "pwd",
    "PrivateKey",
    "oauth_token",
]

PLAIN_NAMES = [
    "keyword",
    "monkey",
    "hockey",
    "keys",
    "author",
    "authority",
    "max_tokens",
    "x-ratelimit-remaining-tokens",
    "tokenizer",
    "Idempotency-Key",
    "public_key",
    "api-version",
    "Content-Type",
    "Keep-Alive",
    "Accept",
    "User-Agent",
    "Host",
    "X-Request-Id",
    "traceparent",
    "page",
    "next",
    "country_code",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_names_that_carry_credentials_are_secret_as_headers_and_parameters(name: str) -> None:
    for spelling in (name, name.lower(), name.upper(), name.replace("-", "_")):
        assert is_secret_name(spelling), spelling
    assert is_secret_header(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_words_that_only_look_like_secrets_are_not(name: str) -> None:
    assert not is_secret_name(name)
    assert not is_secret_header(name)


def test_the_exact_lists_stay_part_of_the_rule() -> None:
    for name in SENSITIVE_HEADERS | SECRET_QUERY_PARAMS:
        assert is_secret_name(name), name


def test_redact_url_hides_every_secret_parameter_the_rule_flags() -> None:
    url = (
        "https://h.test/p?accessToken=a1&auth_token=a2&api_token=a3&private_token=a4"
        "&secret_key=a5&sessionid=a6&jwt=a7&client-secret=a8&keyword=kept&page=2"
    )
    shown = redact_url(url)
    for value in ("a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"):
        assert f"={value}" not in shown
    assert "keyword=kept" in shown
    assert "page=2" in shown
    assert redact_url("https://h.test/p?access%5Ftoken=x1") == (
        "https://h.test/p?access%5Ftoken=[redacted]"
    )


def test_scrub_catches_percent_encoded_and_base64_forms() -> None:
    secret = "p@ss/w rd+9"
    text = " | ".join(
        [
            secret,
            quote(secret, safe=""),
            quote(secret),
            quote_plus(secret),
            base64.b64encode(secret.encode()).decode(),
            base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        ]
    )
    assert scrub(text, [secret]) == " | ".join(["[redacted]"] * 6)


def test_basic_credentials_give_the_pair_and_the_password_they_encode() -> None:
    token = base64.b64encode(b"alice:pw-Secret-42").decode()
    found = secret_values([("Authorization", f"Basic {token}")])
    assert {"alice:pw-Secret-42", "pw-Secret-42", token} <= found
    echoed = f"denied alice:pw-Secret-42 (pw-Secret-42, {quote('pw-Secret-42')}, {token})"
    assert "Secret-42" not in scrub(echoed, found)
    assert "alice" not in scrub(echoed, found)


def test_short_values_are_not_scrubbed_in_any_form() -> None:
    assert scrub("abc YWJj", ["abc"]) == "abc YWJj"


def test_one_scrubber_serves_text_and_bytes_in_every_encoding() -> None:
    secret = 'p@ss "w/rd"'
    scrubber = Scrubber([secret, "abc"])  # "abc" is too short to hide
    assert scrubber.values == (secret,)
    partly_encoded = "p%40ss %22w/rd%22"  # only some characters percent-encoded
    json_escaped = 'p@ss \\"w/rd\\"'
    for text in (partly_encoded, json_escaped, base64.b64encode(secret.encode()).decode()):
        assert scrubber.found_in(f"x {text} y")
        assert scrubber.scrub(f"x {text} y") == f"x {REDACTED} y"
    assert scrubber.scrub_bytes(b"\xff" + secret.encode() + b"\xfe") == (
        b"\xff" + REDACTED.encode() + b"\xfe"
    )
    assert scrub(partly_encoded, [secret]) == REDACTED
    assert scrub_bytes(partly_encoded.encode(), [secret]) == REDACTED.encode()
    assert not Scrubber(["abc"])


def test_url_secrets_are_the_user_info_in_every_form_and_secret_query_values() -> None:
    found = url_secrets("https://us%40er:p%2Fss@h.test/x?api_key=k%2B1&page=2&token=")
    assert {"us%40er:p%2Fss", "us@er:p/ss", "p%2Fss", "p/ss", "k%2B1", "k+1"} <= found
    assert base64.b64encode(b"us@er:p/ss").decode() in found  # as Basic auth sends it
    assert "2" not in found
    assert url_secrets("https://ghp_token123@github.test/") >= {"ghp_token123"}
    assert url_secrets("a=1&access_token=tok-9") == {"tok-9"}  # a bare query string
    assert url_secrets("https://h.test/plain") == set()


def test_value_secrets_search_requests_and_options_to_any_depth() -> None:
    request = {
        "url": "https://h.test/?sig=s1g-abc",
        "headers": {"Authorization": "Bearer tok-123", "Accept": "text/plain"},
        "params": [("client_secret", "sec-1"), ("q", "x")],
        "nested": {"api_key": ["k-1", "k-2"], "pin": 1234, "password": 5678},
    }
    found = value_secrets(request)
    assert {"s1g-abc", "Bearer tok-123", "tok-123", "sec-1", "k-1", "k-2", "5678"} <= found
    assert not {"text/plain", "x", "1234"} & found
    assert value_secrets("abcd-1234", "auth_token") == {"abcd-1234"}
