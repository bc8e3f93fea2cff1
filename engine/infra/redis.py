"""The Redis client every Redis user of the engine shares (processed-note store, worklist), built
from ``ICDCODER_REDIS_*``."""

from __future__ import annotations

import redis

from schemas.settings import RedisSettings


def redis_client(settings: RedisSettings) -> redis.Redis:
    """A client from ``ICDCODER_REDIS_*``: password and TLS (``rediss://`` or ``ICDCODER_REDIS_TLS``)."""
    url = settings.url
    if settings.tls and url.startswith("redis://"):
        url = "rediss://" + url[len("redis://"):]
    kw: dict = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, "health_check_interval": 30}
    if settings.password is not None:
        kw["password"] = settings.password.get_secret_value()
    if url.startswith("rediss://") and settings.ssl_ca_certs:
        kw["ssl_ca_certs"] = str(settings.ssl_ca_certs)
    return redis.Redis.from_url(url, **kw)
