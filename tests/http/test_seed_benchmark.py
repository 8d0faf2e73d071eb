# mypy: disable-error-code="var-annotated,no-untyped-call"
"""The seed's "finding optimal concurrency" snippet, run as written (it calls asyncio.run)."""

from __future__ import annotations

import pytest

from ._control import ControlServer


def test_seed_finding_optimal_concurrency(
    control: ControlServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import time

    from pynector import Pynector

    async def benchmark_concurrency():  # type: ignore[no-untyped-def]
        client = Pynector(transport_type="http", base_url=control.url)

        # Create a batch of 100 requests
        requests = [({"path": "/test", "method": "GET"}, {}) for _ in range(100)]

        # Test different concurrency limits
        concurrency_limits = [1, 5, 10, 20, 50, 100]
        results = []

        for limit in concurrency_limits:
            start_time = time.time()
            await client.batch_request(requests, max_concurrency=limit)
            duration = time.time() - start_time
            results.append((limit, duration))
            print(f"Concurrency {limit}: {duration:.2f} seconds")

        await client.aclose()
        return results

    results = asyncio.run(benchmark_concurrency())
    assert [limit for limit, _ in results] == [1, 5, 10, 20, 50, 100]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"Concurrency {n}" for n in (1, 5, 10, 20, 50, 100)
    ]
