"""The job queue as a chat user meets it: real Redis, real worker processes, real photos."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from rq.job import Job

from pipeline.config import load_config
from workers.settings import WorkersConfig
from pipeline.imageio import encode_photo, load_photo
from workers.client import JobState, PhotoJobs
from workers.errors import BusyError, NotReady, PhotoExpired
from workers.storage import JobKind

from helpers import TEST_IDENTITIES, photo_bytes

WAIT_SECONDS = 120  # hang protection only; timing belongs to bench/queue.py
IDLE_QUEUE = "nobody-listens"  # no worker serves it: jobs stay queued


def make_client(redis_server, queue: str = "default", ttl_seconds: int = 3600) -> PhotoJobs:
    config = load_config(environ={"REDIS_URL": redis_server.url, "STORAGE_TTL_SECONDS": str(ttl_seconds)}, schema=WorkersConfig)
    return PhotoJobs(replace(config, workers=replace(config.workers, queues=(queue,))))


@pytest.fixture(scope="module")
def two_workers(start_worker):
    return [start_worker("default"), start_worker("default")]


def run_photo(jobs: PhotoJobs, owner: str, name: str, keep, mode: str = "blur"):
    """What a chat adapter does for one photo: submit, wait, choose, wait, fetch."""
    photo_id = jobs.submit_photo(owner, photo_bytes(name))
    assert jobs.wait(owner, photo_id, WAIT_SECONDS).state == JobState.FINISHED
    jobs.submit_process(owner, photo_id, keep, mode)
    status = jobs.wait(owner, photo_id, WAIT_SECONDS)
    assert status.state == JobState.FINISHED, status
    return photo_id, jobs.get_result(owner, photo_id)


def keys_mentioning(jobs: PhotoJobs, text: str) -> list[bytes]:
    return [key for key in jobs.connection.scan_iter(f"*{text}*")]


def box_slice(face):
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    return slice(max(0, y1), y2), slice(max(0, x1), x2)


def test_blur_changes_other_faces_and_leaves_kept_face_unchanged(redis_server, two_workers):
    jobs = make_client(redis_server)
    photo_id = jobs.submit_photo("telegram:1", photo_bytes("fr_two_people.jpg"))
    assert jobs.wait("telegram:1", photo_id, WAIT_SECONDS).state == JobState.FINISHED
    analysis = jobs.get_analysis("telegram:1", photo_id)
    assert len(analysis.faces) == 2
    assert jobs.get_sheet("telegram:1", photo_id)[:2] == b"\xff\xd8"  # a JPEG
    jobs.submit_process("telegram:1", photo_id, [1], "blur")
    assert jobs.wait("telegram:1", photo_id, WAIT_SECONDS).state == JobState.FINISHED
    result = jobs.get_result("telegram:1", photo_id)

    original = load_photo(photo_bytes("fr_two_people.jpg"))
    changed = load_photo(result.data).astype(int)
    assert changed.shape == original.shape
    kept, blurred = analysis.faces
    if result.extension == "png":
        assert np.array_equal(changed[box_slice(kept)], original[box_slice(kept)])
    else:  # the only change allowed inside the kept face is the JPEG re-encoding
        reencoded = load_photo(encode_photo(original, "jpeg")).astype(int)
        assert np.abs(changed[box_slice(kept)] - reencoded[box_slice(kept)]).mean() < 1.0
    assert np.abs(changed[box_slice(blurred)] - original[box_slice(blurred)]).mean() > 5.0


def test_forget_deletes_everything_after_delivery(redis_server, two_workers):
    jobs = make_client(redis_server)
    photo_id, _ = run_photo(jobs, "kakao:forget", "fr_obama_small.jpg", keep=[])
    record = jobs.store.get_record(photo_id)
    assert keys_mentioning(jobs, photo_id)
    jobs.forget("kakao:forget", photo_id)
    assert keys_mentioning(jobs, photo_id) == []
    assert keys_mentioning(jobs, record.analyze_job_id) == []
    assert keys_mentioning(jobs, record.process_job_id) == []
    assert jobs.get_status("kakao:forget", photo_id).state == JobState.EXPIRED
    with pytest.raises(PhotoExpired):
        jobs.get_result("kakao:forget", photo_id)


def test_every_stored_photo_key_has_a_ttl(redis_server, two_workers):
    jobs = make_client(redis_server)
    photo_id = jobs.submit_photo("telegram:ttl", photo_bytes("fr_obama_small.jpg"))
    assert jobs.wait("telegram:ttl", photo_id, WAIT_SECONDS).state == JobState.FINISHED
    keys = keys_mentioning(jobs, photo_id)
    assert len(keys) >= 4  # record, photo, analysis, sheet
    assert all(0 < jobs.connection.ttl(key) <= 3600 for key in keys)
    jobs.forget("telegram:ttl", photo_id)


def test_photo_data_is_gone_after_its_ttl(redis_server):
    jobs = make_client(redis_server, queue=IDLE_QUEUE, ttl_seconds=2)
    photo_id = jobs.submit_photo("telegram:short", photo_bytes("fr_obama_small.jpg"))
    assert jobs.get_status("telegram:short", photo_id).state == JobState.QUEUED
    time.sleep(3)
    assert jobs.get_status("telegram:short", photo_id).state == JobState.EXPIRED
    assert keys_mentioning(jobs, photo_id) == []
    with pytest.raises(PhotoExpired):
        jobs.get_sheet("telegram:short", photo_id)
    jobs.submit_photo("telegram:short", photo_bytes("fr_obama_small.jpg"))  # not busy any more


def test_second_photo_while_one_is_queued_is_refused_until_cancelled(redis_server):
    jobs = make_client(redis_server, queue=IDLE_QUEUE)
    first = jobs.submit_photo("telegram:busy", photo_bytes("fr_obama_small.jpg"))
    with pytest.raises(BusyError):
        jobs.submit_photo("telegram:busy", photo_bytes("fr_obama_small.jpg"))
    assert jobs.cancel("telegram:busy")
    assert jobs.get_status("telegram:busy", first).state == JobState.CANCELLED
    assert keys_mentioning(jobs, first) == [f"photobot:photo:{first}".encode()]  # only the cancelled mark
    second = jobs.submit_photo("telegram:busy", photo_bytes("fr_obama_small.jpg"))
    assert jobs.cancel("telegram:busy")
    assert not jobs.cancel("telegram:busy")
    assert jobs.get_status("telegram:busy", second).state == JobState.CANCELLED


def test_queue_position_counts_the_jobs_ahead(redis_server):
    jobs = make_client(redis_server, queue="positions")
    owners = [f"kakao:line{number}" for number in range(3)]
    photo_ids = [jobs.submit_photo(owner, photo_bytes("fr_obama_small.jpg")) for owner in owners]
    positions = [jobs.get_status(owner, photo_id).queue_position for owner, photo_id in zip(owners, photo_ids)]
    assert positions == [1, 2, 3]
    jobs.cancel(owners[0])
    assert jobs.get_status(owners[2], photo_ids[2]).queue_position == 2
    for owner in owners[1:]:
        jobs.cancel(owner)


def test_another_owners_photo_id_behaves_as_expired(redis_server):
    jobs = make_client(redis_server, queue=IDLE_QUEUE)
    photo_id = jobs.submit_photo("telegram:alice", photo_bytes("fr_obama_small.jpg"))
    assert jobs.get_status("telegram:bob", photo_id) == jobs.get_status("telegram:bob", "no-such-photo")
    for read in (jobs.get_sheet, jobs.get_result, jobs.get_analysis):
        with pytest.raises(PhotoExpired):
            read("telegram:bob", photo_id)
    with pytest.raises(PhotoExpired):
        jobs.submit_process("telegram:bob", photo_id, [1], "blur")
    jobs.forget("telegram:bob", photo_id)
    assert not jobs.cancel("telegram:bob")
    assert jobs.get_status("telegram:alice", photo_id).state == JobState.QUEUED
    jobs.cancel("telegram:alice")


def test_unreadable_photo_is_reported_as_a_failure_with_its_reason(redis_server, two_workers):
    jobs = make_client(redis_server)
    photo_id = jobs.submit_photo("telegram:junk", b"this is not a photo")
    status = jobs.wait("telegram:junk", photo_id, WAIT_SECONDS)
    assert status.state == JobState.FAILED
    assert status.error_code in ("unsupported_format", "corrupt")
    assert status.error_message
    with pytest.raises(NotReady):
        jobs.get_sheet("telegram:junk", photo_id)
    jobs.submit_photo("telegram:junk", photo_bytes("fr_obama_small.jpg"))  # a failed job frees the owner


def test_each_of_ten_users_gets_only_their_own_results(redis_server, two_workers):
    jobs = make_client(redis_server)
    photos = ["fr_obama_small.jpg", "mpl_grace_hopper.jpg", "fr_two_people.jpg"]
    sizes = {name: load_photo(photo_bytes(name)).shape for name in photos}
    delivered: dict[str, list[tuple[str, str]]] = {}

    def chat(user: int) -> None:
        owner = f"telegram:{1000 + user}"
        delivered[owner] = []
        for number in range(5):
            name = photos[(user + number) % len(photos)]
            photo_id, result = run_photo(jobs, owner, name, keep=[])
            assert load_photo(result.data).shape == sizes[name]
            delivered[owner].append((photo_id, name))

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(chat, range(10)))

    assert sum(len(photos) for photos in delivered.values()) == 50
    owners = sorted(delivered)
    for owner, other in zip(owners, owners[1:] + owners[:1]):
        for photo_id, _ in delivered[owner]:
            assert jobs.get_status(other, photo_id).state == JobState.EXPIRED
            with pytest.raises(PhotoExpired):
                jobs.get_result(other, photo_id)
            jobs.forget(owner, photo_id)


def test_workers_and_clients_reconnect_after_redis_restarts(redis_server, two_workers):
    jobs = make_client(redis_server)
    run_photo(jobs, "kakao:before", "fr_obama_small.jpg", keep=[])
    redis_server.stop()
    redis_server.start(timeout_seconds=10)
    photo_id, result = run_photo(jobs, "kakao:after", "fr_obama_small.jpg", keep=[])
    assert result.data
    assert all(worker.process.poll() is None for worker in two_workers)


def rq_job(jobs: PhotoJobs, photo_id: str) -> Job:
    return jobs.queue.fetch_job(jobs.store.get_record(photo_id).latest_job_id)


def wait_until_started(jobs: PhotoJobs, owner: str, photo_id: str, retries_left: int) -> None:
    """Wait until the analysis runs with `retries_left` (1 on the first try, 0 on the retry)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        job = rq_job(jobs, photo_id)
        if jobs.get_status(owner, photo_id).state == JobState.STARTED and job.retries_left == retries_left:
            return
        time.sleep(0.02)
    raise AssertionError("the job never started")


def test_killed_worker_job_is_retried_on_another_worker(redis_server, start_worker):
    jobs = make_client(redis_server, queue="crash-once")
    first = start_worker("crash-once")
    photo_id = jobs.submit_photo("telegram:crash", photo_bytes("fr_obama-1080p.jpg"))
    wait_until_started(jobs, "telegram:crash", photo_id, retries_left=1)
    first.kill()
    start_worker("crash-once")
    status = jobs.wait("telegram:crash", photo_id, WAIT_SECONDS)
    assert status.state == JobState.FINISHED
    assert rq_job(jobs, photo_id).retries_left == 0  # it really was cut off and run again
    assert len(jobs.get_analysis("telegram:crash", photo_id).faces) == 1


def test_a_starting_worker_makes_replace_donors_before_it_takes_a_job(redis_server):
    """The first start makes the new identities, for longer than a job may run: a first replace job
    left to make them would time out, and so would the next."""
    from workers.jobs import prepare_context

    environ = {"REDIS_URL": redis_server.url, "PIPELINE_IDENTITIES": str(TEST_IDENTITIES)}
    context = prepare_context(load_config(environ=environ, schema=WorkersConfig), "cpu")
    assert context.models.replace.loaded


def test_job_whose_worker_dies_twice_fails_with_a_clear_reason(redis_server, start_worker):
    jobs = make_client(redis_server, queue="crash-twice")
    first = start_worker("crash-twice")
    photo_id = jobs.submit_photo("telegram:crash2", photo_bytes("fr_obama-1080p.jpg"))
    wait_until_started(jobs, "telegram:crash2", photo_id, retries_left=1)
    first.kill()
    second = start_worker("crash-twice")
    wait_until_started(jobs, "telegram:crash2", photo_id, retries_left=0)
    second.kill()
    start_worker("crash-twice")
    status = jobs.wait("telegram:crash2", photo_id, WAIT_SECONDS)
    assert (status.state, status.kind, status.error_code) == (JobState.FAILED, JobKind.ANALYZE, "worker_lost")
    assert "worker" in status.error_message
    jobs.submit_photo("telegram:crash2", photo_bytes("fr_obama_small.jpg"))  # the owner is free again
