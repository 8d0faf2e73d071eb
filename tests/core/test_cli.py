"""The ``pynector`` command, run as a real subprocess (on a pipe and on a terminal)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import pynector

from .conftest import Discovery

MODULE = [sys.executable, "-m", "pynector"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def console_script() -> str:
    script = shutil.which("pynector", path=str(Path(sys.executable).parent))
    assert script is not None, "the pynector console script is not installed next to python"
    return script


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, env=env)


def run_on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal (120 columns) as stdin, stdout and stderr."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**env, "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "COLUMNS": "120"}
    with subprocess.Popen(
        argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True
    ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        returncode = process.wait(timeout=60)
    return returncode, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def rows(output: str, section: str) -> list[str]:
    """The lines of one section of the plain listing (header first)."""
    lines = output.splitlines()
    start = lines.index(section) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_transports_lists_installed_transports_as_aligned_plain_text_on_a_pipe(
    discovery: Discovery,
) -> None:
    result = run([*MODULE, "transports"], env=discovery.subprocess_env())
    assert result.returncode == 0, result.stderr
    header, *records = rows(result.stdout, "Transports")
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS"]
    (echo,) = [line for line in records if line.startswith("echo ")]
    assert echo.split() == ["echo", "pynector-echo", "0.1.0", "ok"]
    for column in ("DISTRIBUTION", "VERSION", "STATUS"):
        assert echo[header.index(column) - 2 : header.index(column)] == "  "
    assert echo.index("pynector-echo") == header.index("DISTRIBUTION")
    assert echo.index("0.1.0") == header.index("VERSION")
    assert echo.index("ok") == header.index("STATUS")
    assert "\x1b[" not in result.stdout
    assert "Plugins" in result.stdout.splitlines()


def test_the_console_script_lists_transports(discovery: Discovery) -> None:
    result = run([console_script(), "transports"], env=discovery.subprocess_env())
    assert result.returncode == 0, result.stderr
    assert ["echo", "pynector-echo", "0.1.0", "ok"] in [
        line.split() for line in rows(result.stdout, "Transports")
    ]


def test_transports_shows_broken_entries_and_still_exits_zero(discovery: Discovery) -> None:
    env = discovery.subprocess_env("pynector-broken", "pynector-recorder")
    result = run([*MODULE, "transports"], env=env)
    assert result.returncode == 0, result.stderr
    transports = {line.split()[0]: line for line in rows(result.stdout, "Transports")[1:]}
    assert transports["broken"].split()[:4] == ["broken", "pynector-broken", "0.1.0", "error:"]
    assert "ImportError: pynector_broken needs the 'frobnicate' library" in transports["broken"]
    assert "not a callable factory" in transports["notafactory"]
    assert transports["echo"].split()[-1] == "ok"
    plugins = {line.split()[0]: line for line in rows(result.stdout, "Plugins")[1:]}
    assert plugins["recorder"].split() == ["recorder", "pynector-recorder", "0.3.0", "ok"]
    assert "error: PluginValidationError" in plugins["badhooks"]
    assert "error: ImportError" in plugins["broken"]
    assert result.stderr == ""  # the table says it all; no log lines on top


def test_transports_shows_disabled_plugins_under_pynector_plugins(discovery: Discovery) -> None:
    env = discovery.subprocess_env("pynector-recorder", plugins="")
    result = run([*MODULE, "transports"], env=env)
    assert result.returncode == 0, result.stderr
    plugins = {line.split()[0]: line for line in rows(result.stdout, "Plugins")[1:]}
    assert plugins["recorder"].split(maxsplit=3) == [
        "recorder",
        "pynector-recorder",
        "0.3.0",
        "disabled: PYNECTOR_PLUGINS is empty",
    ]


def test_transports_shows_both_distributions_of_a_conflict(discovery: Discovery) -> None:
    result = run([*MODULE, "transports"], env=discovery.subprocess_env("pynector-echo-clone"))
    assert result.returncode == 0, result.stderr
    echoes = [line.split(maxsplit=3) for line in rows(result.stdout, "Transports")[1:]]
    assert [
        "echo",
        "pynector-echo",
        "0.1.0",
        "conflict: 'echo' is also claimed by pynector-echo-clone 0.2.0",
    ] in echoes
    assert [
        "echo",
        "pynector-echo-clone",
        "0.2.0",
        "conflict: 'echo' is also claimed by pynector-echo 0.1.0",
    ] in echoes


def test_transports_draws_a_rich_table_on_a_terminal(discovery: Discovery) -> None:
    returncode, output = run_on_terminal(
        [*MODULE, "transports"], env=discovery.subprocess_env("pynector-broken")
    )
    assert returncode == 0, output
    assert "┏" in output
    assert "\x1b[" in output  # styled: ok in green, errors in red
    echo = next(line for line in output.splitlines() if "pynector-echo" in line)
    assert "\x1b[32mok" in echo
    assert [ANSI.sub("", cell).strip() for cell in echo.split("│")[1:-1]] == [
        "echo",
        "pynector-echo",
        "0.1.0",
        "ok",
    ]
    assert "pynector-broken" in output
    assert "NAME  DISTRIBUTION" not in output


def test_transports_falls_back_to_plain_text_on_a_terminal_without_rich(
    core_only_python: Path, discovery: Discovery
) -> None:
    python = str(core_only_python)
    assert run([python, "-c", "import rich"]).returncode != 0, "rich must be absent here"
    returncode, output = run_on_terminal(
        [python, "-m", "pynector", "transports"],
        env=discovery.subprocess_env("pynector-echo-copy"),
    )
    assert returncode == 0, output
    assert "┏" not in output
    header, echo = rows(output, "Transports")
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS"]
    assert echo.split() == ["echo", "pynector-echo", "0.1.0", "ok"]
    assert rows(output, "Plugins") == ["(no plugins installed)"]


def test_transports_with_nothing_installed_says_so(core_only_python: Path) -> None:
    result = run([str(core_only_python), "-m", "pynector", "transports"])
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout, "Transports") == ["(no transports installed)"]
    assert rows(result.stdout, "Plugins") == ["(no plugins installed)"]


def test_version_flag_prints_the_package_version() -> None:
    for argv in (MODULE, [console_script()]):
        result = run([*argv, "--version"])
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"pynector {pynector.__version__}\n"


def test_no_command_prints_help_and_exits_with_usage_status() -> None:
    result = run(MODULE)
    assert result.returncode == 2
    assert "usage: pynector" in result.stderr
    assert "transports" in result.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run([*MODULE, "transprots"])
    assert result.returncode == 2
    assert "invalid choice: 'transprots'" in result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["transports", "--help"]])
def test_help_exits_zero(argv: list[str]) -> None:
    result = run([*MODULE, *argv])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pynector")
