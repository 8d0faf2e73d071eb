"""No function on the request path is more complex than radon's grade C.

Grade C is a cyclomatic complexity of at most 20 (radon: A 1-5, B 6-10, C
11-20, D 21-30, ...). A function above it is split into named steps, not
into tables of branches. The modules listed are those a request passes
through: the client, its error map and concurrency helpers, the exchange
adapter, the HTTP transport with both engines, and the SDK transport.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from radon.complexity import cc_rank, cc_visit  # type: ignore[import-untyped]
from radon.visitors import Class, Function  # type: ignore[import-untyped]

MAX_COMPLEXITY = 20  # the top of grade C

REQUEST_PATH = {
    "pynector": [
        "_client.py",
        "_errormap.py",
        "_exchange.py",
        "errors.py",
        "concurrency/_deadline.py",
        "concurrency/_pool.py",
        "concurrency/_ratelimit.py",
        "concurrency/_retry.py",
        "concurrency/_retry_after.py",
    ],
    "pynector_http": [
        "_transport.py",
        "_request.py",
        "_urls.py",
        "_body.py",
        "_headers.py",
        "_errors.py",
        "_response.py",
        "_engine.py",
        "_aiohttp_engine.py",
        "_httpx2_engine.py",
        "_semconv.py",
    ],
    "pynector_sdk": [
        "_transport.py",
        "_errors.py",
        "_stream.py",
        "_operations.py",
        "_semconv.py",
        "_tokens.py",
    ],
}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # located, not imported
    assert spec is not None, f"{package} is not installed"
    assert spec.origin is not None, f"{package} is not a regular package"
    return Path(spec.origin).parent


def _request_path_modules() -> Iterator[tuple[str, Path]]:
    for package, modules in REQUEST_PATH.items():
        for module in modules:
            yield f"{package}/{module}", _package_dir(package) / module


def _functions(blocks: list[Function | Class]) -> Iterator[Function]:
    """Every function radon found: top level, methods and nested functions."""
    for block in blocks:
        if isinstance(block, Function):
            yield block
            yield from _functions(block.closures)


@pytest.mark.parametrize(("name", "path"), list(_request_path_modules()))
def test_no_request_path_function_is_above_grade_c(name: str, path: Path) -> None:
    blocks = cc_visit(path.read_text(encoding="utf-8"))
    too_complex = [
        f"{name}:{function.lineno} {function.fullname} has complexity "
        f"{function.complexity} (grade {cc_rank(function.complexity)})"
        for function in _functions(blocks)
        if function.complexity > MAX_COMPLEXITY
    ]
    assert not too_complex, (
        "split these into smaller, named functions (at most grade C, complexity "
        f"{MAX_COMPLEXITY}): " + "; ".join(too_complex)
    )


def test_the_rule_catches_a_function_above_grade_c() -> None:
    branches = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(21))
    (function,) = _functions(cc_visit(f"def f(x):\n{branches}    return -1\n"))
    assert function.complexity == 22
    assert cc_rank(function.complexity) == "D"
    assert function.complexity > MAX_COMPLEXITY
