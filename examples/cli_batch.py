"""``pynector batch``: a JSONL file of requests through the command line, resumable.

    uv run python examples/cli_batch.py

Writes ``requests.jsonl`` (50 items and one path that does not exist) into a
temporary folder, runs ``pynector batch`` on it against the embedded demo
server with a concurrency limit, a rate limit and retries, then runs the same
command again: the second run finds every id done and sends nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pynector.cli._demo_server import DemoServer


def pynector_batch(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``pynector`` command (as ``python -m pynector``) and echo what it prints."""
    command = [sys.executable, "-m", "pynector", "batch", *args]
    print("$ pynector batch", " ".join(args[:3]), "...")
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    print(result.stdout.rstrip())
    print(f"(exit status {result.returncode})")
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, DemoServer() as server:
        requests, results = Path(folder, "requests.jsonl"), Path(folder, "results.jsonl")
        lines = [{"id": f"item-{n}", "path": f"/items/{n}"} for n in range(1, 51)]
        lines.append({"id": "missing", "path": "/no-such-path"})
        requests.write_text("".join(json.dumps(line) + "\n" for line in lines))

        options = ["--base-url", server.url, "--concurrency", "10", "--rate", "200/s"]
        options += ["--retries", "2", "--retry-delay", "0.1", "--progress", "none"]
        pynector_batch(str(requests), "-o", str(results), *options)

        written = [json.loads(line) for line in results.read_text().splitlines()]
        ok = sum(line["ok"] for line in written)
        retried = sum(line["attempts"] > 1 for line in written)
        print(
            f"{len(written)} result lines: {ok} ok, {len(written) - ok} failed, {retried} retried"
        )
        failed = next(line for line in written if not line["ok"])
        print(
            f"failed: {failed['id']} -> {failed['error']['type']} {failed['error']['status_code']}"
        )

        print()
        print("The same command again resumes: every id is done, nothing is sent.")
        pynector_batch(str(requests), "-o", str(results), *options)
        print(f"{len(results.read_text().splitlines())} result lines, no duplicates")


if __name__ == "__main__":
    main()
