"""The batch file formats: request lines in, result lines out, ids kept compactly."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import BinaryIO

import pytest

from pynector.cli import CLISupport
from pynector.cli._ledger import (
    IdSet,
    LineError,
    RequestParser,
    drop_failed,
    id_key,
    repair_output,
    scan_output,
)
from pynector_http._cli import HTTPCLISupport
from pynector_sdk._cli import SDKCLISupport

HTTP = HTTPCLISupport()
SDK = SDKCLISupport()


def test_an_id_set_finds_every_id_it_was_given_and_no_other() -> None:
    ids = IdSet()
    keys = [id_key(f"id-{n}") for n in range(20_000)]
    assert all(ids.add(key) for key in keys)
    assert len(ids) == 20_000
    assert all(key in ids for key in keys)
    assert not any(ids.add(key) for key in keys[:100])
    assert sum(id_key(f"other-{n}") in ids for n in range(20_000)) == 0


def test_an_integer_id_and_its_string_are_different_ids() -> None:
    assert id_key(5) != id_key("5")
    assert id_key(-1) != id_key(-2)
    assert id_key("a") == id_key("a")


def test_a_plain_line_gives_its_id_and_the_rest_is_the_request() -> None:
    parser = RequestParser(HTTP)
    assert parser.parse(3, b'{"id": "a", "path": "/x"}\n').id == "a"
    line = parser.parse(3, b'{"path": "/x"}\r\n')
    assert (line.id, line.line, line.data) == (3, 3, {"path": "/x"})
    assert parser.parse(1, b'{"id": 7, "json": {"id": 1}}').data["json"] == {"id": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b'"text"', "must be a JSON object, not str"),
        (b'{"id": ""}', '"id" must be a non-empty string or an integer'),
        (b'{"id": 1.5}', '"id" must be a non-empty string or an integer'),
        (b'{"custom_id": "c", "url": "/v1/embeddings", "body": {}, "extra": 1}', "extra"),
        (b'{"custom_id": "c", "url": "/v1/embeddings", "body": []}', '"body" must be'),
        (b'{"custom_id": "c", "method": "GET", "url": "/v1/embeddings", "body": {}}', "POST"),
        (b'{"custom_id": "c", "params": "x"}', '"params" must be a JSON object'),
    ],
)
def test_a_bad_line_says_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(LineError, match=message):
        RequestParser(SDK).parse(1, raw)


def test_batch_api_lines_map_their_url_to_an_sdk_operation() -> None:
    parser = RequestParser(SDK)
    line = parser.parse(
        1,
        json.dumps(
            {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"m": 1}}
        ).encode(),
    )
    assert (line.id, line.data) == ("c1", {"m": 1, "operation": "chat.completions.create"})
    short = parser.parse(2, b'{"custom_id": "c2", "url": "/embeddings", "body": {}}')
    assert short.data == {"operation": "embeddings.create"}
    anthropic = parser.parse(3, b'{"custom_id": "c3", "params": {"max_tokens": 5}}')
    assert (anthropic.id, anthropic.data) == ("c3", {"max_tokens": 5})


def test_batch_api_lines_become_http_posts_without_doubling_v1() -> None:
    raw = b'{"custom_id": "c", "method": "post", "url": "/v1/embeddings", "body": {"a": 1}}'
    under_v1 = RequestParser(HTTP, {"base_url": "https://api.example.com/v1/"}).parse(1, raw)
    at_root = RequestParser(HTTP, {"base_url": "https://api.example.com"}).parse(1, raw)
    assert under_v1.data == {"method": "POST", "path": "/embeddings", "json": {"a": 1}}
    assert at_root.data == {"method": "POST", "path": "/v1/embeddings", "json": {"a": 1}}
    messages = RequestParser(HTTP, {"base_url": "https://h/v1"}).parse(
        2, b'{"custom_id": "m", "params": {}}'
    )
    assert messages.data == {"method": "POST", "path": "/messages", "json": {}}


def result(request_id: object, ok: bool) -> bytes:
    return json.dumps({"id": request_id, "line": 1, "ok": ok, "attempts": 1}).encode() + b"\n"


def test_scanning_the_output_sorts_ids_by_outcome_and_finds_foreign_lines(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(result("a", True) + b"\n" + result(2, False) + b'{"note": 1}\n' + b"junk\n")

    state = scan_output(out)

    assert id_key("a") in state.ok
    assert id_key(2) in state.failed
    assert id_key("2") not in state.failed
    assert (state.results, state.foreign, state.torn) == (2, [4, 5], 0)


def test_a_torn_last_line_is_cut_off_and_a_whole_one_gets_its_newline(tmp_path: Path) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(result("a", True) + result("b", True)[:-9])
    unterminated = tmp_path / "unterminated.jsonl"
    unterminated.write_bytes(result("a", True) + result("b", True)[:-1])

    for path in (torn, unterminated):
        state = scan_output(path)
        with open(path, "ab") as file:
            repair_output(file, state)

    assert torn.read_bytes() == result("a", True)
    assert id_key("b") not in scan_output(torn).ok
    assert unterminated.read_bytes() == result("a", True) + result("b", True)
    assert id_key("b") in scan_output(unterminated).ok


def test_dropping_failed_results_keeps_everything_else_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(result("a", True) + result("b", False) + b'{"note": 1}\n' + result("c", True))

    dropped, rewritten = drop_failed(out)
    assert rewritten is not None
    rewritten.close()

    assert dropped == 1
    assert out.read_bytes() == result("a", True) + b'{"note": 1}\n' + result("c", True)
    assert list(tmp_path.iterdir()) == [out]


def test_a_line_nested_too_deeply_is_a_line_error_and_never_breaks_a_scan(
    tmp_path: Path,
) -> None:
    deep = b'{"id": "x", "json": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # for any Python
    with pytest.raises(LineError, match="nested too deeply"):
        RequestParser(HTTP).parse(1, deep)
    out = tmp_path / "out.jsonl"
    out.write_bytes(result("a", True) + deep + b"\n")

    state = scan_output(out)

    assert id_key("a") in state.ok
    assert state.foreign == [2]


def test_a_body_without_a_method_is_a_post_for_the_http_transport() -> None:
    http, echo = RequestParser(HTTP), RequestParser(CLISupport())
    assert http.parse(1, b'{"path": "/x", "json": {}}').data["method"] == "POST"
    assert http.parse(1, b'{"path": "/x", "data": {"a": "1"}}').data["method"] == "POST"
    assert http.parse(1, b'{"path": "/x", "method": "PUT", "json": {}}').data["method"] == "PUT"
    assert "method" not in http.parse(1, b'{"path": "/x"}').data
    assert "method" not in echo.parse(1, b'{"json": {}}').data


def test_the_rewritten_output_is_locked_before_it_replaces_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(result("a", False) + result("b", True))
    seen: list[tuple[str, bool]] = []

    def lock(file: BinaryIO) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        seen.append((Path(file.name if isinstance(file.name, str) else "").name, out.exists()))

    dropped, rewritten = drop_failed(out, lock)

    assert rewritten is not None
    with rewritten, open(out, "rb") as other:
        with pytest.raises(BlockingIOError):  # the file now at OUT's path is the locked one
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        rewritten.write(result("c", True))
    assert dropped == 1
    assert len(seen) == 1
    assert out.read_bytes() == result("b", True) + result("c", True)
