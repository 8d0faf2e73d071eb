"""Spans follow pynector's one rule for secret names: in ``url.full`` and in header capture."""

from __future__ import annotations

import pytest

from pynector import Pynector
from pynector_otel._redact import allowed_headers

from .conftest import Server, Telemetry

PARAMS = {
    "accessToken": "qa-0d7e2c9b41",
    "auth_token": "qb-5a1f8e3c62",
    "api_token": "qc-9c4b6d0e73",
    "private_token": "qd-2e8a5f1b04",
    "secret_key": "qe-7b3d9c2a15",
    "sessionid": "qf-4f0e7b8d26",
    "jwt": "qg-eyJ0eXAiOi1",
    "client-secret": "qh-1a6c3e9f37",
}


@pytest.mark.anyio
async def test_url_full_hides_every_query_value_the_rule_flags(
    otel: Telemetry, server: Server
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/x", "params": {**PARAMS, "keyword": "kept"}})
    (span,) = otel.spans()
    url_full = str((span.attributes or {})["url.full"])
    for name in PARAMS:
        assert f"{name}=REDACTED" in url_full
    assert "keyword=kept" in url_full
    for value in PARAMS.values():
        assert value not in otel.everything()


def test_header_capture_refuses_every_name_the_rule_flags() -> None:
    allowed, refused = allowed_headers(
        ["X-Auth-Token", "Private-Token", "X-Session-Id", "Idempotency-Key", "Content-Type"]
    )
    assert allowed == {"idempotency-key", "content-type"}
    assert sorted(refused) == ["private-token", "x-auth-token", "x-session-id"]
