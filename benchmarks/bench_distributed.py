"""One batch job worked by several ``pynector batch --job`` workers: its cost and its scaling.

A real ``redis-server`` (started here, on a free port) holds the job; the
loopback servers run in processes of their own.

Coordination cost: the same JSONL file of GET requests, against a fast
keep-alive server with no rate limit, run (a) by one ``pynector batch``
process on its own (the baseline) and (b) by 4 workers on one job
(``--store redis://... --job NAME``), all started together. Reported: the
client CPU (user + system of the worker processes, from ``wait4``; Redis's
own CPU is not counted) per request, and the ratio job / single (target <=
1.3). Each process also pays the interpreter's start-up, the same for any
command: the ratio is taken on the CPU per request once that fixed cost is
taken off (the same command on 1 request: 1 process, 4 processes, 4 workers
on a 1-request job; measured in every round, the lowest counts, as for the
full runs), and the raw figures are shown too. A third row runs 4 processes
on a quarter of the file each, with no store and no job: what 4 processes on
this machine cost by themselves, without any coordination.

Scaling: the server answers every request after 50 ms; each worker has
``--concurrency 10``, so a worker, not the CPU, is the bound (about 200
requests a second each). Reported: the job's throughput with 2 workers and
with 1, and the ratio (target >= 1.6), twice: over the run (requests / the
longest ``wall time`` a worker's summary reports: the work, from joining the
job to leaving it) and end to end (requests / the time from the first start
to the last exit, the interpreter's start-up included, which on a busy
2-core machine is a second or more per process started at once).

    uv run python benchmarks/bench_distributed.py            # about 60 s
    uv run python benchmarks/bench_distributed.py --quick    # about 25 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _loopback import Reply, serve, started, table

ROOT = Path(__file__).resolve().parents[1]
COST_TARGET = 1.3
SCALE_TARGET = 1.6
WORKERS = 4
LATENCY = 0.05


class SlowReply(Reply):
    """Answers each request head after ``LATENCY`` seconds, in order; keeps connections open."""

    def answer(self, replies: int) -> None:
        asyncio.get_running_loop().call_later(LATENCY, super().answer, replies)


def write_input(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for n in range(count):
            file.write(json.dumps({"id": f"r{n}", "path": f"/items/{n}"}) + "\n")


def batch_argv(source: Path, target: Path, url: str, concurrency: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pynector", "batch", str(source), "-o", str(target),
        "--base-url", url, "--concurrency", str(concurrency), "--progress", "none", *extra,
    ]  # fmt: skip


def run_all(argvs: list[list[str]]) -> tuple[float, float, float]:
    """Start every command at once.

    Returns:
        Wall seconds until the last exits, the longest run a summary reports
        (its ``wall time``: the work, without the interpreter's start-up), and
        the total CPU seconds.
    """
    start = time.perf_counter()
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for argv in argvs
    ]
    cpu = 0.0
    longest = 0.0
    failures = []
    for process in processes:
        assert process.stdout is not None
        output = process.stdout.read().decode()  # the summary is short: no pipe fills up
        process.stdout.close()
        _pid, status, usage = os.wait4(process.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            failures.append(output)
        for line in output.splitlines():
            if line.strip().startswith("wall time"):
                longest = max(longest, float(line.split()[-2]))
    if failures:
        raise SystemExit("a worker failed:\n" + "\n".join(failures))
    return time.perf_counter() - start, longest, cpu


def check(outputs: list[Path], count: int) -> None:
    ids = []
    for path in outputs:
        with open(path, "rb") as file:
            records = [json.loads(line) for line in file]
        assert all(record["ok"] for record in records), f"{path}: some requests failed"
        ids += [record["id"] for record in records]
    assert len(ids) == count, f"{len(ids)} results, expected {count}"
    assert len(set(ids)) == count, "an id was recorded twice"


class Runs:
    """Runs of one batch, single-process or as a job, in a scratch directory."""

    def __init__(self, workdir: Path, redis_url: str) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.runs = 0

    def single(self, source: Path, url: str, concurrency: int) -> tuple[float, float, list[Path]]:
        self.runs += 1
        out = self.workdir / f"single-{self.runs}.jsonl"
        wall, _run, cpu = run_all([batch_argv(source, out, url, concurrency)])
        return wall, cpu, [out]

    def job(
        self, source: Path, url: str, concurrency: int, workers: int
    ) -> tuple[float, float, float, list[Path]]:
        self.runs += 1
        name = f"bench-{self.runs}-{time.monotonic_ns()}"
        outs = [self.workdir / f"job-{self.runs}-{i}.jsonl" for i in range(workers)]
        store = ("--store", self.redis_url, "--job", name, "--limit-key", name)
        argvs = [batch_argv(source, out, url, concurrency, *store) for out in outs]
        wall, run, cpu = run_all(argvs)
        return wall, run, cpu, outs


def cost(runs: Runs, url: str, n: int, rounds: int) -> list[dict[str, object]]:
    source = runs.workdir / "cost.jsonl"
    one = runs.workdir / "one.jsonl"
    write_input(source, n)
    write_input(one, 1)
    parts = []
    for index in range(WORKERS):  # the same requests in 4 files, for 4 processes on their own
        part = runs.workdir / f"part-{index}.jsonl"
        share = n // WORKERS + (index < n % WORKERS)
        write_input(part, share)
        parts.append((part, share))
    ones = []
    for index in range(WORKERS):  # one request in each of 4 files: the split's fixed cost
        part = runs.workdir / f"one-{index}.jsonl"
        write_input(part, 1)
        ones.append(part)

    def split_run(files: list[Path]) -> float:
        runs.runs += 1
        argvs = [
            batch_argv(part, runs.workdir / f"split-{runs.runs}-{i}.jsonl", url, 50)
            for i, part in enumerate(files)
        ]
        return run_all(argvs)[2]

    # Each row's fixed cost (start-up, import, connect, join and leave the job) is
    # the same command on 1 request (4 processes, 4 workers), measured every round
    # like the row itself: the lowest of each counts.
    singles, splits, jobs = [], [], []
    single_fixed, split_fixed, job_fixed = [], [], []
    for _ in range(rounds):
        single_fixed.append(runs.single(one, url, 50)[1])
        _wall, cpu, outs = runs.single(source, url, 50)
        check(outs, n)
        singles.append(cpu)
        split_fixed.append(split_run(ones))
        splits.append(split_run([part for part, _share in parts]))
        job_fixed.append(runs.job(one, url, 50, WORKERS)[2])
        _wall, _run, cpu, outs = runs.job(source, url, 50, WORKERS)
        check(outs, n)
        jobs.append(cpu)
    single, split, job = min(singles), min(splits), min(jobs)
    # A 1-request run costs the fixed cost and one request (four for the split).
    single_per = (single - min(single_fixed)) / (n - 1) * 1e6
    split_per = (split - min(split_fixed)) / (n - WORKERS) * 1e6
    job_per = (job - min(job_fixed)) / (n - 1) * 1e6
    return [
        {
            "run": "1 process, no store (baseline)",
            "CPU s": single,
            "raw us/req": single / n * 1e6,
            "us/req": single_per,
            "ratio": 1.0,
        },
        {
            "run": f"{WORKERS} processes, a quarter each, no store",
            "CPU s": split,
            "raw us/req": split / n * 1e6,
            "us/req": split_per,
            "ratio": split_per / single_per,
        },
        {
            "run": f"{WORKERS} workers, one job in redis",
            "CPU s": job,
            "raw us/req": job / n * 1e6,
            "us/req": job_per,
            "ratio": job_per / single_per,
        },
    ]


def scaling(runs: Runs, url: str, n: int) -> list[dict[str, float]]:
    source = runs.workdir / "scale.jsonl"
    write_input(source, n)
    rows: list[dict[str, float]] = []
    for workers in (1, 2):
        wall, run, _cpu, outs = runs.job(source, url, 10, workers)
        check(outs, n)
        rows.append(
            {
                "workers": workers,
                "wall s": wall,
                "run s": run,
                "requests/s (wall)": n / wall,
                "requests/s (run)": n / run,
            }
        )
    for row in rows:
        row["ratio (wall)"] = row["requests/s (wall)"] / rows[0]["requests/s (wall)"]
        row["ratio (run)"] = row["requests/s (run)"] / rows[0]["requests/s (run)"]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-slow", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument("--only", choices=["cost", "scaling"], help="run one of the two")
    args = parser.parse_args()
    if args.serve_slow:
        serve(SlowReply)
        return 0
    sys.path.insert(0, str(ROOT))
    from tests._redis import RedisServer

    ok = True
    with RedisServer() as redis, tempfile.TemporaryDirectory() as scratch:
        runs = Runs(Path(scratch), redis.url)
        if args.only in (None, "cost"):
            n, rounds = (6000, 2) if args.quick else (20000, 3)
            with started() as url:
                print(f"Coordination cost: {n} requests, fast server, best of {rounds} rounds")
                rows = cost(runs, url, n, rounds)
            table(rows)
            ok &= float(rows[2]["ratio"]) <= COST_TARGET  # type: ignore[arg-type]
        if args.only in (None, "scaling"):
            n = 1000 if args.quick else 2400
            with started([sys.executable, __file__, "--serve-slow"]) as url:
                print(
                    f"\nScaling: {n} requests, {LATENCY * 1000:.0f} ms per request at the "
                    "server, --concurrency 10 per worker"
                )
                scaled = scaling(runs, url, n)
            table(scaled)
            ok &= scaled[1]["ratio (run)"] >= SCALE_TARGET
    print(
        f"\ntargets: coordination CPU per request <= {COST_TARGET}x the single process; "
        f"2 workers >= {SCALE_TARGET}x the throughput of 1: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
