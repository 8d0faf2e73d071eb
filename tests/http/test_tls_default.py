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


@pytest.mark.parametrize("trust_env", [True, False], ids=["trust_env", "no_trust_env"])
@pytest.mark.parametrize("cert_file", [False, True], ids=["system", "SSL_CERT_FILE"])
def test_the_default_context_trusts_exactly_what_httpx2s_would(
    trust_env: bool, cert_file: bool, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A canary: the rules are httpx2's, carried here so the aiohttp engine need not
    # import httpcore2. When httpx2 changes them, this fails.
    import httpx2

    from pynector_http._tls import default_ssl_context

    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if cert_file:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ours = default_ssl_context(trust_env)
    theirs = httpx2.create_ssl_context(verify=True, trust_env=trust_env)
    assert ours.get_ca_certs() == theirs.get_ca_certs()
    assert (ours.verify_mode, ours.check_hostname) == (theirs.verify_mode, theirs.check_hostname)
    assert (ours.options, ours.minimum_version) == (theirs.options, theirs.minimum_version)


def test_verify_false_checks_neither_certificate_nor_host_as_httpx2_does() -> None:
    import httpx2

    from pynector_http._tls import unverified_ssl_context

    ours, theirs = unverified_ssl_context(), httpx2.create_ssl_context(verify=False)
    assert (ours.verify_mode, ours.check_hostname) == (theirs.verify_mode, theirs.check_hostname)
    assert ours.options == theirs.options
