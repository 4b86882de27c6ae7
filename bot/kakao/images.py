"""Image links that Kakao fetches: `{public_url}/img/<token>.jpg`.

Kakao shows a picture by downloading its `imageUrl` itself, so the skill server
hosts the contact sheet, the face thumbnails and the result. Each gets a random
token (`secrets.token_urlsafe`, 192 bits): the URL holds no photo id and no user
id, and cannot be guessed. In Redis:

    kakao:image:<token>      hash: owner, photo_id, what ("sheet", "face:3", "result"),
                             extension, and for "result" a copy of the bytes
    kakao:images:<photo_id>  hash: what -> token, so one picture keeps one URL

The sheet and the thumbnails are read from the photo's storage when Kakao asks,
so they disappear with the photo (expiry, /cancel, delivery). The result is a
copy, because the photo is forgotten as soon as the result is delivered while
Kakao may fetch the image a little later; that copy lives
`result_ttl_seconds` (10 minutes by default) and never past the photo's own
expiry. Every token expires with the photo at the latest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from redis import Redis

from workers.client import PhotoJobs
from workers.errors import NotReady, PhotoExpired
from workers.storage import kakao_image_key, kakao_photo_images_key

TOKEN_BYTES = 24
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str


def url_extension(extension: str) -> str:
    """A result file's extension ("jpeg", "png") as used in our URLs ("jpg", "png")."""
    return "png" if extension.lower() == "png" else "jpg"


class ImageLinks:
    """Makes and resolves image URLs.

    Args:
        connection: Redis (the one the photo jobs use).
        jobs: where sheets, thumbnails and results are read from.
        public_url: the base URL at which Kakao reaches this server.
    """

    def __init__(self, connection: Redis, jobs: PhotoJobs, public_url: str):
        self.connection = connection
        self.jobs = jobs
        self.public_url = public_url.rstrip("/")

    def urls(self, owner: str, photo_id: str, whats: list[str], ttl_seconds: int) -> dict[str, str]:
        """URLs of the photo's sheet ("sheet") or thumbnails ("face:N"); the same URL each time."""
        map_key = kakao_photo_images_key(photo_id)
        tokens = {what.decode(): token.decode() for what, token in self.connection.hgetall(map_key).items()}
        missing = [what for what in whats if what not in tokens]
        if missing:
            ttl_seconds = max(1, int(ttl_seconds))
            with self.connection.pipeline() as pipeline:
                for what in missing:
                    token = secrets.token_urlsafe(TOKEN_BYTES)
                    record = {"owner": owner, "photo_id": photo_id, "what": what, "extension": "jpg"}
                    pipeline.hset(kakao_image_key(token), mapping=record)
                    pipeline.expire(kakao_image_key(token), ttl_seconds)
                    pipeline.hsetnx(map_key, what, token)
                pipeline.expire(map_key, ttl_seconds)
                pipeline.execute()
            tokens = {what.decode(): token.decode() for what, token in self.connection.hgetall(map_key).items()}
        return {what: f"{self.public_url}/img/{tokens[what]}.jpg" for what in whats}

    def result_url(self, owner: str, photo_id: str, data: bytes, extension: str, ttl_seconds: int) -> str:
        """A URL serving a copy of the result for `ttl_seconds` (the same URL if asked again)."""
        map_key = kakao_photo_images_key(photo_id)
        extension = url_extension(extension)
        token = self.connection.hget(map_key, "result")
        if token is None or not self.connection.exists(kakao_image_key(token.decode())):
            token = secrets.token_urlsafe(TOKEN_BYTES)
            record = {"owner": owner, "photo_id": photo_id, "what": "result", "extension": extension, "data": data}
            with self.connection.pipeline() as pipeline:
                pipeline.hset(kakao_image_key(token), mapping=record)
                pipeline.expire(kakao_image_key(token), max(1, int(ttl_seconds)))
                pipeline.hset(map_key, "result", token)
                pipeline.expire(map_key, max(1, int(ttl_seconds)))
                pipeline.execute()
        else:
            token = token.decode()
        return f"{self.public_url}/img/{token}.{extension}"

    def resolve(self, token: str, extension: str) -> Image | None:
        """The picture behind a token, or None: unknown, expired, or its photo is gone."""
        record = self.connection.hgetall(kakao_image_key(token))
        if not record or record.get(b"extension", b"").decode() != extension:
            return None
        owner, photo_id, what = (record[field].decode() for field in (b"owner", b"photo_id", b"what"))
        content_type = CONTENT_TYPES[extension]
        if what == "result":
            return Image(record.get(b"data", b""), content_type)
        try:
            if what == "sheet":
                return Image(self.jobs.get_sheet(owner, photo_id), content_type)
            if what.startswith("face:"):
                return Image(self.jobs.get_thumbnail(owner, photo_id, int(what.split(":", 1)[1])), content_type)
        except (PhotoExpired, NotReady):
            return None
        return None
