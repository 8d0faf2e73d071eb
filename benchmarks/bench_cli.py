"""``pynector batch`` against a plain httpx2 script doing the same job.

A cheap keep-alive HTTP/1.1 server runs in its own process. Both sides read
the same JSONL file of GET requests, send them with at most 100 in flight, and
append one result line per request (id, line, ok, attempts, elapsed, response
with status, headers and JSON body), flushed line by line:

- ``python -m pynector batch IN -o OUT --base-url URL --concurrency 100`` with
  its defaults otherwise (3 retries, plain progress lines on a pipe);
- a plain asyncio script (``_plain_batch.py``): ``httpx2.AsyncClient`` (100
  connections), one task per line behind an ``asyncio.Semaphore(100)`` (the
  usual way to write it), ``json.dumps`` + ``write`` + ``flush`` per result;
- the same script with 100 workers pulling lines from the file instead: the
  shape ``pynector batch`` has, a stricter baseline.

Each side runs as a fresh process, with its bytecode cached as for an installed
package (a warm-up run compiles it); rounds alternate sides and the median round
counts. Wall time, CPU time (user + system) and peak RSS come from ``wait4``.
A last table runs ``pynector batch`` on two file sizes and compares the peaks:
memory must not grow with the number of lines.

    uv run python benchmarks/bench_cli.py            # 20,000 requests; 10,000 vs 100,000 lines
    uv run python benchmarks/bench_cli.py --quick    # 2,000 requests; 2,000 vs 20,000 lines
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _loopback import started

CONCURRENCY = 100
SEMAPHORE = "httpx2 script, semaphore"
WORKERS = "httpx2 script, 100 workers"
DEFAULT_SIZES = "10000,100000"
TIME_TARGET = 1.2
MEMORY_TARGET = 1.2

# -- measuring ---------------------------------------------------------------------------


def run_process(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``argv``; return (wall seconds, CPU seconds, peak RSS in MiB) of that process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed with status {process.returncode}:\n{errors}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_input(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for n in range(count):
            file.write(json.dumps({"id": f"r{n}", "path": f"/items/{n}"}) + "\n")


def check_output(path: Path, count: int) -> None:
    with open(path, "rb") as file:
        records = [json.loads(line) for line in file]
    assert len(records) == count, f"{path}: {len(records)} lines, expected {count}"
    assert all(record["ok"] for record in records), f"{path}: some requests failed"
    assert len({record["id"] for record in records}) == count, f"{path}: duplicate ids"


def pynector_argv(source: Path, target: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pynector",
        "batch",
        str(source),
        "-o",
        str(target),
        "--base-url",
        url,
        "--concurrency",
        str(CONCURRENCY),
    ]


def compare(workdir: Path, url: str, n: int, rounds: int, env: dict[str, str]) -> list[str]:
    source = workdir / "in.jsonl"
    write_input(source, n)
    script = str(Path(__file__).with_name("_plain_batch.py"))
    sides = {
        SEMAPHORE: lambda out: [sys.executable, script, "semaphore", str(source), str(out), url],
        WORKERS: lambda out: [sys.executable, script, "workers", str(source), str(out), url],
        "pynector batch": lambda out: pynector_argv(source, out, url),
    }
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
    for index in range(rounds):
        order = list(sides) if index % 2 == 0 else list(sides)[::-1]
        for name in order:
            out = workdir / f"out-{index}.jsonl"
            samples[name].append(run_process(sides[name](out), env))
            check_output(out, n)
            out.unlink()
    medians = {
        name: tuple(statistics.median(sample[i] for sample in runs) for i in range(3))
        for name, runs in samples.items()
    }
    lines = [f"{'side':<30}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}{'us CPU/req':>12}"]
    for name, (wall, cpu, peak) in medians.items():
        lines.append(f"{name:<30}{wall:>9.2f}{cpu:>9.2f}{peak:>10.1f}{cpu / n * 1e6:>12.1f}")
    ours = medians["pynector batch"]
    for baseline in (SEMAPHORE, WORKERS):
        plain = medians[baseline]
        wall_ratio, cpu_ratio = ours[0] / plain[0], ours[1] / plain[1]
        verdict = "within" if max(wall_ratio, cpu_ratio) <= TIME_TARGET else "ABOVE"
        lines.append(
            f"pynector / {baseline}: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x: {verdict} "
            f"the {TIME_TARGET:.1f}x target"
        )
    return lines


def memory(workdir: Path, url: str, sizes: list[int], env: dict[str, str]) -> list[str]:
    lines = [f"{'lines':>9}{'wall s':>9}{'peak MiB':>10}"]
    peaks = []
    for size in sizes:
        source = workdir / f"in-{size}.jsonl"
        out = workdir / f"out-{size}.jsonl"
        write_input(source, size)
        wall, _cpu, peak = run_process(pynector_argv(source, out, url), env)
        check_output(out, size)
        source.unlink()
        out.unlink()
        peaks.append(peak)
        lines.append(f"{size:>9,}{wall:>9.2f}{peak:>10.1f}")
    ratio = peaks[-1] / peaks[0]
    verdict = "within" if ratio <= MEMORY_TARGET else "ABOVE"
    lines.append(
        f"peak memory, {sizes[-1]:,} / {sizes[0]:,} lines: {ratio:.2f}x: {verdict} the "
        f"{MEMORY_TARGET:.1f}x target"
    )
    return lines


def environment(workdir: Path) -> dict[str, str]:
    """The environment of every measured process.

    No installed plugin (telemetry) on either side: the figures are the CLI's
    own. Bytecode is cached (in ``workdir``, not next to the sources) as it is
    for an installed package, even where ``PYTHONDONTWRITEBYTECODE`` is set: both
    sides start as they would for a user.
    """
    env = {**os.environ, "PYNECTOR_PLUGINS": "", "PYTHONPYCACHEPREFIX": str(workdir / "pyc")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="requests per run (20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side (median wins)")
    parser.add_argument(
        "--memory",
        default=DEFAULT_SIZES,
        help="line counts for the memory table (default 10000,100000)",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 requests; 2,000 vs 20,000")
    args = parser.parse_args()
    if args.quick:
        args.n = 2_000
        if args.memory == DEFAULT_SIZES:
            args.memory = "2000,20000"
    sizes = [int(size) for size in args.memory.split(",")]
    with started() as url, tempfile.TemporaryDirectory(prefix="bench-cli-") as directory:
        workdir = Path(directory)
        env = environment(workdir)
        compare(workdir, url, 20, 1, env)  # warm-up: compiles the bytecode of both sides
        timing = compare(workdir, url, args.n, args.rounds, env)
        peaks = memory(workdir, url, sizes, env)
    import httpx2

    print(
        f"## Command line: pynector batch vs a plain httpx2 script, {args.n:,} requests, "
        f"concurrency {CONCURRENCY}, {args.rounds} runs per side (median); httpx2 "
        f"{httpx2.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    print("\n".join(timing))
    print("\n## Command line: peak memory of pynector batch by input size")
    print("\n".join(peaks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
