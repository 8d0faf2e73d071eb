"""Run every benchmark in this folder; each prints its figures as ratios.

make bench                      # everything, full size
uv run python benchmarks/run.py --quick
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_ARGS = {
    "bench_adaptive.py": ["--quick"],
    "bench_cli.py": ["--quick"],
    "bench_core.py": ["--n", "100000"],
    "bench_distributed.py": ["--quick"],
    "bench_engines.py": ["--n", "500", "--rounds", "3"],
    "bench_hedge.py": ["--quick"],
    "bench_http.py": ["--n", "500", "--rounds", "3"],
    "bench_limits.py": ["--quick"],
    "bench_outage.py": ["--quick"],
    "bench_sdk.py": ["--n", "100", "--rounds", "3"],
    "bench_shared.py": ["--quick"],
    "bench_startup.py": ["--rounds", "5"],
    "bench_telemetry.py": ["--quick"],
}


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        args = QUICK_ARGS.get(script.name, []) if quick else []
        print(f"\n# {script.name}", flush=True)
        failed |= subprocess.run([sys.executable, str(script), *args], check=False).returncode
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
