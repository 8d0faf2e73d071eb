"""The arguments ``pynector request`` and ``pynector batch`` share, and errors in their words.

- The transport arguments (``--transport``, ``--base-url``, ``--header``,
  ``--provider``, ``--api-key``, ``--option``) and the client arguments
  (``--timeout``, ``--retries``, ``--retry-delay``), turned into the keyword
  arguments of :class:`pynector.Pynector`, with the secrets among them.
- :func:`check_transport`, :func:`cli_usage_error`: an unknown ``--transport``
  first, and the client's error messages in the command line's words
  (``--base-url``, not ``base_url=``).

Only the standard library is imported here, so ``pynector --help`` stays light.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pynector.redact import secret_values, url_secrets, value_secrets

from ._errors import UsageError
from ._secrets import Secrets

if TYPE_CHECKING:
    from pynector.errors import ConfigurationError

    from ._support import CLISupport

__all__ = [
    "UsageError",
    "add_client_arguments",
    "add_transport_arguments",
    "check_transport",
    "cli_message",
    "cli_usage_error",
    "client_config",
    "parse_json_argument",
    "positive_number",
    "read_argument_file",
    "transport_options",
    "whole_number",
]

_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def positive_number(text: str) -> float:
    """``argparse`` type: a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _whole(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


whole_number = _whole(1)
"""``argparse`` type: a whole number of at least 1."""


def add_transport_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments that choose and configure the transport."""
    group = parser.add_argument_group("transport")
    group.add_argument(
        "--transport",
        default="http",
        metavar="NAME",
        help="installed transport to use (default: http; `pynector transports` lists them)",
    )
    group.add_argument("--base-url", metavar="URL", help="the transport's base_url option")
    group.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a default header (repeatable); Authorization, API keys and cookies are never "
        "printed or written",
    )
    group.add_argument(
        "--provider",
        metavar="NAME",
        help="the transport's provider option (the sdk transport's API)",
    )
    group.add_argument(
        "--api-key", metavar="KEY", help="the transport's api_key option (sdk); never shown"
    )
    group.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other transport option (repeatable); VALUE is read as JSON when it parses "
        "(--option follow_redirects=true), else as a string",
    )


def add_client_arguments(parser: argparse.ArgumentParser, *, retries: int) -> None:
    """Add ``--timeout``, ``--retries`` and ``--retry-delay``."""
    group = parser.add_argument_group("client")
    group.add_argument(
        "--timeout",
        type=positive_number,
        metavar="SECONDS",
        help="deadline of each attempt (default: PYNECTOR_TIMEOUT, else 60)",
    )
    group.add_argument(
        "--retries",
        type=_whole(0),
        default=retries,
        metavar="N",
        help=f"retries of a retryable failure after the first attempt (default {retries})",
    )
    group.add_argument(
        "--retry-delay",
        type=_non_negative,
        metavar="SECONDS",
        help="first backoff before a retry, doubled each time (default 1.0); a server's "
        "Retry-After replaces it",
    )


def client_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``config=`` of the client from ``--timeout`` and ``--retry-delay``."""
    config: dict[str, Any] = {}
    if args.timeout is not None:
        config["timeout"] = args.timeout
    if args.retry_delay is not None:
        config["retry_delay"] = args.retry_delay
    return config


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _HEADER_NAME.match(name):
        shown = text if ":" not in text else f"{name}: ..."
        raise UsageError(
            f"--header {shown!r} is not a header; write it as 'Name: value', "
            "e.g. --header 'Accept: application/json'"
        )
    return name, value.strip()


def _parse_option(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not _OPTION_NAME.match(name):
        raise UsageError(
            f"--option {name if sep else text!r} is not KEY=VALUE; write it as e.g. "
            "--option follow_redirects=true or --option 'proxies=\"http://proxy:8080\"'"
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def transport_options(
    args: argparse.Namespace, header_option: str = "headers"
) -> tuple[str, dict[str, Any], Secrets]:
    """The transport name, its options and the secrets among them.

    Args:
        args: The parsed command line.
        header_option: The transport option ``--header`` fills (its
            :attr:`~pynector.cli.CLISupport.header_option`).

    Raises:
        UsageError: For a malformed ``--header`` or ``--option``.
    """
    name = str(args.transport).strip().lower()
    options: dict[str, Any] = {}
    secrets: set[str] = set()
    for text in args.option:
        key, value = _parse_option(text)
        options[key] = value
        secrets |= value_secrets(value, key)
    if args.base_url is not None:
        options["base_url"] = args.base_url
        secrets |= url_secrets(args.base_url)
    if args.provider is not None:
        options["provider"] = args.provider
    if args.api_key is not None:
        options["api_key"] = args.api_key
        secrets.add(args.api_key)
    if args.header:
        given = options.get(header_option)
        headers: dict[str, str] = dict(given) if isinstance(given, Mapping) else {}
        for text in args.header:
            header, value = _parse_header(text)
            headers[header] = value
        secrets |= secret_values(headers.items())
        options[header_option] = headers
    return name, options, Secrets(secrets)


def parse_json_argument(flag: str, text: str) -> Any:
    """Parse a JSON command-line value; ``@path`` reads it from a file, ``@-`` from stdin.

    Raises:
        UsageError: If the file cannot be read or the text is not JSON.
    """
    source = text
    if text.startswith("@"):
        source = read_argument_file(flag, text[1:])
    try:
        return json.loads(source)
    except ValueError as exc:
        raise UsageError(
            f'{flag} is not valid JSON ({exc}); e.g. {flag} \'{{"name": "x"}}\''
        ) from None


def read_argument_file(flag: str, path: str) -> str:
    """The text of ``path`` (``-``: standard input) for ``flag @path``.

    Raises:
        UsageError: If the file cannot be read.
    """
    import sys

    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise UsageError(f"{flag} @{path}: cannot read the file: {exc.strerror or exc}") from None


# -- errors in the command line's words -------------------------------------------------

# The Python name of a setting -> the flag that sets it.
_FLAGS = {
    "base_url": "--base-url",
    "api_key": "--api-key",
    "provider": "--provider",
    "default_headers": "--header",
    "transport_type": "--transport",
    "timeout": "--timeout",
    "retry_delay": "--retry-delay",
    "retry_count": "--retries",
    "max_connections": "--concurrency",
    "adaptive_concurrency": "--concurrency auto",
    "rate_limit": "--rate",
    "store": "--store",
    "limit_key": "--limit-key",
    "shared_concurrency": "--shared-concurrency",
    "store_failure": "--store-failure",
}


# A transport option -> the flag that sets it; any other is given as --option NAME=VALUE.
_OPTION_FLAGS = {
    "base_url": "--base-url",
    "headers": "--header",
    "default_headers": "--header",
    "api_key": "--api-key",
    "provider": "--provider",
}


def _option_flag(name: str) -> str:
    return _OPTION_FLAGS.get(name, f"--option {name}")


def _option_names(match: re.Match[str]) -> str:
    names = [name.strip() for name in match.group("names").split(",")]
    return f"{match.group('head')}{', '.join(map(_option_flag, names))}."


def cli_message(message: str, args: argparse.Namespace, *, about_request: bool = False) -> str:
    """``message`` (from the client or a transport) with settings named by their flags.

    ``base_url='ftp://x'`` becomes ``--base-url 'ftp://x'``, ``config['timeout']=0``
    ``--timeout 0``, ``transport_type`` ``--transport``, and an option given with
    ``--option follow_redirects=5`` stays ``--option follow_redirects=5``.

    Args:
        message: The error message.
        args: The parsed command line (its ``--option`` names).
        about_request: The message is about a request's data, whose own keys
            (``timeout``, ``headers``, ...) keep their names: only ``base_url``
            is a flag there.
    """
    flags = {"base_url": _FLAGS["base_url"]} if about_request else dict(_FLAGS)
    if not about_request:
        for text in getattr(args, "option", ()):
            name = text.partition("=")[0].strip()
            if _OPTION_NAME.match(name):
                flags[name] = f"--option {name}"
    names = "|".join(re.escape(name) for name in sorted(flags, key=len, reverse=True))
    if not about_request:
        # A transport's list of its options, and its suggestion for a misspelt one.
        message = re.sub(
            r"(?P<head>Its options: )(?P<names>\w+(?:, \w+)*)\.", _option_names, message
        )
        message = re.sub(
            r"(unknown option '\w+'\. Did you mean )'(\w+)'\?",
            lambda match: f"{match.group(1)}{_option_flag(match.group(2))}?",
            message,
        )

    def assigned(match: re.Match[str]) -> str:
        flag = flags[match.group("key")]
        value = match.groupdict().get("value")
        if flag.startswith("--option"):
            return f"{flag}={value or ''}"
        return f"{flag} {value}" if value else f"{flag} "

    message = re.sub(
        rf"config=\{{['\"](?P<key>{names})['\"]: (?P<value>[^}}]*)\}}", assigned, message
    )
    message = re.sub(rf"config\[['\"](?P<key>{names})['\"]\]=", assigned, message)
    message = re.sub(rf"(?<![\w.'\"\[-])(?P<key>{names})=", assigned, message)
    message = re.sub(rf"'(?P<key>{names})'", lambda match: flags[match.group("key")], message)
    # Advice that now says the same thing twice ("a larger --timeout ... or set --timeout ...").
    message = re.sub(r"(--[\w-]+ \S+) or set \1", r"\1", message)
    # A transport's advice on how it is created: on the command line, a flag does it.
    message = message.replace("create the transport with --", "run with --")
    # The bare names of the two settings every command takes ("needs a base_url").
    return re.sub(
        r"(?<![\w'-])(base_url|transport_type)(?![\w'])",
        lambda match: _FLAGS[match.group(1)],
        message,
    )


def cli_usage_error(exc: ConfigurationError, args: argparse.Namespace) -> UsageError:
    """A :class:`UsageError` whose message is ``exc``'s in the command line's words."""
    return UsageError(cli_message(str(exc), args))


def check_transport(name: str, args: argparse.Namespace) -> CLISupport:
    """Make sure ``--transport`` names an installed transport, before anything else.

    Returns:
        What the command line knows about it (its ``pynector_cli_support`` hook,
        else the defaults that fit any transport).

    Raises:
        UsageError: For an unknown (or broken) transport: the message suggests
            the closest name and lists the installed ones.
    """
    from pynector.errors import ConfigurationError
    from pynector.registry import resolve_transport

    from ._support import cli_support

    key = str(name).strip().lower()
    try:
        factory = resolve_transport(key)
    except ConfigurationError as exc:
        raise cli_usage_error(exc, args) from exc
    return cli_support(key, factory)
