"""pynector-http: the HTTP transport for pynector, on aiohttp (asyncio) or httpx2.

Installed, it registers ``transport_type="http"``::

    from pynector import Pynector

    async with Pynector(transport_type="http", base_url="https://api.example.com") as client:
        response = await client.request({"path": "/users", "method": "GET"})
        users = response.json()

Replies are :class:`Response` objects with httpx's attribute names; statuses
outside 2xx raise :class:`pynector.errors.HTTPStatusError` subclasses that carry
the response. See ``docs/http.md`` for every option and rule.
"""

from pynector.concurrency import MAX_RETRY_AFTER as MAX_RETRY_AFTER
from pynector.concurrency import parse_retry_after as parse_retry_after
from pynector.redact import SENSITIVE_HEADERS as SENSITIVE_HEADERS

from ._headers import Headers as Headers
from ._request import IDEMPOTENT_METHODS as IDEMPOTENT_METHODS
from ._request import HTTPRequest as HTTPRequest
from ._response import Request as Request
from ._response import Response as Response
from ._response import ResponseStream as ResponseStream
from ._transport import HTTPTransport as HTTPTransport
from ._version import __version__ as __version__

__all__ = [
    "IDEMPOTENT_METHODS",
    "MAX_RETRY_AFTER",
    "SENSITIVE_HEADERS",
    "HTTPRequest",
    "HTTPTransport",
    "Headers",
    "Request",
    "Response",
    "ResponseStream",
    "__version__",
    "parse_retry_after",
]
