"""What pynector needs to know about each supported provider SDK.

One :class:`Provider` record per provider: which package and client class to
import, how to install it, which environment variables hold its credentials,
its default operation, and the client options pynector sets itself. Nothing
here imports a provider SDK; :meth:`Provider.load` does, when a transport for
that provider is created.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pynector.errors import ConfigurationError

__all__ = ["PROVIDERS", "SUPPORTED_PROVIDERS", "Provider", "get_provider"]


def _openai_has_credentials(options: Mapping[str, Any], client: Any) -> bool:
    # Mirrors the openai SDK: api_key, admin_api_key or workload_identity, each
    # from its option or (for the keys) from the environment.
    del client  # the openai SDK itself raises before a client without credentials exists
    return bool(
        options.get("api_key")
        or options.get("admin_api_key")
        or options.get("workload_identity")
        or os.environ.get("OPENAI_API_KEY")
        or os.environ.get("OPENAI_ADMIN_KEY")
    )


def _anthropic_has_credentials(options: Mapping[str, Any], client: Any) -> bool:
    # The anthropic SDK resolves credentials from options, the environment and
    # profile files on disk when the client is constructed; ask the client.
    del options
    return bool(client.api_key or client.auth_token or client.credentials is not None)


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider SDK.

    Attributes:
        name: The ``provider=`` value (``"openai"``).
        module: The SDK's import name.
        distribution: The SDK's name on PyPI, for the install hint.
        client_class: The async client class in ``module``.
        base_error: The base class of the SDK's exceptions in ``module``.
        api_key_env: The environment variable the SDK reads the API key from.
        default_operation: The operation used when the request names none.
        example_operations: Operations shown in error messages.
        fixed_options: Client options pynector always sets, with the reason
            shown if the user passes them.
        secret_options: Client options whose values are credentials.
        has_credentials: ``(options, client) -> bool``: whether the client can
            authenticate (``client`` is ``None`` before it is constructed).
        check_credentials_after: Whether ``has_credentials`` needs the client.
    """

    name: str
    module: str
    distribution: str
    client_class: str
    base_error: str
    api_key_env: str
    default_operation: str
    example_operations: tuple[str, ...]
    fixed_options: Mapping[str, tuple[Any, str]]
    secret_options: frozenset[str]
    has_credentials: Callable[[Mapping[str, Any], Any], bool] = field(repr=False)
    check_credentials_after: bool = False

    @property
    def label(self) -> str:
        """The provider's name as written in messages: ``"OpenAI"``."""
        return {"openai": "OpenAI", "anthropic": "Anthropic"}.get(self.name, self.name)

    @property
    def install_hint(self) -> str:
        """The exact command that installs the SDK."""
        return f"pip install {self.distribution}"

    def load(self) -> ModuleType:
        """Import the SDK, or raise a :class:`ConfigurationError` naming the install command."""
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise ConfigurationError(
                f"provider {self.name!r} needs the {self.distribution} package, which could not "
                f"be imported ({type(exc).__name__}: {exc}). Install it with: {self.install_hint}"
            ) from exc


_RETRIES = (
    "pynector retries, so the SDK's own retries are off (max_retries=0); use "
    "client.request_with_retry(data, max_retries=...) or config={'retry_count': ...}"
)
_TRACING = (
    "pynector traces each call once through its telemetry plugin (pip install "
    "pynector-otel; Pynector(enable_telemetry=...)), so the SDK's own tracing is off"
)

PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        name="openai",
        module="openai",
        distribution="openai",
        client_class="AsyncOpenAI",
        base_error="OpenAIError",
        api_key_env="OPENAI_API_KEY",
        default_operation="chat.completions.create",
        example_operations=(
            "chat.completions.create",
            "embeddings.create",
            "responses.create",
            "completions.create",
            "moderations.create",
        ),
        fixed_options={"max_retries": (0, _RETRIES)},
        secret_options=frozenset({"api_key", "admin_api_key", "webhook_secret"}),
        has_credentials=_openai_has_credentials,
    ),
    "anthropic": Provider(
        name="anthropic",
        module="anthropic",
        distribution="anthropic",
        client_class="AsyncAnthropic",
        base_error="AnthropicError",
        api_key_env="ANTHROPIC_API_KEY",
        default_operation="messages.create",
        example_operations=(
            "messages.create",
            "messages.count_tokens",
            "models.list",
            "beta.messages.create",
        ),
        fixed_options={
            "max_retries": (0, _RETRIES),
            # No spans and no trace headers of the SDK's own: pynector's span is the one.
            "open_telemetry": ({"traces": {"enabled": False}, "propagation": False}, _TRACING),
        },
        secret_options=frozenset({"api_key", "auth_token", "webhook_key", "config"}),
        has_credentials=_anthropic_has_credentials,
        check_credentials_after=True,
    ),
}

SUPPORTED_PROVIDERS: tuple[str, ...] = tuple(sorted(PROVIDERS))
"""The ``provider=`` values this version supports."""


def get_provider(name: object) -> Provider:
    """Return the :class:`Provider` for ``provider=name``.

    Raises:
        ConfigurationError: If ``name`` is missing or not supported; the message
            lists the supported providers.
    """
    supported = ", ".join(repr(p) for p in SUPPORTED_PROVIDERS)
    example = "Pynector(transport_type='sdk', provider='openai', api_key=...)"
    if name is None:
        raise ConfigurationError(
            f"the sdk transport needs provider=...: one of {supported}, e.g. {example}"
        )
    key = name.strip().lower() if isinstance(name, str) else name
    spec = PROVIDERS.get(key) if isinstance(key, str) else None
    if spec is None:
        hint = ""
        if isinstance(key, str):
            close = difflib.get_close_matches(key, SUPPORTED_PROVIDERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"unknown provider {name!r} for the sdk transport.{hint} Supported providers: "
            f"{supported}, e.g. {example}"
        )
    return spec
