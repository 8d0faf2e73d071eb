"""``HTTPTransport.validate``: the checks of ``request`` without sending anything."""

from __future__ import annotations

import pytest

from pynector.errors import ConfigurationError
from pynector_http import HTTPTransport


@pytest.mark.parametrize("engine", ["aiohttp", "httpx2"])
def test_validate_accepts_what_request_would_send_without_a_connection(engine: str) -> None:
    transport = HTTPTransport(base_url="http://127.0.0.1:9", engine=engine)

    transport.validate({"path": "/users", "params": {"a": 1}, "json": {"name": "Ada"}})
    transport.validate({"url": "https://example.com/x"}, follow_redirects=True)


@pytest.mark.parametrize(
    ("base_url", "data", "options", "message"),
    [
        (None, {"path": "/x"}, {}, "needs a base_url"),
        ("http://h.test", {"path": "/x", "methd": "GET"}, {}, "unknown key"),
        ("http://h.test", {"path": "/x", "json": {}, "content": "x"}, {}, "send one of them"),
        ("http://h.test", {"path": "/x", "headers": {"X-A": "1\r\n"}}, {}, "X-A"),
        ("http://h.test", {"path": "/x"}, {"follow_redirect": True}, "follow_redirect"),
    ],
)
def test_validate_raises_what_request_would_raise(
    base_url: str | None, data: dict[str, object], options: dict[str, object], message: str
) -> None:
    transport = HTTPTransport(base_url=base_url)

    with pytest.raises(ConfigurationError, match=message):
        transport.validate(data, **options)
