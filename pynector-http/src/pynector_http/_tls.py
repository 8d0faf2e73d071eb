"""The SSL contexts a transport builds for ``verify=True`` and ``verify=False``.

Both engines share the one context a transport builds, so they trust the same
CAs. ``verify=True`` follows httpx2's rules (``httpx2.create_ssl_context``):
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when ``trust_env``, the operating system's
store through truststore on Windows and macOS, else OpenSSL's compiled-in paths
or the usual Linux bundle files. Built here rather than by httpx2 because
httpx2's builder imports httpcore2 (and with it trio and h2), a fifth of a
second that an aiohttp-engine client on asyncio never needs otherwise.
"""

from __future__ import annotations

import os
import re
import ssl
import sys

__all__ = ["default_ssl_context", "unverified_ssl_context"]

# Where Linux distributions keep their CA bundle, for when OpenSSL's compiled-in
# paths are unusable (the same list as httpcore2 and truststore).
_CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)


def default_ssl_context(trust_env: bool) -> ssl.SSLContext:
    """A context that verifies certificates against the system's trusted CAs.

    Args:
        trust_env: Whether ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name the CAs.
    """
    if trust_env and (cafile := os.environ.get("SSL_CERT_FILE")):
        return ssl.create_default_context(cafile=cafile)
    if trust_env and (capath := os.environ.get("SSL_CERT_DIR")):
        return ssl.create_default_context(capath=capath)
    if sys.platform in ("win32", "darwin"):  # pragma: no cover - the OS's own store
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The compiled-in paths: set_default_verify_paths() would read SSL_CERT_* too.
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    if capath and not cafile and not _has_hashed_certificates(capath):
        capath = None  # pragma: no cover - a directory of no certificates
    if not cafile and not capath:  # pragma: no cover - depends on the distribution
        cafile = next(filter(os.path.isfile, _CA_FILE_CANDIDATES), None)
    if cafile or capath:
        context.load_verify_locations(cafile, capath)
    return context


def _has_hashed_certificates(directory: str) -> bool:  # pragma: no cover - see above
    return any(re.fullmatch(r"[0-9a-fA-F]{8}\.\d", name) for name in os.listdir(directory))


def unverified_ssl_context() -> ssl.SSLContext:
    """A context that checks neither the certificate nor the host name (``verify=False``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
