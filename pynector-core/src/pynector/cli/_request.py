"""``pynector request [METHOD] URL``: one request from the command line.

The transport's :class:`~pynector.cli.CLISupport` turns the words and options
into its request data and prints the reply: pynector-http builds an HTTP
request dict and prints the status line, headers and body; the default takes
the ``--json`` value as the request data and prints the reply as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from ._arguments import (
    add_client_arguments,
    add_transport_arguments,
    check_transport,
    cli_message,
    cli_usage_error,
    client_config,
    parse_json_argument,
    read_argument_file,
    transport_options,
)
from ._errors import UsageError
from ._json import error_json
from ._secrets import Secrets, request_secrets
from ._support import RequestWords

if TYPE_CHECKING:
    from pynector.hookspecs import RetryWaitInfo

    from ._command import Subcommands
    from ._support import CLISupport

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


def build_request(args: argparse.Namespace, support: CLISupport, base_url: str | None) -> Any:
    """The request data from the command line, as the transport's support reads it.

    Raises:
        UsageError: If the words and options do not make a request.
    """
    method, target = _split_words(args.words)
    words = RequestWords(
        transport=str(args.transport).strip().lower(),
        method=method,
        target=target,
        body=_body(args),
        params=_params(args),
        base_url=base_url,
    )
    return support.request_data(words)


def _result(ok: bool, attempts: int, start: float, payload: Any) -> dict[str, Any]:
    """The ``--format json`` object: a batch result line without ``id`` and ``line``."""
    elapsed = round(time.perf_counter() - start, 6)
    key = "response" if ok else "error"
    return {"ok": ok, "attempts": attempts, "elapsed": elapsed, key: payload}


def _error_reply(support: CLISupport, exc: BaseException) -> Any | None:
    """The reply ``exc`` carries, if it can be shown (an unread stream cannot)."""
    try:
        return support.error_reply(exc)
    except Exception:
        return None


class _Attempts:
    """The attempts of the one request ``pynector request`` sends."""

    def __init__(self) -> None:
        self.count = 1


def _attempts_plugin() -> _Attempts:
    """An :class:`_Attempts` that counts retries: a plugin of one client alone.

    Given as ``Pynector(plugins=[...])``, it sees only that client's retries,
    never those of another client or run of the command in the same process.
    """
    from pynector.hookspecs import hookimpl

    class Counter(_Attempts):
        @hookimpl
        def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
            self.count += 1  # each wait comes before one more attempt

    return Counter()


async def _send(client: Any, data: Any, retries: int) -> Any:
    async with client:
        if retries:
            return await client.request_with_retry(data, retries)
        return await client.request(data)


def run_request(args: argparse.Namespace) -> int:
    """Run ``pynector request``; return the exit status."""
    import anyio

    from pynector import Pynector
    from pynector.errors import ConfigurationError

    secrets = Secrets()
    tally = _attempts_plugin() if args.retries else _Attempts()
    try:
        support = check_transport(args.transport, args)
        name, options, secrets = transport_options(args, support.header_option)
        data = build_request(args, support, options.get("base_url"))
        secrets = secrets + request_secrets(data)  # the URL's and --param's secrets too
        try:
            client = Pynector(
                transport_type=name,
                config=client_config(args),
                plugins=[tally] if args.retries else (),
                **options,
            )
        except ConfigurationError as exc:
            raise cli_usage_error(exc, args) from exc
    except UsageError as exc:
        sys.stderr.write(f"pynector request: {secrets.scrub(str(exc))}\n")
        return 2

    start = time.perf_counter()
    try:
        value = anyio.run(_send, client, data, args.retries)
    except Exception as exc:
        status = 2 if isinstance(exc, ConfigurationError) else 1
        reply = _error_reply(support, exc)
        if args.format == "json":
            shown = None if reply is None else support.reply_json(reply, secrets)
            record = _result(False, tally.count, start, error_json(exc, secrets, shown))
            sys.stdout.write(secrets.dumps(record) + "\n")
        else:
            if reply is not None:
                support.print_reply(reply, secrets, sys.stdout)
                sys.stdout.flush()
            tries = f" (after {tally.count} attempts)" if tally.count > 1 else ""
            message = secrets.scrub(cli_message(str(exc), args))
            sys.stderr.write(f"pynector request: {type(exc).__name__}: {message}{tries}\n")
        return status
    if args.format == "json":
        record = _result(True, tally.count, start, support.reply_json(value, secrets))
        sys.stdout.write(secrets.dumps(record) + "\n")
    else:
        support.print_reply(value, secrets, sys.stdout)
        if tally.count > 1:
            sys.stderr.write(f"(succeeded after {tally.count} attempts)\n")
    return 0
