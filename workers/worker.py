"""The rq worker class: no fork per job, and dead workers' jobs noticed within seconds.

rq's `SimpleWorker` runs jobs in its own process, so models loaded once (and
CUDA) are never forked. Out of the box a killed SimpleWorker's job stays
"started" until its timeout plus 60 seconds has passed and a maintenance run
(every 10 minutes by default) finds it. `PhotoWorker` shortens both:

- while a job runs, a thread renews the job's entry in rq's StartedJobRegistry
  every LIVENESS_INTERVAL_SECONDS with a score of now + LIVENESS_TTL_SECONDS;
- every worker runs a watchdog thread that calls rq's own
  `StartedJobRegistry.cleanup()` every WATCHDOG_INTERVAL_SECONDS, under a lock so
  that one worker does it at a time. An entry that stopped being renewed is an
  abandoned job: rq requeues it while it has retries left (jobs are enqueued
  with `Retry(max=RETRIES_AFTER_LOST_WORKER)`), else records it as failed
  with an `AbandonedJobError`.

On SIGTERM (or Ctrl-C) an idle worker stops at once; a busy one lets its job
finish for JOB_STOP_GRACE_SECONDS, then interrupts it, puts it back at the front
of its queue (its retries untouched: nothing went wrong) and stops, so that a
stop takes seconds and the job runs again on the next worker.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus

from .defaults import (
    JOB_STOP_GRACE_SECONDS,
    LIVENESS_INTERVAL_SECONDS,
    LIVENESS_TTL_SECONDS,
    MAINTENANCE_INTERVAL_SECONDS,
    WATCHDOG_INTERVAL_SECONDS,
    WORKER_TTL_SECONDS,
)
from .storage import watchdog_key

logger = logging.getLogger(__name__)

try:
    LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    LIBC = None


class JobInterrupted(Exception):
    """The worker is stopping and the job in hand ran past its grace period."""


class PhotoWorker(SimpleWorker):
    """A non-forking rq worker whose running job stays visibly alive."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("worker_ttl", WORKER_TTL_SECONDS)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_SECONDS)
        kwargs.setdefault("serializer", "json")
        super().__init__(*args, **kwargs)
        self._watchdog_stop = threading.Event()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """A short TTL for the running job's registry entry; the liveness thread renews it."""
        return LIVENESS_TTL_SECONDS

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job in this process while a thread keeps it alive."""
        execution = self.prepare_execution(job)
        with self._keep_alive(job, execution):
            self.perform_job(job, queue, execution)
        signal.setitimer(signal.ITIMER_REAL, 0)  # a stop's grace alarm set after the job's own timeout ended
        release_free_memory()
        self.set_state(WorkerStatus.IDLE)

    def handle_warm_shutdown_request(self) -> None:
        """SIGTERM: give the job in hand JOB_STOP_GRACE_SECONDS, then interrupt it (rq then stops the loop).

        rq's job timeout uses SIGALRM too; a job that ends in time cancels this alarm with its own.
        """
        super().handle_warm_shutdown_request()
        if self.get_state() == WorkerStatus.BUSY:
            signal.signal(signal.SIGALRM, self._interrupt_job)
            signal.setitimer(signal.ITIMER_REAL, JOB_STOP_GRACE_SECONDS)

    def _interrupt_job(self, signum: int, frame: object) -> None:
        raise JobInterrupted(f"the worker is stopping and the job ran past {JOB_STOP_GRACE_SECONDS} s")

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution, exc_info) -> None:
        """An interrupted job goes back to the front of its queue; any other failure is rq's."""
        if not isinstance(exc_info[1], JobInterrupted):
            super()._finalize_failure(job, queue, execution, exc_info)
            return
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.execute()
        queue.enqueue_job(job, at_front=True)
        logger.info("job %s put back in the queue: the worker is stopping", job.id)

    def work(self, *args, **kwargs) -> bool:
        """rq's work loop, with the watchdog running beside it."""
        watchdog = threading.Thread(target=self._watch_for_abandoned_jobs, name="watchdog", daemon=True)
        watchdog.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            self._watchdog_stop.set()
            watchdog.join()

    @contextmanager
    def _keep_alive(self, job: Job, execution: Execution) -> Iterator[None]:
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LIVENESS_INTERVAL_SECONDS):
                try:
                    self.maintain_heartbeats(job, execution)
                except RedisError as error:
                    logger.warning("could not renew job %s: %s", job.id, error)

        thread = threading.Thread(target=renew, name=f"liveness-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _watch_for_abandoned_jobs(self) -> None:
        while not self._watchdog_stop.wait(WATCHDOG_INTERVAL_SECONDS):
            for queue in self.queues:
                try:
                    requeue_abandoned_jobs(queue)
                except RedisError as error:
                    logger.warning("watchdog could not check queue %s: %s", queue.name, error)


def release_free_memory() -> None:
    """Hand memory freed by the job back to the system (glibc keeps it otherwise, and the RSS creeps up)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


def requeue_abandoned_jobs(queue: Queue) -> None:
    """Requeue (or fail, when out of retries) the jobs of workers that stopped renewing them."""
    lock_key = watchdog_key(queue.name)
    if not queue.connection.set(lock_key, 1, nx=True, ex=WATCHDOG_INTERVAL_SECONDS * 5):
        return
    try:
        queue.started_job_registry.cleanup()
    finally:
        queue.connection.delete(lock_key)
