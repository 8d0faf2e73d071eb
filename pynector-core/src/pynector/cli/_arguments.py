"""What ``pynector request`` and ``pynector batch`` share.

- The transport arguments (``--transport``, ``--base-url``, ``--header``,
  ``--provider``, ``--api-key``, ``--option``) and the client arguments
  (``--timeout``, ``--retries``, ``--retry-delay``), turned into the keyword
  arguments of :class:`pynector.Pynector`.
- :class:`Secrets`: every credential given on the command line, scrubbed from
  anything the commands print or write (as text, percent-encoded, in base64,
  and in bodies that are not text).
- :func:`check_transport`, :func:`cli_usage_error`: an unknown ``--transport``
  first, and the client's error messages in the command line's words
  (``--base-url``, not ``base_url=``).
- :func:`jsonable`, :func:`error_json`: the JSON form of a reply and of an error,
  for any transport.
- :func:`attempts_plugin`: a private plugin that counts each request's attempts
  (and holds them to a ``--tpm`` budget) through the client's hooks.

Only the standard library is imported here, so ``pynector --help`` stays light.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..redact import REDACTED, Scrubber, is_secret_header, is_secret_name

if TYPE_CHECKING:
    from ._tokens import TokenBudget
    from ..errors import ConfigurationError
    from ..hookspecs import RequestInfo, RetryWaitInfo

__all__ = [
    "TALLY",
    "Secrets",
    "Tally",
    "UsageError",
    "add_client_arguments",
    "add_transport_arguments",
    "attempts_plugin",
    "check_transport",
    "cli_usage_error",
    "client_config",
    "error_json",
    "is_http_response",
    "jsonable",
    "parse_json_argument",
    "positive_number",
    "read_argument_file",
    "transport_options",
    "whole_number",
]

_SECRET_OPTION = re.compile(r"key|token|secret|password|passwd|credential|auth", re.IGNORECASE)
_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_MIN_SECRET = 4  # shorter values would mangle unrelated text and are not worth hiding
_MAX_DEPTH = 64


class UsageError(Exception):
    """A bad command line or an unusable input or output: exit status 2, nothing sent."""


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
    group.add_argument("--provider", metavar="NAME", help="sdk transport: openai or anthropic")
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


def _header_secrets(name: str, value: str) -> list[str]:
    if not value or not is_secret_header(name):
        return []
    found = [value]
    _scheme, _, credential = value.partition(" ")
    if credential.strip():
        found.append(credential.strip())
    if _scheme.lower() == "basic" and credential.strip():
        with contextlib.suppress(ValueError):  # UnicodeDecodeError is a ValueError
            decoded = base64.b64decode(credential.strip(), validate=True).decode()
            found += [decoded, decoded.partition(":")[2]]  # user:password, and the password
    return found


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    # Values of secret query parameters (api_key=, token=, ...), decoded and as written.
    found = [
        value
        for name, value in parse_qsl(parts.query, keep_blank_values=False)
        if is_secret_name(name)
    ]
    for field in parts.query.split("&"):
        name, sep, value = field.partition("=")
        if sep and value and is_secret_name(unquote(name)):
            found.append(value)
    userinfo, at, _host = parts.netloc.rpartition("@")
    if not at:
        return found
    found += [userinfo, unquote(userinfo)]
    # The transport sends them as Basic auth, which a server may echo back.
    found.append(base64.b64encode(unquote(userinfo).encode()).decode())
    _user, colon, password = userinfo.partition(":")
    if colon and password:
        found += [password, unquote(password)]
    return found


def request_secrets(data: Any) -> list[str]:
    """The secrets of one request: credential headers, URL credentials, secret parameters."""
    if not isinstance(data, Mapping):
        return []
    found: list[str] = []
    headers = data.get("headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(value, str):
                found += _header_secrets(str(name), value)
    for key in ("url", "path"):
        value = data.get(key)
        if isinstance(value, str):
            found += _url_secrets(value)
    params = data.get("params")
    pairs: Iterable[Any] = ()
    if isinstance(params, Mapping):
        pairs = params.items()
    elif isinstance(params, list):
        pairs = (pair for pair in params if isinstance(pair, list | tuple) and len(pair) == 2)
    elif isinstance(params, str):
        found += _url_secrets("?" + params)
    for name, value in pairs:
        if is_secret_name(str(name)):
            found += [str(item) for item in (value if isinstance(value, list) else [value])]
    return found


def _value_secrets(name: str, value: Any) -> list[str]:
    """Secret strings inside a ``--option`` value."""
    if isinstance(value, str):
        secret = _SECRET_OPTION.search(name) or is_secret_name(name)
        return [value] if secret else _url_secrets(value)
    if isinstance(value, Mapping):
        found: list[str] = []
        for key, item in value.items():
            if isinstance(item, str) and is_secret_header(str(key)):
                found += _header_secrets(str(key), item)
            else:
                found += _value_secrets(str(key), item)
        return found
    return []


def transport_options(args: argparse.Namespace) -> tuple[str, dict[str, Any], Secrets]:
    """The transport name, its options and the secrets among them.

    ``--header`` becomes the ``headers`` option (``default_headers`` for the sdk
    transport, which passes it to the SDK client).

    Raises:
        UsageError: For a malformed ``--header`` or ``--option``.
    """
    name = str(args.transport).strip().lower()
    options: dict[str, Any] = {}
    secrets: list[str] = []
    for text in args.option:
        key, value = _parse_option(text)
        options[key] = value
        secrets += _value_secrets(key, value)
    if args.base_url is not None:
        options["base_url"] = args.base_url
        secrets += _url_secrets(args.base_url)
    if args.provider is not None:
        options["provider"] = args.provider
    if args.api_key is not None:
        options["api_key"] = args.api_key
        secrets.append(args.api_key)
    if args.header:
        key = "default_headers" if name == "sdk" else "headers"
        given = options.get(key)
        headers: dict[str, str] = dict(given) if isinstance(given, Mapping) else {}
        for text in args.header:
            header, value = _parse_header(text)
            headers[header] = value
            secrets += _header_secrets(header, value)
        options[key] = headers
    return name, options, Secrets(secrets)


class Secrets(Scrubber):
    """Credentials from the command line, and how to keep them out of any text.

    A :class:`pynector.redact.Scrubber` (each secret found as it is,
    percent-encoded, JSON-escaped and in base64) that grows with ``+`` and
    scrubs JSON values too.

    Args:
        values: The secret strings; values shorter than 4 characters are ignored.
    """

    __slots__ = ()

    def __add__(self, values: Iterable[str]) -> Secrets:
        """These secrets and ``values``."""
        added = [value for value in values if isinstance(value, str) and len(value) >= _MIN_SECRET]
        if not added or all(value in self.values for value in added):
            return self
        return Secrets([*self.values, *added])

    def scrub_object(self, value: Any) -> Any:
        """A copy of a JSON value with the secrets replaced in every string and key.

        Unlike :meth:`scrub` on the serialised text, this can never break the
        JSON (a secret that looks like a number is not replaced inside numbers).
        """
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_object(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_object(item) for item in value]
        return value

    def dumps(self, value: Any) -> str:
        """``json.dumps(value)`` (compact, UTF-8 text) with no secret in it."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if self.values and self.found_in(text):
            text = json.dumps(self.scrub_object(value), ensure_ascii=False, separators=(",", ":"))
        return text


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
    import sys

    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise UsageError(f"{flag} @{path}: cannot read the file: {exc.strerror or exc}") from None


# -- attempts and the token budget, through the client's hooks ------------------------


class Tally:
    """What the hooks learn about the request the current task is sending."""

    __slots__ = ("attempts", "tokens")

    def __init__(self, tokens: int) -> None:
        self.attempts = 1
        self.tokens = tokens


TALLY: ContextVar[Tally | None] = ContextVar("pynector_batch_tally", default=None)


def attempts_plugin(budget: TokenBudget | None) -> object:
    """A private plugin: counts retries, and holds attempts to the token budget."""
    from ..hookspecs import hookimpl

    class Attempts:
        @hookimpl
        def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
            tally = TALLY.get()
            if tally is not None:
                tally.attempts += 1

    if budget is None:
        return Attempts()

    class AttemptsAndTokens(Attempts):
        @hookimpl
        def pynector_request(self, info: RequestInfo) -> Any:
            tally = TALLY.get()
            if tally is None or budget is None:
                return None
            return budget.reserve(tally.tokens)

    return AttemptsAndTokens()


# -- JSON forms ------------------------------------------------------------------


def is_http_response(value: object) -> bool:
    """Whether ``value`` looks like an HTTP response (pynector-http's, httpx's, ...)."""
    try:
        return (
            isinstance(getattr(value, "status_code", None), int)
            and hasattr(value, "headers")
            and isinstance(getattr(value, "content", None), bytes)
        )
    except Exception:  # a streamed response whose body was not read
        return False


def _bytes_json(data: bytes, secrets: Secrets | None) -> Any:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if secrets is not None:
            data = secrets.scrub_bytes(data)
        return {"base64": base64.b64encode(data).decode("ascii")}


def _is_json_type(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def http_response_json(response: Any, secrets: Secrets | None = None) -> dict[str, Any]:
    """``{"status_code", "headers", "body"}``, or ``"body_base64"`` for binary content.

    The body is the parsed JSON when the Content-Type is JSON and it parses, else
    the decoded text. Secret headers (``Set-Cookie``, ...; see
    :func:`pynector.redact.is_secret_header`) show ``[redacted]``. A binary body
    is scrubbed of ``secrets`` as bytes before it is encoded (text is scrubbed
    when the JSON is written).
    """
    headers: dict[str, str] = {}
    content_type = ""
    for name, value in response.headers.items():
        lowered = str(name).lower()
        headers[lowered] = REDACTED if is_secret_header(lowered) else str(value)
        if lowered == "content-type":
            content_type = str(value)
    result: dict[str, Any] = {"status_code": response.status_code, "headers": headers}
    content: bytes = response.content
    if content and _is_json_type(content_type):
        try:
            result["body"] = json.loads(content)
        except ValueError:
            pass
        else:
            return result
    encoding = getattr(response, "encoding", None) or "utf-8"
    try:
        result["body"] = content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        if secrets is not None:
            content = secrets.scrub_bytes(content)
        result["body_base64"] = base64.b64encode(content).decode("ascii")
    return result


def jsonable(value: Any, secrets: Secrets | None = None, _depth: int = 0) -> Any:
    """A JSON-serialisable form of any transport's reply.

    An HTTP response becomes ``{"status_code", "headers", "body"}``; an object
    with ``model_dump`` (the SDKs' pydantic models) what ``model_dump(mode="json")``
    returns; bytes the UTF-8 text, or ``{"base64": ...}`` when they are not text;
    dicts, lists and JSON scalars stay as they are; anything else its ``repr``.
    Bytes that are not text are scrubbed of ``secrets`` before they are encoded.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > _MAX_DEPTH:
        return repr(value)
    depth = _depth + 1
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, secrets, depth) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item, secrets, depth) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_json(bytes(value), secrets)
    if is_http_response(value):
        return http_response_json(value, secrets)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"), secrets, depth)
        except Exception:  # a model that cannot dump itself is shown as its repr
            return repr(value)
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(
            {field.name: getattr(value, field.name) for field in dataclasses.fields(value)},
            secrets,
            depth,
        )
    return repr(value)


def error_json(exc: BaseException, secrets: Secrets | None = None) -> dict[str, Any]:
    """``{"type", "message", "status_code"?, "retryable", "response"?}`` for an error.

    ``response`` is the error's HTTP response (an HTTP status error's), when it
    carries one; a binary body is scrubbed of ``secrets`` as bytes.
    """
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        error["status_code"] = status
    error["retryable"] = bool(getattr(exc, "retryable", False))
    response = getattr(exc, "response", None)
    if response is not None and is_http_response(response):
        # An unread streamed body, for one, cannot be shown: the message says enough.
        with contextlib.suppress(Exception):
            error["response"] = http_response_json(response, secrets)
    return error


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
    "rate_limit": "--rate",
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


def check_transport(name: str, args: argparse.Namespace) -> None:
    """Make sure ``--transport`` names an installed transport, before anything else.

    Raises:
        UsageError: For an unknown (or broken) transport: the message suggests
            the closest name and lists the installed ones.
    """
    from ..errors import ConfigurationError
    from ..registry import resolve_transport

    try:
        resolve_transport(name)
    except ConfigurationError as exc:
        raise cli_usage_error(exc, args) from exc
