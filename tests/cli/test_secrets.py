"""Keeping command-line secrets out of output: every encoding, JSON kept valid."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

from pynector.cli._secrets import Secrets, request_secrets
from pynector.redact import scrub_bytes


def test_scrubbing_json_never_breaks_it_even_for_a_secret_that_looks_like_a_number() -> None:
    secrets = Secrets(["1234", 'quo"te-secret'])
    text = secrets.dumps({"elapsed": 0.1234, "echo": "id 1234", "q": 'a quo"te-secret'})
    assert json.loads(text) == {"elapsed": 0.1234, "echo": "id [redacted]", "q": "a [redacted]"}
    assert Secrets(["abc"]).scrub("abc") == "abc"  # too short to hide without mangling text


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
