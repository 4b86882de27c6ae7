"""`python -m workers.health NAME_FILE`: exit 0 while this container's worker is alive, as rq sees it.

`python -m workers --name-file NAME_FILE` writes its rq name there. The worker is
alive while its rq record exists and its last heartbeat (renewed every few seconds
while a job runs, and at least every WORKER_TTL_SECONDS - 15 s while idle) is
younger than WORKER_TTL_SECONDS. Meant for Docker's HEALTHCHECK; needs REDIS_URL.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from redis.exceptions import RedisError
from rq import Worker

from pipeline.config import load_config

from .connection import connect_redis
from .defaults import WORKER_TTL_SECONDS
from .settings import WorkersConfig


def heartbeat_age_seconds(name: str, redis_url: str) -> float | None:
    """Seconds since the named worker's last heartbeat; None when rq knows no such live worker."""
    connection = connect_redis(redis_url)
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.last_heartbeat is None:
        return None
    return (datetime.now(timezone.utc) - worker.last_heartbeat.replace(tzinfo=timezone.utc)).total_seconds()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m workers.health NAME_FILE", file=sys.stderr)
        return 2
    name_file = Path(argv[0])
    if not name_file.is_file():
        print("the worker has not started yet", file=sys.stderr)
        return 1
    try:
        age = heartbeat_age_seconds(name_file.read_text().strip(), load_config(schema=WorkersConfig).redis.url)
    except RedisError as error:
        print(f"Redis unreachable: {error}", file=sys.stderr)
        return 1
    if age is None or age > WORKER_TTL_SECONDS:
        print("no recent heartbeat", file=sys.stderr)
        return 1
    print(f"alive: last heartbeat {age:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
