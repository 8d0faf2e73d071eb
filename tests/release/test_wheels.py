"""What we publish installs: the five distributions built as wheels, installed fresh.

The wheels are built with ``uv build`` (as ``make dist`` does) and installed into
new virtual environments with no package index at all, so that they can only
find each other: PyPI's ``pynector`` 0.1.0 (an unrelated earlier project) or
any other version of ours can never stand in. The third-party dependencies are
installed first, at the versions ``uv.lock`` pins, from uv's cache (``make test``
fills it with ``uv sync``) and without network; then our wheels are installed
with ``--no-index --find-links <the built wheels>``, which resolves their
requirements on each other from those wheels alone.
"""

from __future__ import annotations

import email.parser
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynector.cli._demo_server import DemoServer

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    "pynector": None,
    "pynector-core": "pynector",
    "pynector-http": "pynector_http",
    "pynector-sdk": "pynector_sdk",
    "pynector-otel": "pynector_otel",
    "pynector-redis": "pynector_redis",
}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH; run the tests with `make test`, which installs it")
    return found


def run(*args: str | Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    for name in DISTRIBUTIONS:
        run(uv(), "build", "--quiet", "--wheel", "--package", name, "--out-dir", out, ROOT)
    found = {}
    for wheel in out.glob("*.whl"):
        found[wheel.name.split("-")[0].replace("_", "-")] = wheel
    assert set(found) == set(DISTRIBUTIONS)
    return found


def third_party(package: str, *extras: str) -> list[str]:
    """The locked third-party requirements of one of our distributions (and extras)."""
    options = [arg for extra in extras for arg in ("--extra", extra)]
    exported = run(
        uv(),
        "export",
        "--project",
        ROOT,
        "--frozen",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--no-dev",
        "--no-emit-workspace",
        "--package",
        package,
        *options,
    )
    return [line for line in exported.splitlines() if line and not line.startswith("#")]


def base_venv(path: Path, deps_of: tuple[str, ...]) -> Path:
    """A fresh environment with only the locked third-party requirements of ``deps_of``.

    ``deps_of`` is one of our distributions and its extras; the requirements
    come from uv's cache, with no network.
    """
    run(uv(), "venv", "--quiet", "--python", sys.executable, path)
    python = path / "bin" / "python"
    pins = path.parent / f"{path.name}-third-party.txt"
    pins.write_text("\n".join(third_party(*deps_of)) + "\n")
    run(uv(), "pip", "install", "--quiet", "--offline", "--no-deps", "--python", python, "-r", pins)
    return python


def install_from(links: Path, python: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """Install ``requirements`` from the wheels in ``links`` and nowhere else."""
    install = ["pip", "install", "--quiet", "--offline", "--no-index", "--find-links", str(links)]
    return subprocess.run(
        [uv(), *install, "--python", str(python), *requirements],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def venv(path: Path, *requirements: str, wheels: dict[str, Path], deps_of: tuple[str, ...]) -> Path:
    """A fresh environment with ``requirements`` installed from our wheels, no index."""
    python = base_venv(path, deps_of)
    done = install_from(next(iter(wheels.values())).parent, python, *requirements)
    assert done.returncode == 0, done.stderr
    run(uv(), "pip", "check", "--python", python)
    return python


def installed_versions(python: Path) -> dict[str, str]:
    listing = json.loads(run(uv(), "pip", "list", "--format", "json", "--python", python))
    return {item["name"]: item["version"] for item in listing}


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_every_wheel_has_complete_metadata(wheels: dict[str, Path], name: str) -> None:
    wheel = wheels[name]
    meta = metadata(wheel)
    assert meta["Name"] == name
    assert meta["Version"] == VERSION
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Summary"]
    urls = meta.get_all("Project-URL") or []
    assert {url.split(",")[0] for url in urls} >= {"Homepage", "Documentation", "Changelog"}
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(n.endswith("licenses/LICENSE") for n in names)
    package = DISTRIBUTIONS[name]
    if package is not None:
        assert f"{package}/py.typed" in names


def test_plugins_pin_a_compatible_core(wheels: dict[str, Path]) -> None:
    for name in ("pynector-http", "pynector-sdk", "pynector-otel", "pynector-redis"):
        requires = metadata(wheels[name]).get_all("Requires-Dist") or []
        assert "pynector-core<0.3,>=0.2.0" in requires, requires


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer() as running:
        yield running


REQUEST = """
import sys, anyio
from pynector import Pynector

async def main():
    async with Pynector(transport_type="http", base_url=sys.argv[1]) as client:
        response = await client.request({"path": "/users/7"})
        print(response.status_code, response.json()["name"])

anyio.run(main)
"""


def test_core_and_http_wheels_alone_make_a_request(
    wheels: dict[str, Path], server: DemoServer, tmp_path: Path
) -> None:
    python = venv(
        tmp_path / "venv",
        "pynector-core",
        "pynector-http",
        wheels=wheels,
        deps_of=("pynector-http",),
    )
    installed = installed_versions(python)
    assert installed["pynector-core"] == installed["pynector-http"] == VERSION
    for absent in ("openai", "anthropic", "opentelemetry-api", "rich", "aiohttp", "pynector-echo"):
        assert absent not in installed
    assert run(python, "-c", REQUEST, server.url).strip() == "200 user 7"


def test_core_alone_names_the_exact_install_for_http(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    python = venv(tmp_path / "venv", "pynector-core", wheels=wheels, deps_of=("pynector-core",))
    code = (
        "from pynector import Pynector, ConfigurationError\n"
        "try:\n    Pynector(transport_type='http')\n"
        "except ConfigurationError as exc:\n    print(exc)\n"
    )
    assert "pip install pynector-http" in run(python, "-c", code)


def test_pynector_all_installs_everything(wheels: dict[str, Path], tmp_path: Path) -> None:
    python = venv(tmp_path / "venv", "pynector[all]", wheels=wheels, deps_of=("pynector", "all"))
    installed = installed_versions(python)
    assert {name: installed[name] for name in DISTRIBUTIONS} == dict.fromkeys(
        DISTRIBUTIONS, VERSION
    )
    code = (
        "import pynector, pynector_http, pynector_sdk, pynector_otel, rich\n"
        "from pynector.registry import available_plugins, available_transports\n"
        "print(sorted((t.name, t.status) for t in available_transports()))\n"
        "print(sorted((p.name, p.status) for p in available_plugins()))\n"
    )
    transports, plugins = run(python, "-c", code).strip().splitlines()
    assert transports == "[('http', 'ok'), ('sdk', 'ok')]"
    assert plugins == "[('otel', 'ok')]"


def test_our_wheels_do_not_fall_back_to_an_index(wheels: dict[str, Path], tmp_path: Path) -> None:
    # pynector-http without the pynector-core wheel next to it cannot install:
    # nothing else is consulted (PyPI has unrelated pynector releases).
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(wheels["pynector-http"], alone)
    python = base_venv(tmp_path / "venv", deps_of=("pynector-http",))
    done = install_from(alone, python, "pynector-http")
    assert done.returncode != 0
    assert "pynector-core was not found in the provided package locations" in done.stderr, (
        done.stderr
    )


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_third_party_requirements_have_a_floor_and_a_major_bound(
    wheels: dict[str, Path], name: str
) -> None:
    for requirement in metadata(wheels[name]).get_all("Requires-Dist") or []:
        spec = requirement.split(";")[0]
        if spec.startswith("pynector"):
            continue
        assert ">=" in spec, requirement
        assert "<" in spec.replace("<=", ""), requirement


def test_the_aiohttp_extra_requires_the_first_aiohttp_with_decompress_size_error(
    wheels: dict[str, Path],
) -> None:
    requires = metadata(wheels["pynector-http"]).get_all("Requires-Dist") or []
    assert "aiohttp<4,>=3.13.3; extra == 'aiohttp'" in requires, requires


def _make_variable(name: str) -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if line.startswith(f"{name} :="))
    return line.split(":=", 1)[1].split()


# The test folders that exercise each distribution.
SUITES = {
    "pynector": ["tests/core", "tests/cli", "tests/http"],
    "pynector-core": ["tests/core", "tests/cli"],
    "pynector-http": ["tests/http"],
    "pynector-sdk": ["tests/sdk"],
    "pynector-otel": ["tests/otel"],
    "pynector-redis": ["tests/redis"],
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_python_classifiers_list_exactly_the_versions_make_test_runs(
    wheels: dict[str, Path], name: str
) -> None:
    # `make test` runs everything on 3.11 and OTHER_SUITES on OTHER_PYTHONS.
    tested = {"3.11"}
    if set(SUITES[name]) <= set(_make_variable("OTHER_SUITES")):
        tested |= set(_make_variable("OTHER_PYTHONS"))
    classifiers = metadata(wheels[name]).get_all("Classifier") or []
    declared = {c.removeprefix("Programming Language :: Python :: ") for c in classifiers}
    assert {v for v in declared if v.startswith("3.")} == tested, classifiers
