"""The store settings: config["store"], limit_key, shared_concurrency, store_failure.

What needs a shared store itself (Redis) is tested in tests/redis; here: the
settings, their errors (never showing a password), how a store URL is
resolved, the default limit key, and the in-process store.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import Config, load_config
from pynector.concurrency import MEMORY_URL, LocalLeases, MemoryStore, RateLimiter, TokenBudget
from pynector.errors import ConfigurationError
from pynector.registry import open_store
from pynector.testing import MockTransport

PASSWORD = "hunter2-s3cret"


def test_the_store_defaults_to_memory_with_no_shared_limit() -> None:
    config = Config()
    assert (config.store, config.limit_key, config.shared_concurrency) == (MEMORY_URL, None, None)
    assert config.store_failure == "closed"


def test_store_settings_come_from_config_or_the_environment() -> None:
    environ = {
        "PYNECTOR_STORE": f"redis://:{PASSWORD}@127.0.0.1:6379/0",
        "PYNECTOR_LIMIT_KEY": "org-main",
        "PYNECTOR_SHARED_CONCURRENCY": "8",
        "PYNECTOR_STORE_FAILURE": "OPEN",
    }
    loaded = load_config({"limit_key": "from-config"}, environ)
    assert loaded.store == f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    assert (loaded.limit_key, loaded.shared_concurrency, loaded.store_failure) == (
        "from-config",
        8,
        "open",
    )
    assert PASSWORD not in repr(loaded)  # the store URL may hold a password: not in the repr
    assert load_config({}, {"PYNECTOR_SHARED_CONCURRENCY": "none"}).shared_concurrency is None


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"store": f"127.0.0.1:{PASSWORD}@6379"}, "config['store']"),
        ({"store": ""}, "config['store']"),
        ({"store": 6379}, "config['store']"),
        ({"store_failure": "sometimes"}, "config['store_failure']"),
        ({"limit_key": ""}, "config['limit_key']"),
        ({"limit_key": "a\nb"}, "config['limit_key']"),
        ({"limit_key": "k" * 201}, "config['limit_key']"),
        ({"shared_concurrency": 0}, "config['shared_concurrency']"),
        ({"shared_concurrency": "4"}, "config['shared_concurrency']"),
    ],
)
def test_bad_store_settings_name_the_key_and_never_the_password(
    config: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match="expected") as caught:
        load_config(config, {})
    assert named in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_an_environment_store_failure_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="PYNECTOR_STORE_FAILURE"):
        load_config({}, {"PYNECTOR_STORE_FAILURE": "maybe"})


def test_memory_urls_make_an_in_process_store() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert (store.url, store.shared) == (MEMORY_URL, False)
    assert isinstance(store.pacer("k", 10, 1.0), RateLimiter)
    assert isinstance(store.token_budget("k", 100, 60.0), TokenBudget)
    assert isinstance(store.leases("k", 2), LocalLeases)
    with pytest.raises(ConfigurationError, match="takes no address"):
        open_store("memory://somewhere")


def test_an_unknown_store_scheme_says_what_to_install_without_the_password() -> None:
    with pytest.raises(ConfigurationError, match="no store is installed for nosuch://") as caught:
        open_store(f"nosuch://user:{PASSWORD}@host/0")
    assert "pynector.stores" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    # The client checks the store when it is made, before anything is sent.
    with pytest.raises(ConfigurationError, match="nosuch://") as caught:
        Pynector(
            transport=MockTransport(lambda d, **o: d),
            config={"store": f"nosuch://:{PASSWORD}@host"},
        )
    assert PASSWORD not in str(caught.value)


def test_the_limit_key_defaults_to_the_transport_and_its_target() -> None:
    mock = Pynector(transport=MockTransport(lambda d, **o: d))
    assert mock.limit_key == "custom"  # the transport names no target: its type alone
    http = Pynector(transport_type="http", base_url="https://api.example.com:8443/v1/")
    assert http.limit_key == "http:https://api.example.com:8443"
    no_base = Pynector(transport_type="http")
    assert no_base.limit_key == "http"
    keyed = Pynector(transport_type="http", config={"limit_key": "team-a"})
    assert keyed.limit_key == "team-a"
    secret = Pynector(transport_type="http", base_url=f"https://me:{PASSWORD}@api.example.com")
    assert PASSWORD not in secret.limit_key


@pytest.mark.anyio
async def test_shared_concurrency_in_memory_caps_a_clients_calls_in_flight() -> None:
    in_flight = most = 0
    gate = anyio.Event()

    async def handler(data: Any, **options: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if most == 2:
            gate.set()
        await gate.wait()
        in_flight -= 1
        return data

    client = Pynector(transport=MockTransport(handler), config={"shared_concurrency": 2})
    async with client:
        results = await client.batch_request([(n, {}) for n in range(10)], max_concurrency=6)
    assert results == list(range(10))
    assert most == 2
