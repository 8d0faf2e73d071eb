"""One request, with a deadline, against a server on 127.0.0.1.

    uv run python examples/request.py [--backend trio]

The server is pynector's embedded demo server, so nothing leaves the machine:
point ``base_url`` at your API instead.
"""

from __future__ import annotations

import argparse

import anyio

from pynector import Pynector, TimeoutError
from pynector.cli._demo_server import DemoServer


async def main(base_url: str) -> None:
    async with Pynector(transport_type="http", base_url=base_url) as client:
        response = await client.request({"path": "/users", "params": {"limit": 3}}, timeout=5.0)
        print(f"GET /users -> {response.status_code}")
        for user in response.json():
            print(f"  user {user['id']}: {user['name']}")

        try:
            await client.request({"path": "/slow", "params": {"seconds": 5}}, timeout=0.5)
        except TimeoutError as error:
            print(f"GET /slow -> TimeoutError after 0.5 s: {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    with DemoServer() as server:
        anyio.run(main, server.url, backend=args.backend)
