"""Soak: does a worker's memory stay flat over thousands of jobs?

Starts a private Redis and one real `python -m workers` process (CPU), then sends
photos through it, one at a time: an analysis job, then a process job whose mode
cycles through blur, replace and unmask (those whose weights the worker has; the
others are named and skipped). Every `--every` jobs it prints the worker's VmRSS,
and at the end the growth after warm-up (the first `--warm-up` jobs):

    python bench/soak.py [--jobs 2000] [--every 100] [--warm-up 200]

Photos rotate through a few test photos of different sizes and face counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(PROJECT_ROOT)  # run as a script: the project, not bench/, comes first

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.queue import read_rss_mib, start_worker  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from workers.settings import WorkersConfig  # noqa: E402
from workers.client import JobState, PhotoJobs  # noqa: E402
from workers.embedded_redis import EmbeddedRedis  # noqa: E402

PHOTOS = ("fr_two_people.jpg", "kagglemask_maksssksksss148.jpg", "fr_obama_small.jpg", "mpl_grace_hopper.jpg", "scrfd_solvay_1927.png")
MODES = ("blur", "replace", "unmask")
OWNER = "bench:soak"
WAIT_SECONDS = 300


def run_job(jobs: PhotoJobs, photo_id: str) -> None:
    status = jobs.wait(OWNER, photo_id, WAIT_SECONDS)
    if status.state != JobState.FINISHED:
        raise RuntimeError(f"a job ended {status.state.value}: {status.error_message}")


def soak(jobs: PhotoJobs, worker_pid: int, total_jobs: int, every: int, warm_up: int) -> None:
    available = jobs.available_modes()
    modes = [mode for mode in MODES if available.get(mode) is None]
    for mode in MODES:
        if mode not in modes:
            print(f"{mode}: skipped ({available[mode]})")
    photos = [(PROJECT_ROOT / "tests" / "data" / name).read_bytes() for name in PHOTOS]
    done, photo_number, started = 0, 0, time.monotonic()
    readings = {0: read_rss_mib(worker_pid)}
    print(f"{'jobs':>6} {'RSS MiB':>8} {'s':>7}")
    print(f"{0:>6} {readings[0]:>8.1f} {0:>7.0f}")
    while done < total_jobs:
        photo_id = jobs.submit_photo(OWNER, photos[photo_number % len(photos)])
        run_job(jobs, photo_id)
        faces = len(jobs.get_analysis(OWNER, photo_id).faces)
        done += 1
        if faces and done < total_jobs:
            jobs.submit_process(OWNER, photo_id, [], modes[photo_number % len(modes)])
            run_job(jobs, photo_id)
            jobs.get_result(OWNER, photo_id)
            done += 1
        jobs.forget(OWNER, photo_id)
        photo_number += 1
        if done // every > (done - 2) // every or done >= total_jobs:
            mark = done // every * every if done < total_jobs else done
            readings[mark] = read_rss_mib(worker_pid)
            print(f"{mark:>6} {readings[mark]:>8.1f} {time.monotonic() - started:>7.0f}", flush=True)
    after_warm_up = min((jobs_done for jobs_done in readings if jobs_done >= warm_up), default=None)
    last = max(readings)
    if after_warm_up is None or after_warm_up == last:
        print(f"too few jobs to compare after a warm-up of {warm_up}")
        return
    growth = (readings[last] / readings[after_warm_up] - 1) * 100
    print(f"growth from job {after_warm_up} to job {last}: {growth:+.1f}% ({readings[after_warm_up]:.1f} -> {readings[last]:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="how many jobs (analysis and process jobs both count)")
    parser.add_argument("--every", type=int, default=100, help="print the worker's RSS every this many jobs")
    parser.add_argument("--warm-up", type=int, default=200, help="growth is measured from the first reading after this many jobs")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        redis = EmbeddedRedis(Path(folder) / "redis")
        redis.start(timeout_seconds=10)
        worker = None
        try:
            worker = start_worker(redis.url, "soak", Path(folder))
            config = load_config(environ={"REDIS_URL": redis.url}, schema=WorkersConfig)
            soak(PhotoJobs(config), worker.pid, arguments.jobs, arguments.every, arguments.warm_up)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait()
            redis.stop()


if __name__ == "__main__":
    main()
