"""Redis clients: one pool per process, sized above the threads that share it; and the Redis
a command talks to when REDIS_URL is unset (a running or saved `swarm run`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from swarm.config import Settings
from swarm.errors import RedisUnavailable

# A Redis restart (AOF reload, failover) takes seconds: a worker rides it out, retrying each
# command with backoff (0.1 s doubling, at most 5 s apart: about a minute in all), so the call
# it has just paid for still settles instead of being fed and paid for again.
OUTAGE_RETRIES = Retry(ExponentialWithJitterBackoff(base=0.1, cap=5.0), 16)


def connect(url: str, max_connections: int = 50, check: bool = True,
            ride_out_outages: bool = False) -> redis.Redis:
    """A client whose pool holds ``max_connections``. ``check``: fail at once with one line
    when Redis does not answer now. ``ride_out_outages``: later commands retry through an
    outage of about a minute (workers and `swarm run`; a one-off command fails fast)."""
    if check:
        probe = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            probe.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"Redis unreachable at {safe_url(url)}: {exc}") from None
        finally:
            probe.close()
    extra = {"retry": OUTAGE_RETRIES} if ride_out_outages else {}
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, socket_connect_timeout=5,
        health_check_interval=30, **extra,
    )
    return redis.Redis(connection_pool=pool)


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


def live_url(s: Settings) -> str | None:
    """The embedded Redis of a `swarm run` in progress, if one is answering."""
    f = Path(s.state_dir) / "redis.url"
    if not f.is_file():
        return None
    url = f.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        return url
    except (redis.ConnectionError, redis.TimeoutError):
        return None


@contextlib.contextmanager
def redis_for(s: Settings) -> Iterator[redis.Redis]:
    """REDIS_URL; else a running `swarm run`'s embedded Redis; else its saved data, opened
    read for the duration of the command; else redis://127.0.0.1:6379/0."""
    if s.redis_url:
        yield connect(s.redis_url)
        return
    url = live_url(s)
    if url:
        yield connect(url)
        return
    data = Path(s.state_dir) / "redis"
    if (data / "appendonlydir").is_dir():
        from swarm.embedded import RedisServer

        with RedisServer(data) as server:
            yield connect(server.url)
        return
    yield connect(s.broker_url())
