"""The error hierarchy (DESIGN section 4)."""

from __future__ import annotations

import builtins

import pytest

from pynector import errors


def test_everything_is_a_pynector_error() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.PynectorError), name


def test_timeout_error_is_also_the_builtin_timeout_error() -> None:
    error = errors.TimeoutError("late", timeout=1.5)
    assert isinstance(error, builtins.TimeoutError)
    assert error.retryable is True
    assert error.timeout == 1.5


def test_transport_error_carries_retryable_and_retry_after() -> None:
    error = errors.TransportError("x", retryable=True, retry_after=2.0)
    assert (error.retryable, error.retry_after) == (True, 2.0)
    assert errors.TransportError("y").retryable is False
    assert errors.ConnectionError("refused").retryable is True


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, errors.BadRequestError, False),
        (401, errors.AuthenticationError, False),
        (403, errors.AuthenticationError, False),
        (404, errors.NotFoundError, False),
        (408, errors.HTTPStatusError, True),
        (409, errors.ConflictError, False),
        (418, errors.HTTPStatusError, False),
        (422, errors.UnprocessableEntityError, False),
        (429, errors.RateLimitError, True),
        (500, errors.ServerError, True),
        (503, errors.ServerError, True),
    ],
)
def test_status_codes_map_to_classes_and_retryability(
    status: int, cls: type[errors.HTTPStatusError], retryable: bool
) -> None:
    chosen = errors.status_error_class(status)
    assert chosen is cls
    error = chosen(f"status {status}", status_code=status, response="r")
    assert error.retryable is retryable
    assert (error.status_code, error.response) == (status, "r")


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.PluginError, errors.ConfigurationError)


def test_every_error_class_is_documented() -> None:
    for name in errors.__all__:
        assert getattr(errors, name).__doc__, name


def test_seed_error_imports_work_as_written() -> None:
    from pynector.errors import (
        ConfigurationError,  # Error in client or transport configuration
        PynectorError,  # Base exception for all Pynector errors
        TimeoutError,  # Request timed out
        TransportError,  # Error in transport layer (e.g., connection error)
    )

    assert {ConfigurationError, TimeoutError, TransportError} <= set(PynectorError.__subclasses__())
