"""`python -m workers`: one job worker process.

Loads the models once, then runs jobs in this process (no fork per job, so
CUDA is safe). Run one per GPU; workers on other machines only need REDIS_URL.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from pipeline.config import load_config
from pipeline.models import resolve_device

from .connection import connect_redis
from .jobs import prepare_context
from .settings import WorkersConfig
from .worker import PhotoWorker

logger = logging.getLogger("workers")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: workers.device, env WORKER_DEVICE)")
    parser.add_argument("--queues", help="comma-separated queue names, first has priority (default: workers.queues)")
    parser.add_argument("--threads", type=int, help="CPU threads for the models (default: pipeline.cpu_threads, 0 = all cores)")
    parser.add_argument("--name", help="worker name shown in rq (default: random)")
    parser.add_argument("--name-file", type=Path, help="write the worker's rq name here, for `python -m workers.health`")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(schema=WorkersConfig)
    if not config.redis.url:
        logger.error("REDIS_URL is not set: start `python -m service`, or point REDIS_URL at a Redis")
        return 2
    if arguments.threads:
        config = replace(config, pipeline=replace(config.pipeline, cpu_threads=arguments.threads))
    device = resolve_device(arguments.device or config.workers.device)
    queues = arguments.queues.split(",") if arguments.queues else list(config.workers.queues)
    prepare_context(config, device)
    worker = PhotoWorker(queues, name=arguments.name, connection=connect_redis(config.redis.url))
    logger.info("worker %s on %s, queues %s", worker.name, device, ",".join(queues))
    if arguments.name_file:
        arguments.name_file.write_text(worker.name)
    worker.work(logging_level=arguments.log_level)
    return 0


if __name__ == "__main__":
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(status)  # skip tearing down the loaded models (seconds on a busy CPU): a stop must fit in 10 s
