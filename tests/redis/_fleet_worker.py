"""One process of a fleet: a Pynector HTTP client whose limits live in a Redis store.

``python -m tests.redis._fleet_worker CONFIG_JSON``, where the JSON holds
``base_url``, ``config`` (the client's), ``path``, ``requests``,
``concurrency`` and ``backend``. It prints ``ready`` once its client is
connected (and the store answered), waits for a line on stdin, sends its
requests, then prints one JSON line: ``{"ok": N, "failed": N, "errors": [...]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from pynector import Pynector


async def main(spec: dict[str, Any]) -> None:
    config = spec["config"]
    async with Pynector(transport_type="http", base_url=spec["base_url"], config=config) as client:
        await client.request({"path": "/__warm"})  # connect the pool and the store first
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        requests: list[tuple[Any, dict[str, Any]]] = [
            ({"path": spec["path"]}, {}) for _ in range(spec["requests"])
        ]
        results = await client.batch_request(requests, max_concurrency=spec["concurrency"])
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    print(json.dumps({"ok": len(results) - len(errors), "failed": len(errors), "errors": errors}))


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    anyio.run(main, settings, backend=settings.get("backend", "asyncio"))
