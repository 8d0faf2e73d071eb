"""No credential reaches a span attribute, an event or a log record."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pynector import Pynector
from pynector.errors import ServerError

from .conftest import Server, Telemetry

SECRETS = {
    "url user": "alice-user-7731",
    "url password": "pw-in-url-0412",
    "api key header": "sk-header-secret-5521",
    "cookie": "cookie-secret-8871",
    "bearer": "bearer-token-6634",
    "query api_key": "query-key-1190",
    "query token": "query-token-2207",
}


@pytest.mark.anyio
async def test_no_secret_reaches_exported_spans_events_or_logs(
    configured: Telemetry, server: Server
) -> None:
    otel = configured
    otel.plugin.configure(
        request_headers=["authorization", "x-api-key", "cookie", "content-type", "x-note"],
        response_headers=["set-cookie", "content-type"],
    )
    host = server.url.removeprefix("http://")
    base_url = f"http://{SECRETS['url user']}:{SECRETS['url password']}@{host}"
    async with Pynector(
        transport_type="http",
        base_url=base_url,
        headers={"X-API-Key": SECRETS["api key header"], "Cookie": f"sid={SECRETS['cookie']}"},
    ) as client:
        with pytest.raises(ServerError):
            await client.request_with_retry(
                {"path": "/status/503", "params": {"api_key": SECRETS["query api_key"]}},
                max_retries=1,
                retry_delay=0.001,
            )
        requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (
                {
                    "path": f"/items/{n}",
                    "params": {"token": SECRETS["query token"]},
                    "headers": {"Authorization": f"Bearer {SECRETS['bearer']}", "X-Note": "n"},
                },
                {},
            )
            for n in range(2)
        ]
        await client.batch_request(requests)
        async with client.stream({"path": "/stream", "params": {"token": SECRETS["query token"]}}):
            pass
    # The secrets were really sent ...
    sent = repr(server.received)
    assert SECRETS["api key header"] in sent
    assert SECRETS["bearer"] in sent
    basic = base64.b64encode(f"{SECRETS['url user']}:{SECRETS['url password']}".encode())
    assert basic.decode() in sent
    # ... and none of them was exported, while the telemetry itself was.
    exported = otel.everything()
    assert len(otel.spans()) == 7  # retry + 2 attempts, batch + 2 requests, stream
    assert len(otel.logs()) >= 6
    assert "http.request.header.x-note" in exported
    for name, secret in {**SECRETS, "basic": basic.decode()}.items():
        assert secret not in exported, name
