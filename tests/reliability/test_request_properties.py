"""Property: any request dict is either sent exactly as described or rejected, naming the key.

Hypothesis builds request dicts for the HTTP transport from valid and invalid
keys and values (unknown keys, wrong types, conflicting bodies, unsendable
header fields, bad URLs and methods). Each one goes through a real client to a
raw-socket echo server on 127.0.0.1 that returns the request as it arrived.
The outcome must be one of:

* the request the server received is the one described: method, path, query
  parameters, every header (and the client's default header unless the
  request overrides it), and the body (JSON, form, raw bytes or multipart);
* a ``ConfigurationError`` whose message names an offending key.

Any other exception fails, and so does a request that does not finish within
a generous bound (a hang). Some inputs may go either way (a header value with
non-ASCII characters is sendable by some engines and rejected by others):
those may succeed, but must then arrive as described.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pynector import Pynector
from pynector.errors import ConfigurationError

from ._servers import EchoServer

pytestmark = pytest.mark.anyio

REQUEST_KEYS = ("path", "url", "method", "params", "headers", "json", "data", "content", "files")
BASE_PATH = "/api"
DEFAULT_HEADER = ("X-Default", "from-the-client")
HANG_BOUND = 2.0  # seconds; a request to a loopback echo server takes milliseconds

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- what a request dict says will be sent ----------------------------------------------


@dataclass
class Expected:
    """The request the server must receive if the dict is accepted."""

    method: str | None = None  # None: GET, or POST with a body (as curl and the CLI)
    path: str = BASE_PATH + "/"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased name -> value
    body: tuple[str, Any] | None = None  # (kind, what), kind: json, form, raw, multipart
    loose_headers: set[str] = field(default_factory=set)  # names sent, values engine-managed


@dataclass
class Case:
    """A request dict, which of its keys make it invalid, and what it should send."""

    data: dict[Any, Any] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)  # must be rejected, naming one of these
    either: set[str] = field(default_factory=set)  # may be rejected, naming one of these
    edits: list[Callable[[Expected], None]] = field(default_factory=list)

    def expected(self) -> Expected:
        expected = Expected()
        for edit in self.edits:
            edit(expected)
        if expected.method is None:
            expected.method = "GET" if expected.body is None else "POST"
        return expected

    def __repr__(self) -> str:
        return f"Case(data={self.data!r}, invalid={self.invalid}, either={self.either})"


@dataclass(frozen=True)
class Part:
    """One key's contribution to a case."""

    key: str
    value: Any
    status: str  # "valid", "invalid" or "either"
    edit: Callable[[Expected], None] | None = None


def _noop(expected: Expected) -> None:
    pass


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
SURROGATE = "\ud800"


def _apply(**changes: Any) -> Callable[[Expected], None]:
    def edit(expected: Expected) -> None:
        for name, value in changes.items():
            setattr(expected, name, value)

    return edit


# -- method ------------------------------------------------------------------------------

METHODS = ["GET", "get", "Post", "PUT", "delete", "PATCH", "OPTIONS", "PURGE", "x-custom"]


@st.composite
def methods(draw: st.DrawFn) -> Part:
    if draw(st.booleans()):
        method = draw(st.sampled_from(METHODS))
        return Part("method", method, "valid", _apply(method=method.upper()))
    if draw(st.integers(0, 5)) == 0:
        # None is "no method" for some versions (as when the key is absent),
        # a mistake for others: either is fine, as long as it is one of the two.
        return Part("method", None, "either", _apply(method=None))
    bad = draw(st.sampled_from(["", "G ET", "GET\r\nX-Injected: 1", "GÉT", 5, b"GET"]))
    return Part("method", bad, "invalid")


# -- path and url ------------------------------------------------------------------------

SEGMENT = st.text(string.ascii_letters + string.digits + "-_~!$&'()*+,;=@ é", min_size=1).filter(
    lambda s: s not in (".", "..")
)
PATHS = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/".join(parts))


@st.composite
def targets(draw: st.DrawFn, origin: str) -> list[Part]:
    choice = draw(
        st.sampled_from(["none", "path", "path", "relative-url", "url", "bad-path", "bad-url"])
    )
    path = draw(PATHS)
    lead = draw(st.sampled_from(["/", ""]))
    if choice == "none":
        return []
    if choice == "path":
        return [Part("path", lead + path, "valid", _apply(path=f"{BASE_PATH}/{path}"))]
    if choice == "relative-url":
        return [Part("url", lead + path, "valid", _apply(path=f"{BASE_PATH}/{path}"))]
    if choice == "url":
        # An absolute URL on the same origin: its own path, its own query.
        query = draw(st.lists(st.tuples(TEXT.map("u".__add__), TEXT), max_size=3))
        url = f"{origin}/{path}" + (f"?{urlencode(query)}" if query else "")

        def edit(expected: Expected) -> None:
            expected.path = f"/{path}"
            expected.query = [*query, *expected.query]

        return [Part("url", url, "valid", edit)]
    if choice == "bad-path":
        bad = draw(st.sampled_from([5, b"/x", ["/x"], f"{origin}/x", "//elsewhere/x"]))
        return [Part("path", bad, "invalid")]
    bad = draw(
        st.sampled_from([5, b"http://x/", "ftp://127.0.0.1/x", "http://[::1/x", "http:///x"])
    )
    parts = [Part("url", bad, "invalid")]
    if draw(st.booleans()):
        parts.append(Part("path", "/x", "invalid"))  # and both path and url
    return parts


# -- params ------------------------------------------------------------------------------

PARAM_VALUES = st.one_of(TEXT, st.integers(-(10**9), 10**9))


def _param_pairs(params: Any) -> list[tuple[str, str]]:
    if isinstance(params, str):
        return parse_qsl(params, keep_blank_values=True)
    items = params.items() if isinstance(params, dict) else params
    return [
        (name, str(item))
        for name, value in items
        for item in (value if isinstance(value, list) else [value])
    ]


@st.composite
def params(draw: st.DrawFn) -> Part:
    keys = TEXT.map("p".__add__)
    kind = draw(st.sampled_from(["dict", "dict", "pairs", "string", "bytes", "bad", "surrogate"]))
    if kind == "dict":
        value: Any = draw(
            st.dictionaries(keys, PARAM_VALUES | st.lists(PARAM_VALUES, max_size=3), max_size=4)
        )
    elif kind == "pairs":
        value = draw(st.lists(st.tuples(keys, PARAM_VALUES), max_size=4))
    elif kind == "string":
        value = urlencode(draw(st.lists(st.tuples(keys, TEXT), max_size=4)))
    elif kind == "surrogate":
        return Part("params", {"p": SURROGATE}, "invalid")  # not encodable as UTF-8
    elif kind == "bytes":
        # Not in the documented forms, but unambiguous: rejected or sent as a=b.
        return Part("params", b"a=b", "either", _apply(query=[("a", "b")]))
    else:
        bad = draw(st.sampled_from([5, 2.5, object(), [1, 2], [("a", "b", "c")]]))
        return Part("params", bad, "invalid")
    pairs = _param_pairs(value)

    def edit(expected: Expected) -> None:
        expected.query = [*expected.query, *pairs]

    return Part("params", value, "valid", edit)


# -- headers ---------------------------------------------------------------------------

HEADER_NAMES = st.text(TOKEN, min_size=1, max_size=10).map("X-".__add__)
HEADER_VALUES = st.text(VISIBLE + " \t", max_size=20).map(lambda v: v.strip(" \t"))


@st.composite
def headers(draw: st.DrawFn) -> Part:
    kind = draw(
        st.sampled_from(
            ["valid", "valid", "valid", "override-default", "either", "bad-type", "bad-field"]
        )
    )
    if kind in ("valid", "override-default"):
        value: dict[Any, Any] = draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4))
        if kind == "override-default":
            value[DEFAULT_HEADER[0].lower()] = draw(HEADER_VALUES)
        last = {name.lower(): field_value for name, field_value in value.items()}

        def edit(expected: Expected) -> None:
            expected.headers.update(last)

        return Part("headers", value, "valid", edit)
    if kind == "either":
        name, field_value = draw(
            st.sampled_from(
                [
                    ("X-Latin", "café"),
                    ("X-Emoji", "\U0001f600"),
                    ("X-Padded", "  padded  "),
                    ("Content-Length", "5"),
                    ("Transfer-Encoding", "chunked"),
                    ("Connection", "close"),
                ]
            )
        )
        lowered = name.lower()

        def either(expected: Expected) -> None:
            if lowered.startswith("x-"):
                expected.headers[lowered] = field_value.strip()
            else:
                expected.loose_headers.add(lowered)

        return Part("headers", {name: field_value}, "either", either)
    if kind == "bad-type":
        bad = draw(
            st.sampled_from(
                [
                    "X-A: 1",
                    [("X-A", "1")],
                    5,
                    {"X-A": 1},
                    {"X-A": b"1"},
                    {"X-A": None},
                    {5: "x"},
                    {"": "x"},
                ]
            )
        )
        return Part("headers", bad, "invalid")
    bad = draw(
        st.sampled_from(
            [
                {"X-A": "a\nb"},
                {"X-A": "a\r\nX-Injected: 1"},
                {"X-A": "nul\x00"},
                {"X A": "space in the name"},
                {"X:A": "colon in the name"},
                {"X-A\r\nX-Injected": "1"},
                {"X-É": "non-ASCII name"},
            ]
        )
    )
    return Part("headers", bad, "invalid")


# -- bodies ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FORM_VALUES = TEXT | st.integers(-(10**6), 10**6).map(str) | st.lists(TEXT, max_size=2)
FILE_NAMES = st.text(string.ascii_letters, min_size=1, max_size=6)


def _form_pairs(form: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, item)
        for name, value in form.items()
        for item in (value if isinstance(value, list) else [value])
    ]


@st.composite
def bodies(draw: st.DrawFn) -> list[Part]:
    kind = draw(st.sampled_from(["none", "json", "data", "content", "files", "bad", "conflict"]))
    if kind == "none":
        return []
    if kind == "json":
        value = draw(JSON)
        body = None if value is None else ("json", value)  # json=None means no body
        return [Part("json", value, "valid", _apply(body=body))]
    if kind == "data":
        form = draw(st.dictionaries(TEXT, FORM_VALUES, min_size=1, max_size=4))
        return [Part("data", form, "valid", _apply(body=("form", _form_pairs(form))))]
    if kind == "content":
        raw = draw(st.binary(max_size=300) | TEXT)
        payload = raw.encode() if isinstance(raw, str) else raw
        return [Part("content", raw, "valid", _apply(body=("raw", payload)))]
    if kind == "files":
        files = draw(
            st.dictionaries(
                FILE_NAMES,
                st.binary(min_size=1, max_size=50)
                | st.tuples(FILE_NAMES.map(lambda n: n + ".txt"), st.binary(max_size=50)),
                min_size=1,
                max_size=3,
            )
        )
        parts = [Part("files", files, "valid", _apply(body=("multipart", files)))]
        if draw(st.booleans()):
            form = draw(st.dictionaries(FILE_NAMES.map("f".__add__), FILE_NAMES, max_size=2))
            parts.append(Part("data", form, "valid"))
        return parts
    if kind == "bad":
        key, bad = draw(
            st.sampled_from(
                [
                    ("json", float("nan")),
                    ("json", float("inf")),
                    ("json", object()),
                    ("json", {"a": {1, 2}}),
                    ("json", {(1, 2): "tuple key"}),
                    ("json", b"bytes"),
                    ("json", "\ud800"),
                    ("data", "a=1"),
                    ("data", b"a=1"),
                    ("data", 5),
                    ("data", [("a", "1")]),
                    ("content", 5),
                    ("content", {"a": 1}),
                    ("content", ["a"]),
                    ("files", 5),
                    ("files", "f"),
                    ("files", {"f": 5}),
                    ("files", {"f": ("a.txt", b"x", "text/plain", "extra")}),
                ]
            )
        )
        return [Part(key, bad, "invalid")]
    first, second = draw(
        st.sampled_from(
            [
                ("json", "data"),
                ("json", "content"),
                ("json", "files"),
                ("content", "data"),
                ("content", "files"),
            ]
        )
    )
    samples = {
        "json": {"a": 1},
        "data": {"a": "1"},
        "content": b"raw",
        "files": {"f": b"file"},
    }
    return [Part(first, samples[first], "invalid"), Part(second, samples[second], "invalid")]


# -- unknown keys ------------------------------------------------------------------------


@st.composite
def unknown_keys(draw: st.DrawFn) -> list[Part]:
    names = draw(
        st.lists(
            st.sampled_from(["body", "query", "header", "timeout", "Path", "JSON", "auth"])
            | TEXT.filter(lambda k: k not in REQUEST_KEYS),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    return [Part(name, draw(st.sampled_from([1, "x", None, {}])), "invalid") for name in names]


# -- putting a case together --------------------------------------------------------------


def _case(parts: list[Part]) -> Case:
    case = Case()
    for part in parts:
        case.data[part.key] = part.value
        if part.status == "invalid":
            case.invalid.add(part.key)
        elif part.status == "either":
            case.either.add(part.key)
        case.edits.append(part.edit or _noop)
    return case


@st.composite
def cases(draw: st.DrawFn, origin: str, focus: str = "all") -> Case:
    """A request dict; ``focus`` varies one area and keeps the others valid or absent."""
    parts: list[Part] = []

    def valid_only(part: Part) -> bool:
        return part.status == "valid"

    if focus in ("all", "target"):
        parts += draw(targets(origin))
    else:
        parts += [Part("path", "/echo", "valid", _apply(path=f"{BASE_PATH}/echo"))]
    if focus in ("all", "method") or draw(st.booleans()):
        method = draw(methods() if focus in ("all", "method") else methods().filter(valid_only))
        parts.append(method)
    if focus in ("all", "params") or draw(st.booleans()):
        parts.append(draw(params() if focus in ("all", "params") else params().filter(valid_only)))
    if focus in ("all", "headers") or draw(st.booleans()):
        chosen = headers() if focus in ("all", "headers") else headers().filter(valid_only)
        parts.append(draw(chosen))
    if focus in ("all", "body"):
        parts += draw(bodies())
    if focus == "unknown" or (focus == "all" and draw(st.integers(0, 9)) == 0):
        parts += draw(unknown_keys())
    return _case(parts)


# -- checking the outcome ----------------------------------------------------------------


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _as_text(field: str) -> str:
    """A field value as text: the server reads octets as Latin-1; engines may send UTF-8."""
    try:
        return field.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return field


def _check_echo(case: Case, echo: dict[str, Any]) -> None:
    expected = case.expected()
    target = echo["target"]
    path, _, query = target.partition("?")
    assert echo["method"] == expected.method, case
    assert unquote(path) == expected.path, case
    assert _grouped(parse_qsl(query, keep_blank_values=True)) == _grouped(expected.query), case
    received: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        received.setdefault(name.lower(), []).append(value)
    wanted = {DEFAULT_HEADER[0].lower(): DEFAULT_HEADER[1], **expected.headers}
    for name, value in wanted.items():
        assert [_as_text(field) for field in received.get(name, [])] == [value], (name, case)
    for name in expected.loose_headers:
        assert name in received or name in ("content-length", "transfer-encoding"), case
    body = base64.b64decode(echo["body"])
    if expected.body is None:
        assert body == b"", case
        return
    kind, what = expected.body
    content_type = received.get("content-type", [""])[0]
    if kind == "json":
        assert content_type.startswith("application/json"), case
        assert json.loads(body) == what, case
    elif kind == "form":
        assert content_type.startswith("application/x-www-form-urlencoded"), case
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        assert _grouped(pairs) == _grouped(what), case
    elif kind == "raw":
        assert body == what, case
    else:
        assert content_type.startswith("multipart/form-data"), case
        for name, file in what.items():
            content = file[1] if isinstance(file, tuple) else file
            assert f'name="{name}"'.encode() in body, case
            assert content in body, case
            if isinstance(file, tuple):
                assert f'filename="{file[0]}"'.encode() in body, case


async def _check(client: Pynector, case: Case) -> None:
    try:
        with anyio.fail_after(HANG_BOUND):
            response = await client.request(case.data)
    except ConfigurationError as exc:
        named = case.invalid | case.either
        assert named, f"a valid request was rejected: {exc}; {case}"
        message = str(exc)
        assert any(repr(key) in message for key in named), (
            f"the error does not name any of {sorted(named)}: {message}"
        )
        return
    except TimeoutError:
        pytest.fail(f"no answer within {HANG_BOUND} s (a hang): {case}")
    except Exception as exc:
        pytest.fail(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}; {case}")
    assert not case.invalid, f"an invalid request was sent: {case}"
    _check_echo(case, response.json())


# -- the tests -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
async def client(echo_server: EchoServer) -> AsyncIterator[Pynector]:
    async with Pynector(
        transport_type="http",
        base_url=echo_server.url + BASE_PATH,
        headers=dict([DEFAULT_HEADER]),
        config={"timeout": HANG_BOUND},
    ) as client:
        yield client


ORIGIN = "http://127.0.0.1:0"  # replaced by the echo server's origin in each test


def _at(case: Case, origin: str) -> Case:
    """Point absolute URLs of a case (drawn before the server existed) at ``origin``."""
    url = case.data.get("url")
    if isinstance(url, str) and url.startswith(ORIGIN):
        case.data["url"] = origin + url[len(ORIGIN) :]
    path = case.data.get("path")
    if isinstance(path, str) and path.startswith(ORIGIN):
        case.data["path"] = origin + path[len(ORIGIN) :]
    return case


def _regression(data: dict[str, Any], invalid: set[str]) -> Case:
    return Case(data=data, invalid=invalid, edits=[])


# The focused tests below report each kind of mistake; this one stops at the first.
@settings(PROPERTY, max_examples=150, report_multiple_bugs=False)
@given(case=cases(ORIGIN, "all"))
async def test_any_request_dict_is_sent_as_described_or_rejected_naming_the_key(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "headers"))
@example(case=_regression({"path": "/echo", "headers": {"X-A": "a\r\nX-Injected: 1"}}, {"headers"}))
@example(case=_regression({"path": "/echo", "headers": {"X A": "v"}}, {"headers"}))
@example(case=_regression({"path": "/echo", "headers": {"X-É": "v"}}, {"headers"}))
async def test_headers_are_sent_as_given_or_rejected(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "body"))
@example(case=_regression({"path": "/echo", "files": {"f": 5}}, {"files"}))
@example(case=_regression({"path": "/echo", "json": float("nan")}, {"json"}))
async def test_bodies_are_sent_as_given_or_rejected(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "params"))
@example(case=_regression({"path": "/echo", "params": 5}, {"params"}))
async def test_query_parameters_are_sent_as_given_or_rejected(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "target"))
async def test_paths_and_urls_reach_the_described_path_or_are_rejected(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "method"))
async def test_methods_are_sent_upper_case_or_rejected(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


@PROPERTY
@given(case=cases(ORIGIN, "unknown"))
async def test_unknown_keys_are_rejected_by_name(
    client: Pynector, echo_server: EchoServer, case: Case
) -> None:
    await _check(client, _at(case, echo_server.url))


async def test_the_client_still_works_after_every_kind_of_rejected_request(
    client: Pynector,
) -> None:
    rejected = [
        {"path": "/echo", "headers": {"X-A": "a\nb"}},
        {"path": "/echo", "files": {"f": 5}},
        {"path": "/echo", "params": 5},
        {"path": "/echo", "body": "x"},
        {"path": "/echo", "json": float("nan")},
        {"path": "/echo", "method": "G ET"},
    ]
    for data in rejected:
        with anyio.fail_after(HANG_BOUND), pytest.raises(Exception):  # noqa: B017, PT011
            await client.request(data)
    with anyio.fail_after(HANG_BOUND):
        response = await client.request({"path": "/echo", "params": {"after": "errors"}})
    assert response.json()["target"] == f"{BASE_PATH}/echo?after=errors"
