"""`python -m service` (what `make run` runs): a clean stop that loses no job.

On SIGTERM the service must be gone well within the 10 s that Docker, systemd and
Kubernetes wait before they kill, with exit status 0 and no traceback, and the job
a worker had in hand must run to its end after the next start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import JobStatus

from pipeline.config import load_config
from workers.client import JobState, PhotoJobs
from workers.settings import WorkersConfig

from fake_telegram import shared_worker
from helpers import PROJECT_ROOT, photo_bytes

STOP_LIMIT_SECONDS = 10  # the contract: Docker's, systemd's and Kubernetes' default wait before SIGKILL
WAIT_SECONDS = 180  # hang protection only
LONG_JOB_SECONDS = 15  # longer than the worker's grace after SIGTERM and than the 10 s: the job is put back, not finished


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Service:
    """`python -m service` with its private Redis in `directory`, serving the Kakao adapter."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.config_path = directory / "config.yaml"
        config_text = (PROJECT_ROOT / "config.yaml").read_text()
        self.config_path.write_text(config_text.replace("embedded_dir: .redis", f"embedded_dir: {directory / 'redis'}"))
        self.log_path = directory / "service.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        environment = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "TELEGRAM_TOKEN")}
        port, self.health_port = free_port(), free_port()
        environment.update(
            CONFIG_PATH=str(self.config_path), KAKAO_BOT_ID="test-bot", KAKAO_PORT=str(port), KAKAO_PUBLIC_URL="http://127.0.0.1",
            WORKER_DEVICE="cpu", BOT_HEALTH_PORT=str(self.health_port),
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service"], cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        connection = Redis(unix_socket_path=str(self.directory / "redis" / "redis.sock"))
        wait_for(lambda: self._answers(connection) and Worker.all(connection=connection), "the service's worker")
        wait_for(lambda: port_open(port), "the Kakao skill server")

    def stop(self) -> tuple[int, float]:
        """SIGTERM, as Docker sends it; returns the exit status and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(STOP_LIMIT_SECONDS * 3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return status, time.monotonic() - started

    def _answers(self, connection: Redis) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited: {self.log_path.read_text()[-3000:]}")
        try:
            return bool(connection.ping())
        except (RedisError, OSError):
            return False


def test_sigterm_stops_the_service_in_time_and_the_job_in_hand_runs_after_a_restart(tmp_path):
    service = Service(tmp_path)
    service.start()
    try:
        config = load_config(str(service.config_path), environ={"REDIS_URL": f"unix://{tmp_path / 'redis' / 'redis.sock'}"}, schema=WorkersConfig)
        jobs = PhotoJobs(config)
        queue = Queue(config.workers.queues[0], connection=jobs.connection, serializer="json")
        in_hand = queue.enqueue("time.sleep", LONG_JOB_SECONDS, job_timeout=120)  # stands for a slow replace job
        photo_id = jobs.submit_photo("test:stop", photo_bytes("fr_obama_small.jpg"))  # queued behind it
        wait_for(lambda: in_hand.get_status() == JobStatus.STARTED, "the long job to start")
        with urllib.request.urlopen(f"http://127.0.0.1:{service.health_port}/healthz", timeout=10) as response:
            assert response.status == 200 and response.read() == b"ok\n"

        status, seconds = service.stop()
        assert status == 0
        assert seconds < STOP_LIMIT_SECONDS, f"the service took {seconds:.1f} s to stop"
        log = service.log_path.read_text()
        assert "Traceback" not in log and "killing it" not in log, log[-3000:]
        jobs.connection.close()

        service.start()  # Redis comes back from its append-only file; the worker takes the jobs again
        jobs = PhotoJobs(config)
        assert jobs.wait("test:stop", photo_id, WAIT_SECONDS).state == JobState.FINISHED
        assert queue.fetch_job(in_hand.id).get_status() == JobStatus.FINISHED
        assert jobs.get_analysis("test:stop", photo_id).faces
    finally:
        if service.process.poll() is None:
            status, _ = service.stop()
            assert status == 0


def test_the_worker_health_check_reads_its_heartbeat_through_rq(redis_server, start_worker, tmp_path):
    worker = shared_worker(start_worker, "telegram-tests")
    name_file = tmp_path / "worker-name"

    def check() -> subprocess.CompletedProcess:
        environment = {**os.environ, "REDIS_URL": redis_server.url}
        command = [sys.executable, "-m", "workers.health", str(name_file)]
        return subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=60)

    assert check().returncode == 1  # no name yet: the worker has not started
    name_file.write_text(worker.name)
    alive = check()
    assert alive.returncode == 0 and alive.stdout.startswith("alive"), alive.stderr
    name_file.write_text("a-worker-that-died")
    assert check().returncode == 1
