"""What the command line knows about a transport: :class:`CLISupport`, and how it is found.

Core knows no transport. Everything ``pynector request`` and ``pynector batch``
need to know about one (how the command line's words become its request data,
how an input line becomes a request, how its replies are printed and written as
JSON, what a request costs in tokens) is a :class:`CLISupport`. The defaults
fit any transport: the request data is the ``--json`` value, a reply is shown
as JSON. A transport's distribution says more by implementing the
``pynector_cli_support`` hook on the transport factory its
``pynector.transports`` entry point names (see ``docs/plugins.md``).

The hook is asked of that factory alone, through a plugin manager that lives
only for the lookup: nothing is registered for the process, ``PYNECTOR_PLUGINS``
does not hide a transport's own support, and a client pays nothing for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TextIO

from ._errors import LineError, UsageError
from ._json import jsonable

if TYPE_CHECKING:
    from pynector._client import Pynector
    from pynector.redact import Scrubber

__all__ = [
    "BatchAPI",
    "BatchAPILine",
    "CLISupport",
    "LineError",
    "RemoteStatus",
    "RequestWords",
    "UsageError",
    "check_id",
    "cli_support",
    "read_batch_api_line",
]

_CHARS_PER_TOKEN = 4


@dataclass(slots=True, frozen=True)
class RequestWords:
    """What ``pynector request`` was given, before it is request data.

    Attributes:
        transport: The transport's name.
        method: The method word (upper case), or ``None``.
        target: The URL or path word, or ``None``.
        body: ``("json", value)`` for ``--json``, ``("content", text)`` for
            ``--data``, or ``None``.
        params: The ``--param NAME=VALUE`` pairs (a name given twice holds a list).
        base_url: The ``--base-url``, if any.
    """

    transport: str
    method: str | None = None
    target: str | None = None
    body: tuple[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None


def check_id(value: object, what: str = "id") -> str | int:
    """Return ``value`` if it can be a request id (a non-empty string or an integer).

    Raises:
        LineError: Otherwise.
    """
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise LineError(f'"{what}" must be a non-empty string or an integer, not {value!r:.40}')


class BatchAPILine(NamedTuple):
    """A line of a provider's batch input file, its shape checked.

    An OpenAI Batch API line (``custom_id``, ``method``, ``url``, ``body``) or an
    Anthropic Message Batches line (``custom_id``, ``params``: then ``url`` is
    ``None`` and ``method`` ``"POST"``). What the ``method`` and ``url`` may be is
    the transport's to decide.
    """

    custom_id: str | int
    url: str | None
    method: object
    body: dict[str, Any]


_OPENAI_KEYS = frozenset({"custom_id", "method", "url", "body"})
_ANTHROPIC_KEYS = frozenset({"custom_id", "params"})


def _unexpected(extra: set[str], expected: str) -> LineError:
    names = ", ".join(sorted(extra))
    return LineError(
        f"a Batch API line (it has custom_id) has unexpected key(s) {names}; "
        f"it takes only {expected}"
    )


def read_batch_api_line(line: Mapping[str, Any]) -> BatchAPILine:
    """Check a line that has ``custom_id`` as a provider's batch input line.

    Raises:
        LineError: For unexpected or missing keys, a bad ``custom_id``, a
            ``body`` / ``params`` that is not an object or a ``url`` that is not
            a string.
    """
    keys = set(line)
    custom_id = check_id(line.get("custom_id"), "custom_id")
    if "params" in keys:  # Anthropic Message Batches
        if keys != _ANTHROPIC_KEYS:
            raise _unexpected(keys - _ANTHROPIC_KEYS, "custom_id, params")
        params = line["params"]
        if type(params) is not dict:
            raise LineError('"params" must be a JSON object of the request\'s arguments')
        return BatchAPILine(custom_id, None, "POST", params)
    if extra := keys - _OPENAI_KEYS:
        raise _unexpected(extra, "custom_id, method, url, body")
    if missing := {"url", "body"} - keys:
        raise LineError(f"a Batch API line (it has custom_id) needs {', '.join(sorted(missing))}")
    url, body = line["url"], line["body"]
    if not isinstance(url, str) or not url:
        raise LineError('"url" must be a string such as "/v1/chat/completions"')
    if type(body) is not dict:
        raise LineError('"body" must be a JSON object of the request\'s arguments')
    return BatchAPILine(custom_id, url, line.get("method", "POST"), body)


@dataclass(slots=True, frozen=True)
class RemoteStatus:
    """Where a batch at a provider's Batch API stands.

    Attributes:
        state: The provider's own word for it (``in_progress``, ``completed``,
            ``ended``, ...).
        ended: Whether it is over: its results are final and can be downloaded.
        done: Requests finished so far (succeeded or failed).
        total: Requests in the batch.
        missing: For a request an ended batch has no result for, the code of
            its failure: ``batch_expired``, ``batch_cancelled`` or
            ``batch_failed``.
        message: Why the batch failed as a whole, if it did.
    """

    state: str
    ended: bool
    done: int = 0
    total: int = 0
    missing: str = "batch_failed"
    message: str | None = None


class BatchAPI(Protocol):
    """A provider's Batch API, as ``pynector batch --via batch-api`` drives it.

    Returned by :meth:`CLISupport.batch_api`. The command line reads the
    input, splits it into batches within :attr:`max_requests` and
    :attr:`max_bytes` (one batch per ``group``), keeps the batch ids in a
    state file, polls, and writes the results in the chosen output format.

    Attributes:
        provider: ``"openai"`` or ``"anthropic"``: the format of its result lines.
        max_requests: Most requests in one batch.
        max_bytes: Most bytes of request lines in one batch.
    """

    provider: str
    max_requests: int
    max_bytes: int

    def request_line(self, custom_id: str, data: Any) -> tuple[str, bytes]:
        """``(group, line)``: the batch input line of a request, and which batches may hold it.

        Raises:
            LineError: If the request cannot go through the Batch API.
        """
        ...

    async def create(self, group: str, lines: Sequence[bytes]) -> str:
        """Upload the lines and create a batch of them; return its id."""
        ...

    async def status(self, batch_id: str) -> RemoteStatus:
        """Where the batch stands."""
        ...

    async def results(self, batch_id: str) -> list[bytes]:
        """The result lines of an ended batch, in the provider's format (errors too)."""
        ...

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel the batch."""
        ...


def _characters(value: Any, depth: int = 0) -> int:
    if isinstance(value, str):
        return len(value)
    if depth > 64:
        return 0
    if isinstance(value, Mapping):
        return sum(_characters(item, depth + 1) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_characters(item, depth + 1) for item in value)
    return 0


class CLISupport:
    """What the command line knows about one transport; the defaults fit any transport.

    Subclass it and override what your transport does differently, then return
    an instance from your factory's ``pynector_cli_support`` hook. Every method
    may raise :class:`UsageError` (a command line that makes no request) or
    :class:`LineError` (an input line that makes no request), with a message
    that names the fix.

    Attributes:
        header_option: The transport option that ``--header`` fills.
    """

    header_option: str = "headers"

    def request_data(self, words: RequestWords) -> Any:
        """The request data of ``pynector request``: by default the ``--json`` value.

        Raises:
            UsageError: If the words do not make a request for this transport.
        """
        name = words.transport
        if words.params:
            raise UsageError(f"the {name} transport takes no --param; put the arguments in --json")
        if words.method not in (None, "POST"):
            raise UsageError(f"the {name} transport takes no method ({words.method})")
        if words.body is None:
            raise UsageError(
                f"give the request data of the {name} transport with --json, e.g. "
                '--json \'{"model": "gpt-4o-mini", "messages": '
                '[{"role": "user", "content": "Hi"}]}\''
            )
        if words.target is not None:
            raise UsageError(
                f"the {name} transport takes no URL or path ({words.target!r}); "
                "give the whole request with --json"
            )
        return words.body[1]

    def read_line(
        self, line: dict[str, Any], options: Mapping[str, Any]
    ) -> tuple[str | int | None, Any]:
        """An input line of ``pynector batch`` as ``(id, request data)``.

        By default the line is the request data, with an optional top-level
        ``"id"`` taken out of it (``None``: the line number is the id).

        Args:
            line: The line's JSON object (the method may change it).
            options: The transport options given on the command line
                (``base_url``, ...).

        Raises:
            LineError: If the line is not a request for this transport.
        """
        request_id = check_id(line.pop("id")) if "id" in line else None
        return request_id, line

    def estimate_tokens(self, data: Any) -> int:
        """The tokens a request may use, for ``--tpm``: by default its text / 4."""
        return math.ceil(_characters(data) / _CHARS_PER_TOKEN)

    def reply_json(self, reply: Any, secrets: Scrubber | None = None) -> Any:
        """The JSON form of a reply (``"response"`` of a result line).

        By default :func:`pynector.cli.jsonable`: pydantic models dumped,
        dataclasses as objects, bytes as text or base64 (scrubbed of ``secrets``
        first), anything else its ``repr``.
        """
        return jsonable(reply, secrets)

    def error_reply(self, error: BaseException) -> Any | None:
        """The reply an error carries (an HTTP status error's response), or ``None``."""
        return None

    def print_reply(self, reply: Any, secrets: Scrubber, out: TextIO) -> None:
        """Print a reply for ``pynector request``: by default its JSON form, indented."""
        text = json.dumps(self.reply_json(reply, secrets), indent=2, ensure_ascii=False)
        out.write(secrets.scrub(text) + "\n")

    def batch_api(self, client: Pynector) -> BatchAPI | None:
        """The provider's Batch API behind ``client``, for ``--via batch-api``; by default none.

        Raises:
            UsageError: If the transport has a Batch API but not for this client
                (say, a provider without one).
        """
        return None


_DEFAULT = CLISupport()
_HOOK = "pynector_cli_support"


def cli_support(name: str, factory: object) -> CLISupport:
    """The :class:`CLISupport` the transport ``factory`` declares, else the default.

    The factory's ``pynector_cli_support`` is its hook implementation, marked
    with ``@pynector.hookimpl`` or not (as pytest takes any ``pytest_*``
    function in a plugin), so the transport's module need not import pluggy.

    Args:
        name: The transport's name (``--transport``).
        factory: What :func:`pynector.registry.resolve_transport` returned.

    Raises:
        TypeError: If the hook returns something that is not a ``CLISupport``.
    """
    if not callable(getattr(factory, _HOOK, None)):
        return _DEFAULT
    import pluggy

    from pynector import hookspecs

    class _FactoryManager(pluggy.PluginManager):
        def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
            options = super().parse_hookimpl_opts(plugin, name)
            if options is None and name == _HOOK:
                return {}
            return options

    manager = _FactoryManager("pynector")
    manager.add_hookspecs(hookspecs)
    manager.register(factory, name=f"transport {name}")
    found = manager.hook.pynector_cli_support(transport_type=name)
    if found is None:
        return _DEFAULT
    if not isinstance(found, CLISupport):
        raise TypeError(
            f"the {name} transport's pynector_cli_support hook returned {found!r}, not a "
            "pynector.cli.CLISupport; return an instance of a CLISupport subclass, or None"
        )
    return found
