"""What a user missed because an answer could not reach them, kept for their next message.

A callback URL lives about a minute and works once; when the work outlives it, or
Kakao refuses the callback, the answer is lost. What matters from it is kept here
(results need nothing: the session stays PROCESSING and the next message shows
the result again):

    kakao:notice:<owner>  list of texts (an error, a refusal) to put before the next answer
    kakao:unseen:<owner>  the photo id whose contact sheet the user has not seen yet

Both expire with the storage TTL; they hold texts and ids, never images.
"""

from __future__ import annotations

from redis import Redis

NOTICE_KEY_PREFIX = "kakao:notice:"
UNSEEN_KEY_PREFIX = "kakao:unseen:"
MAX_NOTICES = 5


class PendingStore:
    def __init__(self, connection: Redis, ttl_seconds: int):
        self.connection = connection
        self.ttl_seconds = ttl_seconds

    def add_notices(self, owner: str, texts: list[str]) -> None:
        if not texts:
            return
        key = NOTICE_KEY_PREFIX + owner
        with self.connection.pipeline() as pipeline:
            pipeline.rpush(key, *texts)
            pipeline.ltrim(key, -MAX_NOTICES, -1)
            pipeline.expire(key, self.ttl_seconds)
            pipeline.execute()

    def pop_notices(self, owner: str) -> list[str]:
        key = NOTICE_KEY_PREFIX + owner
        with self.connection.pipeline() as pipeline:
            pipeline.lrange(key, 0, -1)
            pipeline.delete(key)
            texts, _ = pipeline.execute()
        return [item.decode() for item in texts]

    def mark_unseen_sheet(self, owner: str, photo_id: str) -> None:
        self.connection.set(UNSEEN_KEY_PREFIX + owner, photo_id, ex=self.ttl_seconds)

    def pop_unseen_sheet(self, owner: str) -> str:
        """The photo id whose sheet the user missed ("" when none); the mark is cleared."""
        photo_id = self.connection.getdel(UNSEEN_KEY_PREFIX + owner)
        return photo_id.decode() if photo_id else ""

    def clear_unseen_sheet(self, owner: str) -> None:
        self.connection.delete(UNSEEN_KEY_PREFIX + owner)
