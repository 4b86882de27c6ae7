"""Where photos, contact sheets and results live between the bot and the workers.

This module owns every key name (the chat adapters' keys too) and every TTL. A photo's record (its owner and
job ids) is a small Redis hash; the binary parts go through a `BlobStore`,
Redis by default, so a shared disk or an object store can replace it. Every
part of a photo expires together with its record: parts written later get the
record's remaining TTL, and nothing is written once the record is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Protocol

from redis import Redis

from .defaults import KEY_PREFIX


class Part(str, Enum):
    """The binary parts of one photo."""

    PHOTO = "photo"
    SHEET = "sheet"
    ANALYSIS = "analysis"  # JSON: everything the analysis found, minus the sheet
    RESULT = "result"
    RESULT_INFO = "result_info"  # JSON: the result's content type, extension and faces changed otherwise than asked
    THUMBNAILS = "thumbnails"  # JSON: face number -> base64 square JPEG of that face


class JobKind(str, Enum):
    """The two jobs a photo goes through."""

    ANALYZE = "analyze"
    PROCESS = "process"


def key_for(photo_id: str, part: Part | None = None) -> str:
    """The Redis key of a photo's record, or of one of its parts."""
    record_key = f"{KEY_PREFIX}:photo:{photo_id}"
    return record_key if part is None else f"{record_key}:{part.value}"


def modes_key() -> str:
    """The Redis key where workers publish which modes they can run (no TTL: it describes the fleet)."""
    return f"{KEY_PREFIX}:modes"


def owner_key(owner: str) -> str:
    """The Redis key naming the owner's active job."""
    return f"{KEY_PREFIX}:owner:{owner}:active"


def watchdog_key(queue_name: str) -> str:
    """The lock the workers of a queue take turns on to look for abandoned jobs."""
    return f"{KEY_PREFIX}:watchdog:{queue_name}"


def session_key(owner: str) -> str:
    """The owner's chat session (`bot.session.Session` as JSON)."""
    return f"{KEY_PREFIX}:session:{owner}"


def session_lock_key(owner: str) -> str:
    """The lock that lets one event of the owner's run at a time (`bot.session.SessionStore.locked`)."""
    return f"{KEY_PREFIX}:session-lock:{owner}"


def kakao_image_key(token: str) -> str:
    """What an image URL token of the Kakao skill serves (a hash)."""
    return f"{KEY_PREFIX}:kakao:image:{token}"


def kakao_photo_images_key(photo_id: str) -> str:
    """The image URL tokens already made for a photo (a hash: what -> token)."""
    return f"{KEY_PREFIX}:kakao:images:{photo_id}"


def kakao_notice_key(owner: str) -> str:
    """Texts a Kakao user missed, to put before their next answer (a list)."""
    return f"{KEY_PREFIX}:kakao:notice:{owner}"


def kakao_unseen_key(owner: str) -> str:
    """The photo id whose contact sheet a Kakao user has not seen yet."""
    return f"{KEY_PREFIX}:kakao:unseen:{owner}"


class BlobStore(Protocol):
    """Binary values under names, each expiring after its own TTL."""

    def put(self, name: str, data: bytes, ttl_seconds: float) -> None: ...

    def get(self, name: str) -> bytes | None: ...

    def delete(self, names: Iterable[str]) -> None: ...


class RedisBlobStore:
    """The default `BlobStore`: binary Redis keys with a TTL."""

    def __init__(self, connection: Redis):
        self.connection = connection

    def put(self, name: str, data: bytes, ttl_seconds: float) -> None:
        self.connection.set(name, data, px=max(1, int(ttl_seconds * 1000)))

    def get(self, name: str) -> bytes | None:
        return self.connection.get(name)

    def delete(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            self.connection.delete(*names)


@dataclass(frozen=True)
class PhotoRecord:
    """Who sent a photo and which jobs ran on it."""

    owner: str
    analyze_job_id: str = ""
    process_job_id: str = ""
    cancelled: bool = False

    @property
    def latest_job_id(self) -> str:
        return self.process_job_id or self.analyze_job_id


# HSET only on an existing record, so an expired record is never recreated without a TTL.
_SET_FIELD_IF_EXISTS = """
if redis.call('exists', KEYS[1]) == 1 then
    redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
    return 1
end
return 0
"""

_RECORD_FIELDS = {
    "owner": "owner",
    "analyze_job_id": "analyze_job",
    "process_job_id": "process_job",
    "cancelled": "cancelled",
}


class PhotoStore:
    """Records and parts of photos, with one TTL per photo.

    Args:
        connection: Redis for the records (and the parts, unless `blobs` is given).
        ttl_seconds: how long a photo and everything about it lives after its upload.
        blobs: where the binary parts go; Redis keys by default.
    """

    def __init__(self, connection: Redis, ttl_seconds: int, blobs: BlobStore | None = None):
        self.connection = connection
        self.ttl_seconds = ttl_seconds
        self.blobs = blobs if blobs is not None else RedisBlobStore(connection)
        self._set_field_if_exists = connection.register_script(_SET_FIELD_IF_EXISTS)

    def create(self, photo_id: str, owner: str, photo: bytes) -> None:
        """Store a new photo and its record; both expire after `ttl_seconds`."""
        with self.connection.pipeline() as pipeline:
            pipeline.hset(key_for(photo_id), mapping={_RECORD_FIELDS["owner"]: owner})
            pipeline.expire(key_for(photo_id), self.ttl_seconds)
            pipeline.execute()
        self.blobs.put(key_for(photo_id, Part.PHOTO), photo, self.ttl_seconds)

    def get_record(self, photo_id: str) -> PhotoRecord | None:
        """The photo's record, or None once it expired or was deleted."""
        fields = self.connection.hgetall(key_for(photo_id))
        if not fields:
            return None
        values = {name: fields.get(field.encode(), b"").decode() for name, field in _RECORD_FIELDS.items()}
        return PhotoRecord(
            owner=values["owner"],
            analyze_job_id=values["analyze_job_id"],
            process_job_id=values["process_job_id"],
            cancelled=values["cancelled"] == "1",
        )

    def set_job_id(self, photo_id: str, kind: JobKind, job_id: str) -> bool:
        """Record the rq job id of a photo's job; False when the photo is gone."""
        field = _RECORD_FIELDS[f"{kind.value}_job_id"]
        return bool(self._set_field_if_exists(keys=[key_for(photo_id)], args=[field, job_id]))

    def read(self, photo_id: str, part: Part) -> bytes | None:
        """One part of a photo, or None when it is missing or expired."""
        return self.blobs.get(key_for(photo_id, part))

    def write(self, photo_id: str, part: Part, data: bytes) -> bool:
        """Store a part with the photo's remaining TTL.

        Returns:
            False, writing nothing, when the photo expired, was deleted or cancelled.
        """
        record = self.get_record(photo_id)
        remaining_ms = self.connection.pttl(key_for(photo_id))
        if record is None or record.cancelled or remaining_ms <= 0:
            return False
        self.blobs.put(key_for(photo_id, part), data, remaining_ms / 1000)
        record = self.get_record(photo_id)
        if record is None or record.cancelled:  # cancelled or forgotten while we wrote
            self.blobs.delete([key_for(photo_id, part)])
            return False
        return True

    def cancel(self, photo_id: str) -> None:
        """Mark the photo cancelled and delete its parts; the record stays until its TTL."""
        self._set_field_if_exists(keys=[key_for(photo_id)], args=[_RECORD_FIELDS["cancelled"], "1"])
        self.blobs.delete(key_for(photo_id, part) for part in Part)

    def delete(self, photo_id: str) -> None:
        """Delete the photo's parts and its record."""
        self.blobs.delete(key_for(photo_id, part) for part in Part)
        self.connection.delete(key_for(photo_id))
