"""The one way both sides (chat adapters and workers) open Redis."""

from __future__ import annotations

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from .defaults import REDIS_HEALTH_CHECK_INTERVAL_SECONDS, REDIS_RETRIES, REDIS_RETRY_CAP_SECONDS


def connect_redis(url: str) -> Redis:
    """Open a client that reconnects by itself, e.g. after a Redis restart.

    Each command is retried with backoff on connection errors and timeouts, and
    idle pooled connections are checked before reuse, so a restarted server is
    noticed without an error reaching the caller.

    Args:
        url: a redis://, rediss:// or unix:// URL.

    Returns:
        A client returning bytes (photos are binary).
    """
    return Redis.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=REDIS_RETRY_CAP_SECONDS), REDIS_RETRIES),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL_SECONDS,
    )
