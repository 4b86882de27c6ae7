"""The follow loop: poll a photo's job in the background and show what changes."""

from __future__ import annotations

import asyncio

from telegram.ext import Application

from bot.session import Conversation, ReplyKind, Session, State
from bot.telegram.render import ProgressMessage, Screen, render

FOLLOW_INTERVAL_SECONDS = 0.5
"""How often a running job's status is read."""

FollowedJob = tuple[str, State]
"""A job: its photo's id and the state the session is in while it runs (ANALYZING or PROCESSING).

Followers are keyed by job, not by photo: "go" on the sheet starts the photo's
second job while the follower of its first may still be finishing (deleting
its progress message), and that follower must not be taken for the new one's.
"""


def job_of(session: Session) -> FollowedJob:
    """The job a session in ANALYZING or PROCESSING waits for."""
    return session.photo_id, session.state


async def follow_photo(application: Application, conversation: Conversation, followers: dict[str, FollowedJob], owner: str, job: FollowedJob, progress: ProgressMessage) -> None:
    """Poll the photo's job; show its progress, then the sheet or the result, or what went wrong."""
    photo_id = job[0]
    bot = application.bot
    try:
        while application.running:
            replies, finished = await asyncio.to_thread(conversation.follow, owner, photo_id)
            if replies:
                only_progress = all(reply.kind == ReplyKind.PROGRESS for reply in replies)
                language = "" if only_progress else await asyncio.to_thread(conversation.language, owner)
                await render(Screen(bot, conversation, owner, progress.chat_id, language, photo_id, progress=progress), replies)
            if finished:
                if replies and replies[0].kind in (ReplyKind.SHEET, ReplyKind.RESULT):
                    await progress.delete(bot)
                return
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
    finally:
        if followers.get(owner) == job:
            del followers[owner]


def start_following(application: Application, conversation: Conversation, followers: dict[str, FollowedJob], owner: str, job: FollowedJob, progress: ProgressMessage, update: object) -> None:
    """Follow the owner's job in the background, unless it is already followed."""
    if followers.get(owner) == job:
        return
    followers[owner] = job
    application.create_task(follow_photo(application, conversation, followers, owner, job, progress), update=update)
