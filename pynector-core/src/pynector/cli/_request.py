"""``pynector request [METHOD] URL``: one request from the command line.

For the ``http`` transport the words and options build an HTTP request dict
(``method``, ``url`` or ``path``, ``params``, ``json`` or ``content``); for any
other transport the request data is the ``--json`` value, and a path such as
``/v1/embeddings`` picks the SDK operation as in an OpenAI Batch line. The reply
is printed as status line, headers and body (HTTP) or as JSON (anything else).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from ._arguments import (
    TALLY,
    Secrets,
    Tally,
    UsageError,
    add_client_arguments,
    add_transport_arguments,
    attempts_plugin,
    check_transport,
    cli_message,
    cli_usage_error,
    client_config,
    error_json,
    is_http_response,
    jsonable,
    parse_json_argument,
    read_argument_file,
    request_secrets,
    transport_options,
)
from ..redact import REDACTED, is_secret_header

if TYPE_CHECKING:
    from . import Subcommands

__all__ = ["add_request_parser", "run_request"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

_EPILOG = """\
examples:
  pynector request https://httpbin.org/get
  pynector request POST /users --base-url https://api.example.com \\
      -H 'Authorization: Bearer $TOKEN' --json '{"name": "Ada"}'
  pynector request --transport sdk --provider openai /v1/embeddings \\
      --json '{"model": "text-embedding-3-small", "input": "hello"}'

exit status: 0 the request succeeded; 1 it failed (the error, and for an HTTP
status error the reply, are printed); 2 usage error; 130 interrupted.
"""


def add_request_parser(subcommands: Subcommands) -> None:
    """Add ``pynector request``."""
    parser = subcommands.add_parser(
        "request",
        help="send one request and print the reply",
        description=(
            "Send one request through any installed transport and print the reply: for "
            "HTTP the status line, the headers (secrets redacted) and the body."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="[METHOD] URL",
        help="HTTP method (default GET, or POST with a body) and an absolute URL or a path "
        "under --base-url; for other transports an API path such as /v1/embeddings",
    )
    group = parser.add_argument_group("request")
    body = group.add_mutually_exclusive_group()
    body.add_argument(
        "--json",
        metavar="JSON",
        help="the JSON body (HTTP) or the request data (other transports); @FILE reads a file",
    )
    body.add_argument("--data", metavar="TEXT", help="a raw text body; @FILE reads a file")
    group.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a query parameter (repeatable)",
    )
    group.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: status, headers and body; json: one JSON object like a batch result line",
    )
    add_transport_arguments(parser)
    add_client_arguments(parser, retries=0)
    parser.set_defaults(handler=run_request)


def _split_words(words: list[str]) -> tuple[str | None, str | None]:
    if len(words) > 2:
        raise UsageError(
            f"expected [METHOD] URL, got {len(words)} words; quote a URL with spaces or '&'"
        )
    if len(words) == 2:
        method, target = words
        if not method.isalpha():
            raise UsageError(f"{method!r} is not an HTTP method; e.g. pynector request POST /x")
        return method.upper(), target
    if len(words) == 1:
        if words[0].upper() in _METHODS:
            return words[0].upper(), None
        return None, words[0]
    return None, None


def _body(args: argparse.Namespace) -> tuple[str, Any] | None:
    if args.json is not None:
        return "json", parse_json_argument("--json", args.json)
    if args.data is not None:
        text = args.data
        if text.startswith("@"):
            text = read_argument_file("--data", text[1:])
        return "content", text
    return None


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for text in args.param:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {text!r} is not NAME=VALUE; e.g. --param limit=10")
        if name in params:
            previous = params[name]
            params[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[name] = value
    return params


def build_request(args: argparse.Namespace, transport: str, base_url: str | None) -> Any:
    """The request data for ``transport`` from the command line.

    Raises:
        UsageError: If the words and options do not make a request.
    """
    method, target = _split_words(args.words)
    body = _body(args)
    if transport == "http":
        request: dict[str, Any] = {"method": method or ("POST" if body else "GET")}
        if target is not None:
            request["url" if "://" in target else "path"] = target
        elif base_url is None:
            raise UsageError(
                "give the URL to request, e.g. pynector request https://example.com/, "
                "or a path with --base-url"
            )
        params = _params(args)
        if params:
            request["params"] = params
        if body is not None:
            request[body[0]] = body[1]
        return request
    if args.param:
        raise UsageError("--param is for the http transport; put the arguments in --json")
    if method not in (None, "POST"):
        raise UsageError(f"the {transport} transport takes no HTTP method ({method})")
    if body is None:
        raise UsageError(
            f"give the request data of the {transport} transport with --json, e.g. "
            '--json \'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}\''
        )
    data = body[1]
    if target is not None:
        if not isinstance(data, dict):
            raise UsageError("with an API path, --json must be a JSON object")
        data = {**data, "operation": _operation(target)}
    return data


def _operation(target: str) -> str:
    from ._ledger import OPENAI_OPERATIONS

    path = target.split("://", 1)[-1]
    path = "/" + path.split("/", 1)[1] if "://" in target and "/" in path else target
    path = path.rstrip("/")
    if not path.startswith("/v1/"):
        path = "/v1" + (path if path.startswith("/") else "/" + path)
    operation = OPENAI_OPERATIONS.get(path)
    if operation is None:
        raise UsageError(
            f"{target!r} is not a supported API path ({', '.join(OPENAI_OPERATIONS)}); or "
            'leave it out and put "operation": "..." in --json'
        )
    return operation


def _print_http(response: Any, secrets: Secrets) -> None:
    version = getattr(response, "http_version", None) or "HTTP/1.1"
    reason = getattr(response, "reason_phrase", "") or ""
    lines = [f"{version} {response.status_code} {reason}".rstrip()]
    content_type = ""
    for name, value in response.headers.items():
        shown = REDACTED if is_secret_header(str(name)) else value
        lines.append(f"{name}: {shown}")
        if str(name).lower() == "content-type":
            content_type = str(value)
    content: bytes = response.content
    text: str | None = None
    if content and "json" in content_type.lower():
        try:
            text = json.dumps(json.loads(content), indent=2, ensure_ascii=False)
        except ValueError:
            text = None
    if text is None:
        try:
            text = content.decode(getattr(response, "encoding", None) or "utf-8")
        except (UnicodeDecodeError, LookupError):
            text = None
    out = sys.stdout
    if text is None:
        out.write(secrets.scrub("\n".join(lines)) + "\n\n")
        out.flush()
        if out.isatty():
            out.write(
                f"[{len(content)} bytes of binary content; redirect the output to a file "
                "or pass --format json]\n"
            )
        else:
            out.buffer.write(secrets.scrub_bytes(content))
        return
    out.write(secrets.scrub("\n".join([*lines, "", text])).rstrip("\n") + "\n")


def _print_reply(value: Any, secrets: Secrets) -> None:
    if is_http_response(value):
        _print_http(value, secrets)
        return
    text = json.dumps(jsonable(value, secrets), indent=2, ensure_ascii=False)
    sys.stdout.write(secrets.scrub(text) + "\n")


def _result(ok: bool, attempts: int, start: float, payload: Any) -> dict[str, Any]:
    """The ``--format json`` object: a batch result line without ``id`` and ``line``."""
    elapsed = round(time.perf_counter() - start, 6)
    key = "response" if ok else "error"
    return {"ok": ok, "attempts": attempts, "elapsed": elapsed, key: payload}


async def _send(client: Any, data: Any, retries: int) -> Any:
    async with client:
        if retries:
            return await client.request_with_retry(data, retries)
        return await client.request(data)


def run_request(args: argparse.Namespace) -> int:
    """Run ``pynector request``; return the exit status."""
    import anyio

    from .. import Pynector
    from ..errors import ConfigurationError
    from ..registry import register_plugin, unregister_plugin

    secrets = Secrets()
    try:
        check_transport(args.transport, args)
        name, options, secrets = transport_options(args)
        data = build_request(args, name, options.get("base_url"))
        secrets = secrets + request_secrets(data)  # the URL's and --param's secrets too
        try:
            client = Pynector(transport_type=name, config=client_config(args), **options)
        except ConfigurationError as exc:
            raise cli_usage_error(exc, args) from exc
    except UsageError as exc:
        sys.stderr.write(f"pynector request: {secrets.scrub(str(exc))}\n")
        return 2

    tally = Tally(0)
    plugin_name = (
        register_plugin(attempts_plugin(None), name="pynector-request-cli")
        if args.retries
        else None
    )
    token = TALLY.set(tally)
    start = time.perf_counter()
    try:
        value = anyio.run(_send, client, data, args.retries)
    except Exception as exc:
        status = 2 if isinstance(exc, ConfigurationError) else 1
        if args.format == "json":
            record = _result(False, tally.attempts, start, error_json(exc, secrets))
            sys.stdout.write(secrets.dumps(record) + "\n")
        else:
            response = getattr(exc, "response", None)
            if response is not None and is_http_response(response):
                _print_reply(response, secrets)
                sys.stdout.flush()
            tries = f" (after {tally.attempts} attempts)" if tally.attempts > 1 else ""
            message = secrets.scrub(cli_message(str(exc), args))
            sys.stderr.write(f"pynector request: {type(exc).__name__}: {message}{tries}\n")
        return status
    finally:
        TALLY.reset(token)
        if plugin_name is not None:
            unregister_plugin(plugin_name)
    if args.format == "json":
        record = _result(True, tally.attempts, start, jsonable(value, secrets))
        sys.stdout.write(secrets.dumps(record) + "\n")
    else:
        _print_reply(value, secrets)
        if tally.attempts > 1:
            sys.stderr.write(f"(succeeded after {tally.attempts} attempts)\n")
    return 0
