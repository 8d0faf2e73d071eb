"""``verify=True``: the CAs both engines trust, built without importing httpcore2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynector.errors import ConnectionError
from pynector_http import HTTPTransport

from ._control import ControlServer

pytestmark = pytest.mark.anyio


async def test_ssl_cert_file_names_the_trusted_cas_when_trust_env(
    tls_control: ControlServer, ca_file: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    async with HTTPTransport(engine=engine, base_url=tls_control.url) as transport:
        response = await transport.request({"path": "/echo"})
    assert response.status_code == 200


async def test_ssl_cert_file_is_ignored_without_trust_env(
    tls_control: ControlServer, ca_file: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    async with HTTPTransport(engine=engine, base_url=tls_control.url, trust_env=False) as transport:
        with pytest.raises(ConnectionError) as caught:
            await transport.request({"path": "/echo"})
    assert "TLS handshake failed" in str(caught.value)
