"""The Redis store's tests run against real redis-server processes (see tests/_redis.py)."""

from __future__ import annotations

from tests._redis import redis_server, redis_server_factory

__all__ = ["redis_server", "redis_server_factory"]
