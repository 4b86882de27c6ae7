"""`render(screen, replies)`: the one place that turns the conversation's replies into Telegram messages."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from telegram import CallbackQuery, Message
from telegram.error import BadRequest, TelegramError

from bot.messages import text
from bot.session import Conversation, Reply, ReplyKind
from bot.telegram.keyboard import build_keyboard, sheet_caption
from bot.telegram.transport import edit_quietly

logger = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL_SECONDS = 3.0
"""Least time between two edits of the progress message (Telegram limits edits)."""
PHOTO_MAX_BYTES = 10_000_000
"""sendPhoto's limit; a larger result is sent only as a document."""
ALERT_MAX_CHARS = 200


@dataclass
class ProgressMessage:
    """The one status message of a running job, edited in place, never too often."""

    chat_id: int
    message_id: int
    text: str
    edited_at: float = field(default_factory=time.monotonic)

    async def show(self, bot, new_text: str) -> None:
        """Edit the message to `new_text` if it changed and the last edit is old enough."""
        if new_text == self.text or time.monotonic() - self.edited_at < PROGRESS_EDIT_INTERVAL_SECONDS:
            return
        self.text, self.edited_at = new_text, time.monotonic()
        await edit_quietly(bot.edit_message_text(new_text, chat_id=self.chat_id, message_id=self.message_id))

    async def delete(self, bot) -> None:
        """Remove the finished progress message; if that fails it simply stays."""
        try:
            await bot.delete_message(self.chat_id, self.message_id)
        except TelegramError as error:
            logger.info("progress message not deleted: %s", error)


@dataclass
class Screen:
    """Where the replies to one user's update go, and what is already on screen."""

    bot: object
    conversation: Conversation
    owner: str
    chat_id: int
    language: str
    photo_id: str = ""  # the photo a RESULT belongs to
    placeholder: Message | None = None  # "working…" sent before the conversation answered: a TEXT replaces it
    progress: ProgressMessage | None = None  # the status line of a followed job: PROGRESS edits it
    query: CallbackQuery | None = None  # a pressed button: TEXT replies are its alert


async def render(screen: Screen, replies: list[Reply]) -> ProgressMessage | None:
    """Show the replies, each kind in its one way.

    Returns:
        The progress message of a job that now needs following (a PROGRESS reply
        with no followed job on screen yet), else None.
    """
    started = None
    if screen.query is not None:
        alerts = [reply.text for reply in replies if reply.kind == ReplyKind.TEXT]
        await screen.query.answer("\n".join(alerts)[:ALERT_MAX_CHARS] or None, show_alert=bool(alerts))
    for reply in replies:
        if reply.kind == ReplyKind.TEXT:
            if screen.query is not None:
                continue  # shown as the button's alert
            if screen.placeholder is not None:
                await edit_quietly(screen.placeholder.edit_text(reply.text))
            else:
                await screen.bot.send_message(screen.chat_id, reply.text)
        elif reply.kind == ReplyKind.PROGRESS:
            if screen.progress is not None:
                await screen.progress.show(screen.bot, reply.text)
                continue
            started = screen.progress = await start_progress(screen, reply)
        elif reply.kind == ReplyKind.SHEET:
            await send_sheet(screen, reply)
        elif reply.kind == ReplyKind.SELECTION:
            await update_sheet(screen, reply)
        elif reply.kind == ReplyKind.RESULT:
            await send_result(screen, reply)
    return started


async def start_progress(screen: Screen, reply: Reply) -> ProgressMessage:
    """The status message of a job just queued: the "working…" placeholder, or a new message after a button."""
    if screen.placeholder is not None:
        message = screen.placeholder
    else:
        if screen.query is not None and isinstance(screen.query.message, Message):  # go: the sheet's buttons are done
            await edit_quietly(screen.query.message.edit_reply_markup(reply_markup=None))
        message = await screen.bot.send_message(screen.chat_id, reply.text)
    return ProgressMessage(message.chat_id, message.message_id, message.text or "")


async def send_sheet(screen: Screen, reply: Reply) -> None:
    """The contact sheet with its keyboard; its message id is kept so later choices edit it."""
    message = await screen.bot.send_photo(
        screen.chat_id,
        photo=reply.image,
        caption=sheet_caption(reply, screen.language),
        reply_markup=build_keyboard(reply.selection, screen.language),
    )
    await asyncio.to_thread(screen.conversation.remember, screen.owner, chat_id=screen.chat_id, sheet_message_id=message.message_id)


async def update_sheet(screen: Screen, reply: Reply) -> None:
    """Edit the user's sheet message in place (the one kept, else the one whose button was pressed)."""
    if not reply.changed:  # Telegram refuses an edit that changes nothing
        return
    refs = (await asyncio.to_thread(screen.conversation.current, screen.owner)).refs
    if "sheet_message_id" in refs:
        chat_id, message_id = int(refs["chat_id"]), int(refs["sheet_message_id"])
    elif screen.query is not None and screen.query.message is not None:
        chat_id, message_id = screen.query.message.chat_id, screen.query.message.message_id
    else:
        return
    await edit_quietly(
        screen.bot.edit_message_caption(
            chat_id=chat_id,
            message_id=message_id,
            caption=sheet_caption(reply, screen.language),
            reply_markup=build_keyboard(reply.selection, screen.language),
        )
    )


async def send_result(screen: Screen, reply: Reply) -> None:
    """The result as a photo (to view) and as a file (full quality); then the photo is forgotten."""
    result = reply.result
    if len(result.data) <= PHOTO_MAX_BYTES:
        try:
            await screen.bot.send_photo(screen.chat_id, photo=result.data, caption=reply.text)
        except BadRequest as error:  # e.g. a panorama Telegram will not show as a photo
            logger.warning("result of %s not sent as a photo: %s", screen.photo_id, error)
    await screen.bot.send_document(
        screen.chat_id,
        document=result.data,
        filename=f"faceprivacy.{result.extension}",
        caption=text("result_document_credentials" if result.content_credentials else "result_document", screen.language),
    )
    await asyncio.to_thread(screen.conversation.delivered, screen.owner, screen.photo_id)
