"""`PhotoJobs`: what a chat adapter calls to run photos through the job queue.

Chat-independent: an owner is any string naming a user of one chat
("telegram:123", "kakao:abc"). Every method takes the owner and checks that
the photo is theirs; someone else's photo id behaves exactly like an unknown
or expired one. Photos never appear in logs, only their ids.

One photo at a time: while an owner's job is queued or running, a new photo
(or a new process request) is refused with `BusyError`, and the bot says
"one photo at a time". Refusing, rather than queueing behind, keeps the
queue fair between users and the chat simple: the user is never surprised
by a result for a photo they sent minutes ago.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from enum import Enum
from typing import Collection

from redis import Redis
from redis.exceptions import WatchError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from pipeline.modes import MODE_NAMES
from pipeline.types import Analysis

from .connection import connect_redis
from .defaults import CLAIM_TTL_SECONDS, POLL_INTERVAL_SECONDS, RETRIES_AFTER_LOST_WORKER
from .errors import BusyError, NotReady, PhotoExpired
from .settings import WorkersConfig
from .storage import JobKind, Part, PhotoRecord, PhotoStore, modes_key, owner_key

logger = logging.getLogger(__name__)

JOB_FUNCTIONS = {JobKind.ANALYZE: "workers.jobs.analyze", JobKind.PROCESS: "workers.jobs.process"}
ACTIVE_RQ_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


class JobState(str, Enum):
    """Where a photo's latest job stands, as the user sees it."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_done(self) -> bool:
        return self not in (JobState.QUEUED, JobState.STARTED)


@dataclass(frozen=True)
class PhotoStatus:
    """The state of a photo's latest job (`kind`).

    `queue_position` is 1 for the next job to start, and None unless queued.
    `error_code` / `error_message` explain a FAILED state: a pipeline code such
    as "unsupported_format", or "worker_lost" / "internal_error".
    """

    state: JobState
    kind: JobKind | None = None
    queue_position: int | None = None
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class ResultFile:
    """A processed photo, ready to send: no EXIF, and the type it was encoded as.

    `blurred_instead` and `left_as_they_were` are the face numbers the mode could
    not change as asked (see `workers.jobs.process`). `made_by_ai`: some faces
    were replaced or unmasked by a trained model; `content_credentials`: the file
    carries a signed C2PA manifest (pipeline/provenance).
    """

    data: bytes
    content_type: str
    extension: str
    blurred_instead: tuple[int, ...] = ()
    left_as_they_were: tuple[int, ...] = ()
    made_by_ai: bool = False
    content_credentials: bool = False


# Blur needs no weights, so every worker can run it.
MODES_BEFORE_ANY_WORKER = {mode: None if mode == "blur" else "no worker has started yet" for mode in MODE_NAMES}

WORKER_LOST = PhotoStatus(
    JobState.FAILED,
    error_code="worker_lost",
    error_message="the photo could not be processed: its worker stopped twice while working on it",
)
INTERNAL_ERROR = PhotoStatus(
    JobState.FAILED,
    error_code="internal_error",
    error_message="the photo could not be processed because of an internal error",
)


class PhotoJobs:
    """Submit photos, follow their jobs, fetch what they produced.

    Args:
        config: the service config (storage TTL, queue name, job timeouts, Redis URL).
        connection: an open Redis; by default one is opened from `config.redis.url`.
    """

    def __init__(self, config: WorkersConfig, connection: Redis | None = None):
        self.connection = connection if connection is not None else connect_redis(config.redis.url)
        self.ttl_seconds = config.storage.ttl_seconds
        self.store = PhotoStore(self.connection, self.ttl_seconds)
        self.queue = Queue(config.workers.queues[0], connection=self.connection, serializer="json")
        self.timeouts_seconds = {
            JobKind.ANALYZE: config.workers.analyze_timeout_seconds,
            JobKind.PROCESS: config.workers.process_timeout_seconds,
        }

    def submit_photo(self, owner: str, data: bytes) -> str:
        """Store a photo and queue its analysis.

        Args:
            owner: the user, e.g. "telegram:123".
            data: the photo file as received.

        Returns:
            A new unguessable photo id.

        Raises:
            BusyError: the owner already has a job queued or running.
        """
        photo_id = secrets.token_urlsafe(18)
        job_id = self._claim_owner(owner, photo_id)
        self.store.create(photo_id, owner, data)
        self._enqueue(owner, JobKind.ANALYZE, job_id, photo_id)
        logger.info("photo %s submitted by %s", photo_id, owner)
        return photo_id

    def submit_process(self, owner: str, photo_id: str, keep: Collection[int], mode: str) -> None:
        """Queue the change of every face not in `keep`, with `mode` (e.g. "blur").

        Args:
            owner: the photo's owner.
            photo_id: an analysed photo.
            keep: face numbers (as on the contact sheet) to leave unchanged.
            mode: one of the pipeline's modes.

        Raises:
            PhotoExpired: the photo is unknown, expired or not the owner's.
            NotReady: the analysis has not finished successfully.
            BusyError: the owner already has a job queued or running.
        """
        record = self._get_record(owner, photo_id)
        if self.store.read(photo_id, Part.ANALYSIS) is None:
            raise NotReady("the photo has not been analysed")
        job_id = self._claim_owner(owner, photo_id)
        if record.process_job_id:
            self._delete_job(record.process_job_id)
        self._enqueue(owner, JobKind.PROCESS, job_id, photo_id, sorted(int(number) for number in keep), mode)

    def get_status(self, owner: str, photo_id: str) -> PhotoStatus:
        """Where the photo's latest job stands; cheap enough to poll.

        Returns:
            EXPIRED for unknown, expired, forgotten and other owners' photos.
        """
        record = self.store.get_record(photo_id)
        if record is None or record.owner != owner:
            return PhotoStatus(JobState.EXPIRED)
        if record.cancelled:
            return PhotoStatus(JobState.CANCELLED)
        kind = JobKind.PROCESS if record.process_job_id else JobKind.ANALYZE
        job = self.queue.fetch_job(record.latest_job_id) if record.latest_job_id else None
        if job is None:
            return PhotoStatus(JobState.EXPIRED, kind)
        status = job.get_status(refresh=False)
        if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            position = job.get_position()
            return PhotoStatus(JobState.QUEUED, kind, queue_position=None if position is None else position + 1)
        if status == JobStatus.STARTED:
            return PhotoStatus(JobState.STARTED, kind)
        if status == JobStatus.FINISHED:
            error = (job.return_value() or {}).get("error")
            if error is None:
                return PhotoStatus(JobState.FINISHED, kind)
            if error["code"] == "expired":
                return PhotoStatus(JobState.EXPIRED, kind)
            return PhotoStatus(JobState.FAILED, kind, error_code=error["code"], error_message=error["message"])
        if status == JobStatus.FAILED:
            result = job.latest_result()
            lost = result is not None and "AbandonedJobError" in (result.exc_string or "")
            failure = WORKER_LOST if lost else INTERNAL_ERROR
            return replace(failure, kind=kind)
        return PhotoStatus(JobState.CANCELLED, kind)

    def wait(self, owner: str, photo_id: str, timeout_seconds: float) -> PhotoStatus:
        """Poll `get_status` until the latest job is done or `timeout_seconds` pass.

        Returns:
            The last status read: QUEUED or STARTED only when the time ran out.
        """
        deadline = time.monotonic() + timeout_seconds
        status = self.get_status(owner, photo_id)
        while not status.state.is_done and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_SECONDS)
            status = self.get_status(owner, photo_id)
        return status

    def get_analysis(self, owner: str, photo_id: str) -> Analysis:
        """The faces found, the pre-selected faces to keep and the photo size (no sheet).

        Raises:
            PhotoExpired: the photo is unknown, expired or not the owner's.
            NotReady: the analysis has not finished successfully.
        """
        return Analysis.from_json(json.loads(self._read(owner, photo_id, Part.ANALYSIS)))

    def get_sheet(self, owner: str, photo_id: str) -> bytes:
        """The contact sheet (JPEG) with the numbered faces.

        Raises:
            PhotoExpired: the photo is unknown, expired or not the owner's.
            NotReady: the analysis has not finished successfully.
        """
        return self._read(owner, photo_id, Part.SHEET)

    def get_thumbnail(self, owner: str, photo_id: str, number: int) -> bytes:
        """A square JPEG of face `number`, for chats that show one face per card.

        Raises:
            PhotoExpired: the photo is unknown, expired or not the owner's.
            NotReady: the analysis has not finished, or there is no such face.
        """
        crops = json.loads(self._read(owner, photo_id, Part.THUMBNAILS))
        if str(number) not in crops:
            raise NotReady(f"the photo has no face {number}")
        return base64.b64decode(crops[str(number)])

    def available_modes(self) -> dict[str, str | None]:
        """Each mode with None when the workers can run it, else why not (as the workers published it)."""
        published = self.connection.get(modes_key())
        return json.loads(published) if published else dict(MODES_BEFORE_ANY_WORKER)

    def get_result(self, owner: str, photo_id: str) -> ResultFile:
        """The processed photo.

        Raises:
            PhotoExpired: the photo is unknown, expired or not the owner's.
            NotReady: processing has not finished successfully.
        """
        info = json.loads(self._read(owner, photo_id, Part.RESULT_INFO))
        return ResultFile(
            data=self._read(owner, photo_id, Part.RESULT), content_type=info["content_type"], extension=info["extension"],
            blurred_instead=tuple(info["blurred_instead"]), left_as_they_were=tuple(info["left_as_they_were"]),
            made_by_ai=bool(info["made_by_ai"]), content_credentials=bool(info["content_credentials"]),
        )

    def cancel(self, owner: str) -> bool:
        """Cancel the owner's queued or running job and delete its photo.

        A queued job is taken off the queue. A running job cannot be interrupted
        (the worker does not fork); it finishes, but its output is discarded.

        Returns:
            True when there was an active job to cancel.
        """
        active = self.connection.get(owner_key(owner))
        if active is None:
            return False
        photo_id, job_id = active.decode().split(" ")
        self._release_owner(owner, job_id)
        job = self.queue.fetch_job(job_id)
        status = job.get_status(refresh=False) if job is not None else None
        if status is not None and status not in ACTIVE_RQ_STATES:
            return False
        if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            job.cancel()
        self.store.cancel(photo_id)
        logger.info("photo %s cancelled by %s", photo_id, owner)
        return True

    def forget(self, owner: str, photo_id: str) -> None:
        """Delete everything about the photo: parts, record and jobs. Call after delivery."""
        record = self.store.get_record(photo_id)
        if record is None or record.owner != owner:
            return
        self.store.delete(photo_id)
        for job_id in (record.analyze_job_id, record.process_job_id):
            if job_id:
                self._delete_job(job_id)
                self._release_owner(owner, job_id)

    def _get_record(self, owner: str, photo_id: str) -> PhotoRecord:
        record = self.store.get_record(photo_id)
        if record is None or record.owner != owner or record.cancelled:
            raise PhotoExpired(photo_id)
        return record

    def _read(self, owner: str, photo_id: str, part: Part) -> bytes:
        self._get_record(owner, photo_id)
        data = self.store.read(photo_id, part)
        if data is None:
            raise NotReady(f"the photo has no {part.value}")
        return data

    def _claim_owner(self, owner: str, photo_id: str) -> str:
        """Make a new job id the owner's active job, unless another one is still active.

        The claim lives CLAIM_TTL_SECONDS until `_confirm_claim`, so a client that
        dies before enqueueing does not block the owner for long.
        """
        key = owner_key(owner)
        job_id = uuid.uuid4().hex
        with self.connection.pipeline() as pipeline:
            try:
                pipeline.watch(key)
                active = pipeline.get(key)
                if active is not None and self._is_active(active.decode().split(" ")[1]):
                    raise BusyError(owner)
                pipeline.multi()
                pipeline.set(key, f"{photo_id} {job_id}", ex=CLAIM_TTL_SECONDS)
                pipeline.execute()
            except WatchError:
                raise BusyError(owner) from None
        return job_id

    def _confirm_claim(self, owner: str) -> None:
        self.connection.expire(owner_key(owner), self.ttl_seconds)

    def _release_owner(self, owner: str, job_id: str) -> None:
        key = owner_key(owner)
        active = self.connection.get(key)
        if active is not None and active.decode().endswith(f" {job_id}"):
            self.connection.delete(key)

    def _is_active(self, job_id: str) -> bool:
        """A claimed job is active until it ends; a missing one is still being enqueued."""
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=self.queue.serializer)
        except NoSuchJobError:
            return True
        return job.get_status(refresh=False) in ACTIVE_RQ_STATES

    def _enqueue(self, owner: str, kind: JobKind, job_id: str, photo_id: str, *args) -> None:
        """Queue the job the owner has claimed; the claim is released if that fails."""
        try:
            if not self.store.set_job_id(photo_id, kind, job_id):
                raise PhotoExpired(photo_id)
            self.queue.enqueue_call(
                JOB_FUNCTIONS[kind],
                args=(photo_id, *args),
                job_id=job_id,
                timeout=self.timeouts_seconds[kind],
                ttl=self.ttl_seconds,
                result_ttl=self.ttl_seconds,
                failure_ttl=self.ttl_seconds,
                retry=Retry(max=RETRIES_AFTER_LOST_WORKER),
            )
        except BaseException:
            self._release_owner(owner, job_id)
            raise
        self._confirm_claim(owner)

    def _delete_job(self, job_id: str) -> None:
        job = self.queue.fetch_job(job_id)
        if job is not None:
            job.delete()
