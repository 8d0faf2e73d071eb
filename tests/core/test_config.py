"""Configuration: config= over PYNECTOR_* over defaults, validated with clear errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pynector import Pynector
from pynector._config import Config, load_config
from pynector.errors import ConfigurationError
from pynector.testing import MockTransport


def test_defaults_apply_when_nothing_is_set() -> None:
    assert load_config(None, {}) == Config()
    assert Config().timeout == 60.0
    assert Config().retry_count == 3
    assert Config().max_connections == 100
    assert Config().rate_limit is None


def test_config_wins_over_environment_which_wins_over_defaults() -> None:
    environ = {"PYNECTOR_TIMEOUT": "5", "PYNECTOR_RETRY_COUNT": "7", "PYNECTOR_RATE_LIMIT": "600/m"}
    loaded = load_config({"timeout": 2.5}, environ)
    assert loaded.timeout == 2.5
    assert loaded.retry_count == 7
    assert loaded.rate_limit == (600, 60.0)
    assert loaded.max_connections == 100


def test_the_client_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNECTOR_MAX_CONNECTIONS", "12")
    client = Pynector(transport=MockTransport(lambda d, **o: d))
    assert client.config.max_connections == 12


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, (10, 1.0)),
        ("10/s", (10, 1.0)),
        ("600/m", (600, 60.0)),
        ("5/min", (5, 60.0)),
        (0.5, (1, 2.0)),
        (2.5, (3, 1.2)),
        (None, None),
    ],
)
def test_rate_limit_forms(value: Any, expected: Any) -> None:
    assert load_config({"rate_limit": value}, {}).rate_limit == expected


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"timeout": -1}, "config['timeout']=-1"),
        ({"timeout": 0}, "config['timeout']=0"),
        ({"timeout": math.nan}, "config['timeout']=nan"),
        ({"timeout": math.inf}, "config['timeout']=inf"),
        ({"timeout": "fast"}, "config['timeout']='fast'"),
        ({"timeout": True}, "config['timeout']=True"),
        ({"retry_count": -1}, "config['retry_count']=-1"),
        ({"retry_count": 1.5}, "config['retry_count']=1.5"),
        ({"max_connections": 0}, "config['max_connections']=0"),
        ({"retry_delay": -0.5}, "config['retry_delay']=-0.5"),
        ({"rate_limit": "abc"}, "config['rate_limit']='abc'"),
        ({"rate_limit": "10/h"}, "config['rate_limit']='10/h'"),
        ({"rate_limit": 0}, "config['rate_limit']=0"),
        ({"rate_limit": -3}, "config['rate_limit']=-3"),
    ],
)
def test_bad_values_name_the_key_and_the_value(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(config, {})
    assert named in str(caught.value)
    assert "expected" in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"PYNECTOR_TIMEOUT": "abc"}, "PYNECTOR_TIMEOUT='abc'"),
        ({"PYNECTOR_TIMEOUT": "-2"}, "PYNECTOR_TIMEOUT='-2'"),
        ({"PYNECTOR_RETRY_COUNT": "three"}, "PYNECTOR_RETRY_COUNT='three'"),
        ({"PYNECTOR_MAX_CONNECTIONS": "1.5"}, "PYNECTOR_MAX_CONNECTIONS='1.5'"),
        ({"PYNECTOR_RATE_LIMIT": "fast"}, "PYNECTOR_RATE_LIMIT='fast'"),
    ],
)
def test_bad_environment_values_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(None, environ)
    assert "environment variable" in str(caught.value)
    assert named in str(caught.value)


def test_unknown_key_suggests_the_closest_and_lists_the_valid_ones() -> None:
    with pytest.raises(
        ConfigurationError, match=r"Unknown config key 'timout'\. Did you mean 'timeout'\?"
    ):
        Pynector(transport=MockTransport(lambda d, **o: d), config={"timout": 3})


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="must be a dict"):
        Pynector(transport=MockTransport(lambda d, **o: d), config=[("timeout", 3)])  # type: ignore[call-overload]


def test_seed_configuration_snippet_keys_are_accepted() -> None:
    client = Pynector(
        transport=MockTransport(lambda d, **o: d),
        config={"timeout": 30.0, "retry_count": 3, "max_connections": 10},
    )
    assert (client.config.timeout, client.config.retry_count, client.config.max_connections) == (
        30.0,
        3,
        10,
    )


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        (None, {}, 100 * 1024 * 1024),
        ({"max_response_size": 1024}, {}, 1024),
        ({"max_response_size": None}, {"PYNECTOR_MAX_RESPONSE_SIZE": "1024"}, None),
        (None, {"PYNECTOR_MAX_RESPONSE_SIZE": "2048"}, 2048),
        (None, {"PYNECTOR_MAX_RESPONSE_SIZE": "none"}, None),
        (None, {"PYNECTOR_MAX_RESPONSE_SIZE": ""}, None),
    ],
)
def test_max_response_size_from_config_or_environment(
    config: dict[str, Any] | None, environ: dict[str, str], expected: int | None
) -> None:
    assert load_config(config, environ).max_response_size == expected


@pytest.mark.parametrize(
    ("config", "environ", "named"),
    [
        ({"max_response_size": 0}, {}, "config['max_response_size']=0"),
        ({"max_response_size": "1MB"}, {}, "config['max_response_size']='1MB'"),
        ({"max_response_size": True}, {}, "config['max_response_size']=True"),
        (None, {"PYNECTOR_MAX_RESPONSE_SIZE": "1MB"}, "PYNECTOR_MAX_RESPONSE_SIZE='1MB'"),
    ],
)
def test_a_bad_max_response_size_names_the_key_and_the_fix(
    config: dict[str, Any] | None, environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(config, environ)
    assert named in str(caught.value)
    assert "None for no limit" in str(caught.value)
