"""One callback per user action: each turns an update into one `Conversation` call and renders its replies.

Decisions worth knowing:
- Albums (several photos sent together, one `media_group_id`): the first photo is
  handled; the user is told once per album "one photo at a time", and the rest
  are ignored. (Queueing them would break "one photo at a time" in `PhotoJobs`.)
- Files over `telegram.max_file_bytes` (20 MB, the Bot API download limit) and
  documents that are not images are refused before anything is downloaded.
- Each button action has its own `CallbackQueryHandler` with the pattern of its
  data; data no pattern matches (an old message) is answered "expired".
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from telegram import Document, Update, User
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.messages import LANGUAGES, normalize_language, text
from bot.session import Conversation, Reply, State
from bot.settings import TelegramSettings
from bot.telegram.follow import FollowedJob, job_of, start_following
from bot.telegram.keyboard import (
    CHANGE_ALL,
    FACES_PER_PAGE,
    GO,
    KEEP_ALL,
    MODE,
    PAGE,
    TOGGLE,
    callback_pattern,
    parse_callback_data,
)
from bot.telegram.render import ProgressMessage, Screen, render
from bot.telegram.transport import edit_quietly

logger = logging.getLogger(__name__)

ALBUM_MEMORY_SECONDS = 600
"""How long an album's id is remembered, so its later photos are ignored."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")
NEW_MESSAGE = filters.UpdateType.MESSAGE  # edited messages are not new photos or new choices
OTHER_MEDIA = filters.VIDEO | filters.ANIMATION | filters.Sticker.ALL | filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE


@dataclass
class Adapter:
    """What the callbacks share: the conversation, the settings, and this process's follow-up state."""

    conversation: Conversation
    settings: TelegramSettings
    followers: dict[str, FollowedJob] = field(default_factory=dict)  # owner -> the job its running follower follows
    albums: dict[str, float] = field(default_factory=dict)  # media_group_id -> when its first photo came

    def first_of_album(self, media_group_id: str) -> bool:
        """True for the first photo of an album, False for the ones after it."""
        now = time.monotonic()
        for old in [key for key, seen in self.albums.items() if now - seen > ALBUM_MEMORY_SECONDS]:
            del self.albums[old]
        if media_group_id in self.albums:
            return False
        self.albums[media_group_id] = now
        return True


def owner_of(user: User) -> str:
    """The session owner for a Telegram user."""
    return f"telegram:{user.id}"


def adapter_of(context: ContextTypes.DEFAULT_TYPE) -> Adapter:
    return context.bot_data["adapter"]


def is_image_document(document: Document) -> bool:
    """An uncompressed photo sent as a file: an image MIME type or an image file name."""
    mime_type = (document.mime_type or "").lower()
    file_name = (document.file_name or "").lower()
    return mime_type.startswith("image/") or file_name.endswith(IMAGE_EXTENSIONS)


def too_big_text(size_bytes: int, limit_bytes: int, language: str) -> str:
    return text("too_big_file", language, size_mb=f"{size_bytes / 1e6:.1f}", limit_mb=f"{limit_bytes / 1e6:.0f}")


async def language_of(adapter: Adapter, user: User) -> str:
    """The user's language: /lang if they chose one, else their Telegram language."""
    return await asyncio.to_thread(adapter.conversation.language, owner_of(user), user.language_code)


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE, replies: list[Reply], **screen) -> None:
    """Render the replies to this update's user; follow the job a PROGRESS reply started."""
    adapter, user = adapter_of(context), update.effective_user
    owner, language = owner_of(user), await language_of(adapter, user)
    chat_id = update.effective_chat.id
    started = await render(Screen(context.bot, adapter.conversation, owner, chat_id, language, **screen), replies)
    if started is not None:
        await follow_if_running(context, update, owner, started)


async def follow_if_running(context: ContextTypes.DEFAULT_TYPE, update: Update, owner: str, progress: ProgressMessage) -> None:
    """Follow the owner's job in the background while one runs."""
    adapter = adapter_of(context)
    session = await asyncio.to_thread(adapter.conversation.current, owner)
    if session.state in (State.ANALYZING, State.PROCESSING):
        start_following(context.application, adapter.conversation, adapter.followers, owner, job_of(session), progress, update)


# --- commands ---------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: say hello and what to send."""
    await answer_command(update, context, "start")


async def show_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: how choosing works."""
    await answer_command(update, context, "help")


async def show_privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/privacy: what we keep and for how long."""
    await answer_command(update, context, "privacy")


async def answer_command(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> None:
    user = update.effective_user
    replies = await asyncio.to_thread(adapter_of(context).conversation.start, owner_of(user), user.language_code, key)
    await answer(update, context, replies)


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: stop the job, delete the photo, and wait for a new one."""
    replies = await asyncio.to_thread(adapter_of(context).conversation.cancel, owner_of(update.effective_user))
    await answer(update, context, replies)


async def change_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/lang, /lang en, /lang ko: switch (or set) the language from now on."""
    adapter, user = adapter_of(context), update.effective_user
    current = await language_of(adapter, user)
    if context.args:
        wanted = context.args[0].lower().split("-")[0]
        if wanted not in LANGUAGES:
            await update.effective_message.reply_text(text("lang_usage", current))
            return
    else:
        wanted = "en" if current == "ko" else "ko"
    replies = await asyncio.to_thread(adapter.conversation.set_language, owner_of(user), wanted)
    await answer(update, context, replies)


# --- messages ---------------------------------------------------------------------


async def receive_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or an image file: say "working", queue its analysis and follow it."""
    adapter, message, user = adapter_of(context), update.effective_message, update.effective_user
    owner, language = owner_of(user), await language_of(adapter, user)
    if message.media_group_id:
        if not adapter.first_of_album(message.media_group_id):
            return
        await message.reply_text(text("album", language))
    if message.document is not None and not is_image_document(message.document):
        await message.reply_text(text("not_an_image", language))
        return
    attachment = message.document or max(message.photo, key=lambda size: size.width * size.height)
    limit = adapter.settings.max_file_bytes
    if (attachment.file_size or 0) > limit:
        await message.reply_text(too_big_text(attachment.file_size, limit, language))
        return
    placeholder = await message.reply_text(text("working", language))
    photo_file = await attachment.get_file()
    data = bytes(await photo_file.download_as_bytearray())
    if len(data) > limit:
        await edit_quietly(placeholder.edit_text(too_big_text(len(data), limit, language)))
        return
    replies = await asyncio.to_thread(adapter.conversation.receive_photo, owner, data, user.language_code)
    del data
    await answer(update, context, replies, placeholder=placeholder)


async def not_a_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A video, sticker, voice note…: ask for a photo."""
    language = await language_of(adapter_of(context), update.effective_user)
    await update.effective_message.reply_text(text("not_an_image", language))


async def typed_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Typed text: face numbers, all/none, a mode, go, or anything else the session answers."""
    adapter, message, user = adapter_of(context), update.effective_message, update.effective_user
    owner = owner_of(user)
    session = await asyncio.to_thread(adapter.conversation.current, owner)
    if adapter.followers.get(owner) == job_of(session):
        language = await language_of(adapter, user)
        await message.reply_text(text("processing" if session.state == State.PROCESSING else "working", language))
        return
    replies = await asyncio.to_thread(adapter.conversation.type_text, owner, message.text, user.language_code)
    await answer(update, context, replies, photo_id=session.photo_id)


# --- buttons, one handler per action ----------------------------------------------


async def press(update: Update, context: ContextTypes.DEFAULT_TYPE, choose) -> None:
    """Run `choose(conversation, owner, photo_id, argument)` for the pressed button and show its replies."""
    query, conversation = update.callback_query, adapter_of(context).conversation
    _, photo_id, argument = parse_callback_data(query.data)
    replies = await asyncio.to_thread(choose, conversation, owner_of(update.effective_user), photo_id, argument)
    await answer(update, context, replies, query=query)


async def toggle_face(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✅/🔒 N: keep the face if it was changed, change it if it was kept."""
    await press(update, context, lambda c, owner, photo_id, number: c.toggle(owner, photo_id, int(number)))


async def keep_all(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep all: change no face."""
    await press(update, context, lambda c, owner, photo_id, _: c.keep_all(owner, photo_id, True))


async def change_all(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Change all: keep no face."""
    await press(update, context, lambda c, owner, photo_id, _: c.keep_all(owner, photo_id, False))


async def choose_mode(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A mode button: replace, unmask or blur."""
    await press(update, context, lambda c, owner, photo_id, mode: c.choose_mode(owner, photo_id, mode))


async def turn_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ ▶: another page of face buttons."""
    await press(update, context, lambda c, owner, photo_id, page: c.turn_page(owner, photo_id, int(page), FACES_PER_PAGE))


async def go(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Go: change every face not kept; the sheet's buttons go and a progress message follows the job."""
    await press(update, context, lambda c, owner, photo_id, _: c.go(owner, photo_id))


async def invalid_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this version does not know (an old message): say the photo has expired."""
    language = await language_of(adapter_of(context), update.effective_user)
    await update.callback_query.answer(text("expired", language), show_alert=True)


async def report_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (never the photo) and tell the user something went wrong."""
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("telegram update %s failed", update_id, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    language = normalize_language(update.effective_user.language_code if update.effective_user else None)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
    except TelegramError:
        pass  # already answered
    try:
        await context.bot.send_message(update.effective_chat.id, text("error", language))
    except TelegramError as error:
        logger.warning("could not tell chat about the failure: %s", error)


def build_handlers() -> list[BaseHandler]:
    """Every handler, in the order PTB tries them."""
    return [
        CommandHandler("start", start),
        CommandHandler("help", show_help),
        CommandHandler("privacy", show_privacy),
        CommandHandler("cancel", cancel),
        CommandHandler("lang", change_language),
        MessageHandler(NEW_MESSAGE & (filters.PHOTO | filters.Document.ALL), receive_photo),
        MessageHandler(NEW_MESSAGE & filters.TEXT & ~filters.COMMAND, typed_text),
        MessageHandler(NEW_MESSAGE & OTHER_MEDIA, not_a_photo),
        CallbackQueryHandler(toggle_face, pattern=callback_pattern(TOGGLE, r"[0-9]{1,4}")),
        CallbackQueryHandler(keep_all, pattern=callback_pattern(KEEP_ALL)),
        CallbackQueryHandler(change_all, pattern=callback_pattern(CHANGE_ALL)),
        CallbackQueryHandler(choose_mode, pattern=callback_pattern(MODE, r"[a-z]{1,10}")),
        CallbackQueryHandler(turn_page, pattern=callback_pattern(PAGE, r"[0-9]{1,4}")),
        CallbackQueryHandler(go, pattern=callback_pattern(GO)),
        CallbackQueryHandler(invalid_button),
    ]
