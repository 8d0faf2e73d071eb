"""pynector-sdk: the OpenAI and Anthropic SDK transport for pynector.

Installed, it registers ``transport_type="sdk"``::

    from pynector import Pynector

    async with Pynector(transport_type="sdk", provider="openai", api_key="sk-...") as client:
        completion = await client.request(
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        )
        print(completion.choices[0].message.content)

The request dict holds the SDK call's keyword arguments, plus an optional
``"operation"`` (``"embeddings.create"``, ``"messages.count_tokens"``, ...).
Importing this package imports neither SDK; a transport imports only its
provider's. See ``docs/sdk.md``.
"""

from ._providers import SUPPORTED_PROVIDERS as SUPPORTED_PROVIDERS
from ._stream import EventStream as EventStream
from ._transport import SDKRequest as SDKRequest
from ._transport import SDKTransport as SDKTransport
from ._version import __version__ as __version__

__all__ = ["SUPPORTED_PROVIDERS", "EventStream", "SDKRequest", "SDKTransport", "__version__"]
