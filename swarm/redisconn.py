"""Redis clients: one pool per process, sized above the threads that share it."""

from __future__ import annotations

from typing import Any

import redis

from swarm.errors import RedisUnavailable


def connect(url: str, max_connections: int = 50, check: bool = True) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, socket_connect_timeout=5,
        health_check_interval=30,
    )
    client = redis.Redis(connection_pool=pool)
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"Redis unreachable at {safe_url(url)}: {exc}") from None
    return client


def text(value: Any) -> str:
    """A Redis reply as str (clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def safe_url(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
