"""What a user missed because an answer could not reach them, kept for their next message.

A callback URL lives about a minute and works once; when the work outlives it, or
Kakao refuses the callback, the answer is lost. What matters from it is kept here
(results need nothing: the session stays PROCESSING and the next message shows
the result again):

    kakao_notice_key(owner)  list of texts (an error, a refusal) to put before the next answer
    kakao_unseen_key(owner)  the photo id whose contact sheet the user has not seen yet

(key names in `workers.storage`).
Both expire with the storage TTL; they hold texts and ids, never images.
"""

from __future__ import annotations

from redis import Redis

from workers.storage import kakao_notice_key, kakao_unseen_key

MAX_NOTICES = 5


class PendingStore:
    def __init__(self, connection: Redis, ttl_seconds: int):
        self.connection = connection
        self.ttl_seconds = ttl_seconds

    def add_notices(self, owner: str, texts: list[str]) -> None:
        if not texts:
            return
        key = kakao_notice_key(owner)
        with self.connection.pipeline() as pipeline:
            pipeline.rpush(key, *texts)
            pipeline.ltrim(key, -MAX_NOTICES, -1)
            pipeline.expire(key, self.ttl_seconds)
            pipeline.execute()

    def pop_notices(self, owner: str) -> list[str]:
        key = kakao_notice_key(owner)
        with self.connection.pipeline() as pipeline:
            pipeline.lrange(key, 0, -1)
            pipeline.delete(key)
            texts, _ = pipeline.execute()
        return [item.decode() for item in texts]

    def mark_unseen_sheet(self, owner: str, photo_id: str) -> None:
        self.connection.set(kakao_unseen_key(owner), photo_id, ex=self.ttl_seconds)

    def pop_unseen_sheet(self, owner: str) -> str:
        """The photo id whose sheet the user missed ("" when none); the mark is cleared."""
        photo_id = self.connection.getdel(kakao_unseen_key(owner))
        return photo_id.decode() if photo_id else ""

    def clear_unseen_sheet(self, owner: str) -> None:
        self.connection.delete(kakao_unseen_key(owner))
