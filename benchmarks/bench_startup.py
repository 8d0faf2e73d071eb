"""Start-up of ``pynector request URL`` against ``python -c "import aiohttp"``.

One GET to a loopback server (``_loopback.py``, in its own process) from a fresh
``python -m pynector request http://127.0.0.1:PORT/`` on asyncio with the
default engine choice (aiohttp when installed), against the cost of only
importing aiohttp (the engine it sends with) and of an empty interpreter, all
measured in the same run. Each command runs as a fresh process, with its
bytecode cached as for an installed package (a warm-up round compiles it);
rounds alternate the order and the median counts.

Two ``pynector request`` rows: with the plugins installed here (telemetry) and
with ``PYNECTOR_PLUGINS=""``. A last line lists the heavy modules the command
imported (none of httpx2, httpcore2, trio, rich, pydantic, openai on this path).

    uv run python benchmarks/bench_startup.py              # 11 rounds
    uv run python benchmarks/bench_startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _loopback import started

TARGET_SECONDS = 0.5
HEAVY = ("httpx2", "httpcore2", "trio", "h2", "rich", "pydantic", "openai", "opentelemetry")
BASELINE = 'python -c "import aiohttp"'
REQUEST = "pynector request URL"
NO_PLUGINS = "pynector request URL, no plugins"

# The command run in-process, then the heavy modules it left in sys.modules.
_MODULES = """
import sys
from pynector.cli import main
status = main(["request", sys.argv[1]])
heavy = [name for name in sys.argv[2].split(",") if name in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
raise SystemExit(status)
"""


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` to completion; return its wall time and CPU time (user + system)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed with status {status}:\n{errors}")
    return wall, usage.ru_utime + usage.ru_stime


def sides(url: str, env: dict[str, str]) -> dict[str, Callable[[], tuple[float, float]]]:
    python = sys.executable
    request = [python, "-m", "pynector", "request", f"{url}/"]
    quiet = {**env, "PYNECTOR_PLUGINS": ""}
    return {
        "python -c pass": lambda: run_once([python, "-c", "pass"], env),
        BASELINE: lambda: run_once([python, "-c", "import aiohttp"], env),
        REQUEST: lambda: run_once(request, env),
        NO_PLUGINS: lambda: run_once(request, quiet),
    }


def heavy_modules(url: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES, f"{url}/", ",".join(HEAVY)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY="))
    return line.removeprefix("HEAVY=") or "none"


def environment(workdir: Path) -> dict[str, str]:
    """Bytecode cached in ``workdir`` (even where ``PYTHONDONTWRITEBYTECODE`` is set)."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(workdir / "pyc")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="runs per command (median)")
    args = parser.parse_args()
    with started() as url, tempfile.TemporaryDirectory(prefix="bench-startup-") as directory:
        env = environment(Path(directory))
        commands = sides(url, env)
        for measure in commands.values():  # warm-up: compiles the bytecode
            measure()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for index in range(args.rounds):
            order = list(commands) if index % 2 == 0 else list(commands)[::-1]
            for name in order:
                samples[name].append(commands[name]())
        heavy = heavy_modules(url, env)
    medians = {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }
    baseline, baseline_cpu = medians[BASELINE]
    import aiohttp

    print(
        f"## Command line: start-up of pynector request, median of {args.rounds} fresh "
        f"processes; aiohttp {aiohttp.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'command':<36}{'wall ms':>9}{'/ aiohttp':>11}{'CPU ms':>9}{'/ aiohttp':>11}")
    for name, (wall, cpu) in medians.items():
        print(
            f"{name:<36}{wall * 1000:>9.0f}{wall / baseline:>10.2f}x"
            f"{cpu * 1000:>9.0f}{cpu / baseline_cpu:>10.2f}x"
        )
    ours, ours_cpu = medians[REQUEST]
    verdict = "within" if ours <= TARGET_SECONDS else "ABOVE"
    print(
        f"pynector request: {ours:.2f} s wall ({ours / baseline:.2f}x import aiohttp, "
        f"{(ours - baseline) * 1000:.0f} ms more), CPU {ours_cpu / baseline_cpu:.2f}x: "
        f"{verdict} the {TARGET_SECONDS} s target"
    )
    print(f"heavy modules imported by pynector request: {heavy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
