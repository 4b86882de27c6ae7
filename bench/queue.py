"""Queue benchmark: overhead per job, photos/s with 1 and 2 workers, worker memory.

Starts a private Redis and real `python -m workers` processes (CPU), then prints:
- queue overhead per job: enqueue -> result seen by the client, minus the job's
  own run time (rq's started_at/ended_at), with a trivial job;
- throughput in photos/s (analyze + process in blur mode) with 1 and 2 workers;
- VmRSS of a worker with its models loaded, and after it ran 200 photo jobs.

    python bench/queue.py [--photos-two-workers 40] [--trivial-jobs 100]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file's
# name would shadow the standard library's `queue`: put the project root there instead.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(PROJECT_ROOT)

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import replace  # noqa: E402

from rq import Queue, Worker  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from workers.client import JobState, PhotoJobs  # noqa: E402
from workers.connection import connect_redis  # noqa: E402
from workers.embedded_redis import EmbeddedRedis  # noqa: E402
from workers.settings import WorkersConfig  # noqa: E402

PHOTO = PROJECT_ROOT / "tests" / "data" / "fr_two_people.jpg"
CONCURRENT_OWNERS = 8
THREADS = max(1, (os.cpu_count() or 2) // 2)  # per worker, so that two workers share the cores
WAIT_SECONDS = 300


def start_worker(redis_url: str, name: str, log_dir: Path) -> subprocess.Popen:
    """Start `python -m workers` and wait until it has loaded its models and listens."""
    environment = {**os.environ, "REDIS_URL": redis_url, "WORKER_DEVICE": "cpu"}
    with (log_dir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", "--name", name, "--log-level", "WARNING", "--threads", str(THREADS)],
            cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
    queue = Queue("default", connection=connect_redis(redis_url))
    while name not in {worker.name for worker in Worker.all(queue=queue)}:
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited; see {log_dir}")
        time.sleep(0.1)
    return process


def read_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure_overhead_ms(redis_url: str, count: int) -> list[float]:
    """Enqueue trivial jobs one at a time; overhead = time to result minus rq's run time."""
    queue = Queue("default", connection=connect_redis(redis_url), serializer="json")
    overheads = []
    for _ in range(count):
        started = time.time()
        job = queue.enqueue_call("time.sleep", args=(0,))
        result = job.latest_result(timeout=WAIT_SECONDS)
        seen = time.time()
        if result is None:
            raise RuntimeError("trivial job got no result")
        job.refresh()
        run_seconds = (job.ended_at - job.started_at).total_seconds()
        overheads.append((seen - started - run_seconds) * 1000)
    return overheads


def measure_photos_per_second(jobs: PhotoJobs, photos: int) -> float:
    """Send `photos` photos from CONCURRENT_OWNERS users through analyze + blur; photos/s."""
    data = PHOTO.read_bytes()
    counter = iter(range(photos))
    lock = threading.Lock()

    def chat(owner: str) -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            photo_id = jobs.submit_photo(owner, data)
            if jobs.wait(owner, photo_id, WAIT_SECONDS).state != JobState.FINISHED:
                raise RuntimeError("analysis failed")
            jobs.submit_process(owner, photo_id, [1], "blur")
            if jobs.wait(owner, photo_id, WAIT_SECONDS).state != JobState.FINISHED:
                raise RuntimeError("processing failed")
            jobs.get_result(owner, photo_id)
            jobs.forget(owner, photo_id)

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENT_OWNERS) as pool:
        list(pool.map(chat, [f"bench:{number}" for number in range(CONCURRENT_OWNERS)]))
    return photos / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial-jobs", type=int, default=100)
    parser.add_argument("--photos-two-workers", type=int, default=40)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        redis = EmbeddedRedis(Path(folder) / "redis")
        redis.start(timeout_seconds=10)
        workers = []
        try:
            config = load_config(environ={"REDIS_URL": redis.url}, schema=WorkersConfig)
            jobs = PhotoJobs(replace(config, workers=replace(config.workers, queues=("default",))))
            first = start_worker(redis.url, "bench-1", Path(folder))
            workers.append(first)
            print(f"each worker: --threads {THREADS}")
            print(f"worker RSS with models loaded: {read_rss_mib(first.pid):.0f} MiB")

            overheads = measure_overhead_ms(redis.url, arguments.trivial_jobs)
            print(
                f"queue overhead per job ({len(overheads)} trivial jobs, 1 worker): "
                f"median {statistics.median(overheads):.1f} ms, "
                f"p90 {statistics.quantiles(overheads, n=10)[-1]:.1f} ms"
            )

            one = measure_photos_per_second(jobs, 100)  # 200 photo jobs on this one worker
            print(f"throughput, 1 worker, blur: {one:.2f} photos/s")
            print(f"worker RSS after 200 photo jobs: {read_rss_mib(first.pid):.0f} MiB")

            workers.append(start_worker(redis.url, "bench-2", Path(folder)))
            two = measure_photos_per_second(jobs, arguments.photos_two_workers)
            print(f"throughput, 2 workers, blur: {two:.2f} photos/s ({os.cpu_count()} CPU cores)")
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait()
            redis.stop()


if __name__ == "__main__":
    main()
