"""The output of ``pynector batch`` as a ledger: a regular file, locked, synced to disk.

Real subprocesses throughout: a FIFO, ``/dev/full``, a pipe as ``/dev/stdout``,
a file-size limit that makes writes fail half-way, signals. The fsync tests run
the command with ``fsync_probe/`` on ``PYTHONPATH``: its ``sitecustomize`` logs
each ``os.fsync`` (after making it) with the path and size synced.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    PYNECTOR,
    CountingServer,
    env,
    read_results,
    run_cli,
    wait_for_in_flight,
    wait_for_lines,
    write_lines,
)

PROBE = Path(__file__).with_name("fsync_probe")


def ids(results: list[dict[str, Any]]) -> list[Any]:
    return [result["id"] for result in results]


def requests(count: int, delay: float = 0.0) -> list[dict[str, Any]]:
    params = {"params": {"delay": delay}} if delay else {}
    return [{"id": f"r{n}", "path": f"/ok/{n}", **params} for n in range(count)]


def written_to(path: Path) -> bool:
    """Whether ``path`` exists and something was written to it."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def old_result(request_id: str, ok: bool) -> bytes:
    record = {"id": request_id, "line": 1, "ok": ok, "attempts": 1, "elapsed": 0.0}
    outcome = {"response": {"status_code": 200}} if ok else {"error": {"type": "ServerError"}}
    return json.dumps({**record, **outcome}).encode() + b"\n"


# -- what cannot be a ledger ---------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("fifo", "a pipe or FIFO"),
        ("/dev/full", "a character device"),
        ("/dev/null", "a character device"),
    ],
)
def test_an_output_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, server: CountingServer, target: str, kind: str, dry_run: list[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(3))
    if target == "fifo":
        target = str(tmp_path / "results.fifo")
        os.mkfifo(target)  # nobody reads it: opening it for writing would block

    done = run_cli("batch", source, "-o", target, "--base-url", server.url, *dry_run, timeout=30)

    assert done.returncode == 2, done.stderr
    assert f"pynector batch: -o {target} is {kind}: the output must be a regular file" in (
        done.stderr
    )
    assert "tail -f" in done.stderr
    assert "Traceback" not in done.stderr
    assert server.total_hits == 0


def test_dev_stdout_on_a_pipe_is_refused_instead_of_hanging(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(3))
    # As in `pynector batch IN -o /dev/stdout | cat`: stdout is a pipe.
    with subprocess.Popen(
        [*PYNECTOR, "batch", str(source), "-o", "/dev/stdout", "--base-url", server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    ) as process:
        stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 2, stderr
    assert b"-o /dev/stdout is a pipe or FIFO" in stderr
    assert stdout == b""
    assert server.total_hits == 0


def _limit_file_size(size: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_a_write_that_fails_during_the_run_stops_the_batch_cleanly_and_it_resumes(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(200))
    out = tmp_path / "out.jsonl"
    args = [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url]
    # The file system refuses OUT's growth after 4 KiB, as a full disk would.
    full = subprocess.run(
        [*args, "--concurrency", "4"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=50,
        preexec_fn=_limit_file_size(4096),
        check=False,
    )

    assert full.returncode == 1, full.stderr
    assert f"pynector batch: stopped: cannot write the output {out}: File too large" in (
        full.stderr
    )
    assert "run the same command again to resume" in full.stderr
    assert "Traceback" not in full.stderr
    assert "MemoryError" not in full.stderr
    assert 0 < out.stat().st_size <= 4096
    written = len(out.read_bytes().splitlines())
    assert written < 200

    resumed = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert resumed.returncode == 0, resumed.stderr
    assert Counter(ids(read_results(out))) == {f"r{n}": 1 for n in range(200)}


def test_an_output_that_cannot_take_a_write_at_the_start_is_a_usage_error(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(3))
    out = tmp_path / "out.jsonl"
    # A whole result without its newline: the resume must add one, and cannot.
    out.write_bytes(old_result("r0", True)[:-1])
    size = out.stat().st_size

    done = subprocess.run(
        [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url],
        capture_output=True,
        text=True,
        env=env(),
        timeout=50,
        preexec_fn=_limit_file_size(size),
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert f"pynector batch: cannot write the output -o {out}: File too large" in done.stderr
    assert "name another file" in done.stderr
    assert server.total_hits == 0
    assert out.stat().st_size == size


# -- the lock during --retry-failed ---------------------------------------------------------


def locked(path: Path) -> bool:
    """Whether another process holds the ``flock`` of ``path``."""
    with open(path, "rb") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        return False


def test_retry_failed_keeps_the_output_locked_while_it_rewrites_it(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(2, delay=2.0))
    out = tmp_path / "out.jsonl"
    # Enough results of older runs, half of them failed, that the rewrite takes a while.
    out.write_bytes(b"".join(old_result(f"old-{n}", n % 2 == 0) for n in range(150_000)))
    args = [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url]
    with subprocess.Popen(
        [*args, "--retry-failed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    ) as process:
        temporary = out.with_name(f".{out.name}.{process.pid}.tmp")
        deadline = time.monotonic() + 30
        while not written_to(temporary):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the rewrite never started"
            time.sleep(0.001)
        process.send_signal(signal.SIGSTOP)  # frozen in the middle of the rewrite
        try:
            old_locked, new_locked = locked(out), locked(temporary)
        finally:
            process.send_signal(signal.SIGCONT)
        wait_for_in_flight(server, 2, process)  # the batch goes on, the new OUT locked
        running_locked = locked(out)
        second = run_cli("batch", source, "-o", out, "--base-url", server.url)
        stdout, stderr = process.communicate(timeout=30)

    assert (old_locked, new_locked, running_locked) == (True, True, True)
    assert second.returncode == 2
    assert "is being written by another `pynector batch`" in second.stderr
    assert process.returncode == 0, stderr
    assert "removed 75000 failed results" in stderr
    assert sorted(ids(read_results(out)))[-2:] == ["r0", "r1"]
    assert len(read_results(out)) == 75_002
    assert stdout.startswith("Batch summary")


# -- fsync ---------------------------------------------------------------------------------


def probed_env(log: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")]))
    return {**env(), "PYTHONPATH": path, "PYNECTOR_TEST_FSYNC_LOG": str(log)}


def syncs(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def last_sync_of(log: Path, path: Path) -> dict[str, Any]:
    found = [entry for entry in syncs(log) if entry["path"] == str(path)]
    assert found, f"{path} was never synced: {syncs(log)}"
    return found[-1]


def test_the_output_is_synced_to_disk_when_the_batch_ends(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(20))
    out, log = tmp_path / "out.jsonl", tmp_path / "fsync.log"

    done = subprocess.run(
        [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url],
        capture_output=True,
        text=True,
        env=probed_env(log),
        timeout=50,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert last_sync_of(log, out)["size"] == out.stat().st_size  # every line reached the disk
    assert "out.jsonl" in last_sync_of(log, tmp_path)["listing"]  # and the new file's name
    assert len(read_results(out)) == 20


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("signals", [1, 2])
def test_the_output_is_synced_to_disk_when_a_signal_stops_the_batch(
    tmp_path: Path, server: CountingServer, signum: signal.Signals, status: int, signals: int
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(40, delay=0.05))
    out, log = tmp_path / "out.jsonl", tmp_path / "fsync.log"
    argv = [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url, "-c", "2"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=probed_env(log)
    ) as process:
        wait_for_lines(out, 5, process)
        for _ in range(signals):  # the second stops at once, cancelling what is in flight
            process.send_signal(signum)
        _stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == status, stderr
    assert last_sync_of(log, out)["size"] == out.stat().st_size
    assert 5 <= len(read_results(out)) < 40


def test_the_output_is_synced_every_second_while_the_batch_runs(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", requests(6, delay=1.0))
    out, log = tmp_path / "out.jsonl", tmp_path / "fsync.log"
    argv = [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url, "-c", "1"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=probed_env(log)
    ) as process:
        try:
            deadline = time.monotonic() + 30
            while not any(entry["path"] == str(out) for entry in syncs(log)):
                assert process.poll() is None, "the batch ended before OUT was synced"
                assert time.monotonic() < deadline, "OUT was not synced while the batch ran"
                time.sleep(0.01)
            still_running = process.poll() is None
        finally:
            process.kill()
            process.communicate(timeout=30)

    assert still_running
    assert last_sync_of(log, out)["size"] > 0


def test_retry_failed_syncs_the_new_file_and_then_its_directory(
    tmp_path: Path, server: CountingServer
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": "a", "path": "/status/500"}])
    out, log = tmp_path / "out.jsonl", tmp_path / "fsync.log"
    argv = [*PYNECTOR, "batch", str(source), "-o", str(out), "--base-url", server.url]
    assert run_cli(*argv[3:], "--retries", "0").returncode == 1

    done = subprocess.run(
        [*argv, "--retries", "0", "--retry-failed"],
        capture_output=True,
        text=True,
        env=probed_env(log),
        timeout=50,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "removed 1 failed results" in done.stderr
    entries = syncs(log)
    rewritten = next(index for index, entry in enumerate(entries) if entry["path"].endswith(".tmp"))
    directory = next(index for index, entry in enumerate(entries) if entry["path"] == str(tmp_path))
    assert rewritten < directory
    # Synced after the rename: the directory holds the new OUT and no temporary file.
    assert entries[directory]["listing"] == sorted(["in.jsonl", "out.jsonl", "fsync.log"])
    assert last_sync_of(log, out)["size"] == out.stat().st_size
