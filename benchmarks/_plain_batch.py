"""The baseline of ``bench_cli.py``: the batch job as a plain httpx2 asyncio script.

    python benchmarks/_plain_batch.py semaphore|workers IN.jsonl OUT.jsonl BASE_URL

Reads one JSON request per line, sends it with ``httpx2.AsyncClient`` (100
connections) and appends the same result line ``pynector batch`` writes, flushed
per line. ``semaphore``: one task per line behind ``asyncio.Semaphore(100)``, the
usual way to write it. ``workers``: 100 workers pulling lines from the file, the
shape ``pynector batch`` has.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx2


async def main(mode: str, source: str, target: str, base_url: str) -> None:
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx2.AsyncClient(base_url=base_url, limits=limits) as client:
        # Blocking file I/O in the event loop, as a plain script does (so does pynector).
        with (
            open(target, "a", encoding="utf-8") as out,  # noqa: ASYNC230
            open(source, encoding="utf-8") as lines,  # noqa: ASYNC230
        ):

            async def send(number: int, text: str) -> None:
                request = json.loads(text)
                request_id = request.pop("id", number)
                start = time.perf_counter()
                record: dict[str, object] = {"id": request_id, "line": number}
                try:
                    response = await client.request(request.get("method", "GET"), request["path"])
                    response.raise_for_status()
                    result = {
                        "status_code": response.status_code,
                        "headers": dict(response.headers.items()),
                        "body": response.json(),
                    }
                    record.update(ok=True, attempts=1)
                    record.update(elapsed=round(time.perf_counter() - start, 6), response=result)
                except Exception as exc:
                    record.update(ok=False, attempts=1)
                    record.update(
                        elapsed=round(time.perf_counter() - start, 6),
                        error={"type": type(exc).__name__, "message": str(exc)},
                    )
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                out.flush()

            if mode == "semaphore":
                semaphore = asyncio.Semaphore(100)

                async def one(number: int, text: str) -> None:
                    async with semaphore:
                        await send(number, text)

                await asyncio.gather(*(one(n, text) for n, text in enumerate(lines, 1)))
            else:
                numbered = enumerate(lines, 1)

                async def worker() -> None:
                    for number, text in numbered:
                        await send(number, text)

                await asyncio.gather(*(worker() for _ in range(100)))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
