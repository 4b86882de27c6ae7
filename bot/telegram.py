"""The Telegram adapter: photos in, contact sheet and buttons out, the changed photo back.

A user sends a photo (or an image file, which keeps full quality). The bot answers
"working…" at once, follows the analysis job, and sends the numbered contact sheet
with an inline keyboard: one ✅/🔒 button per face (20 per page, ◀ ▶ between pages),
"keep all", "hide all", the modes, and "go". Taps and typed numbers (`1 3`, `1번 3번`,
`모두`, `없음`) edit that one message in place. "Go" shows the queue position in one
message, edited at most every few seconds, then sends the result as a photo (to view)
and as a file (full quality, no EXIF), and the photo is deleted.

This module only translates: the conversation's states live in `bot.session`
(`Conversation`, one JSON record per user in Redis), so there is no
`ConversationHandler` here; each callback turns an update into one `Conversation`
call and its `Reply` objects into messages.

Decisions worth knowing:
- Albums (several photos sent together, one `media_group_id`): the first photo is
  handled; the user is told once per album "one photo at a time", and the rest
  are ignored. (Queueing them would break "one photo at a time" in `PhotoJobs`.)
- Buttons carry `<action>:<photo id>[:<argument>]`. The owner is always the person
  who pressed, so a button can only act on the presser's own session; a button of
  an older photo, or of someone else's, is answered "this photo has expired".
- Files over `telegram.max_file_bytes` (20 MB, the Bot API download limit) and
  documents that are not images are refused before anything is downloaded.
- Flood limits: every request goes through `RetryAfterLimiter`, which waits
  `retry_after` seconds and sends the same request again.
- Updates of different users are handled concurrently, one user's in order.

Running it inside an existing asyncio loop (next to the Kakao aiohttp server):

    application = build_application(config, conversation)
    await start_application(application, config)  # initialize, start, poll (or webhook)
    ...                                            # serve aiohttp, wait for a signal
    await stop_application(application)            # stop receiving, stop, shut down

or, spelled out (the customwebhookbot/starlettebot shape):

    async with application:
        await application.start()
        await start_receiving(application, config.telegram)  # start_polling, or setWebhook
        ...
        await stop_receiving(application)
        await application.stop()

Webhook (optional): set TELEGRAM_WEBHOOK_URL (the public HTTPS URL Telegram posts
to) and TELEGRAM_WEBHOOK_SECRET. `start_receiving` then calls setWebhook with that
secret token instead of polling, and `start_application` serves the URL's path on
its own aiohttp server at `telegram.webhook_port` (TELEGRAM_WEBHOOK_PORT, 8443),
behind your HTTPS proxy. To serve it on an existing aiohttp app instead, call
`add_webhook_route(aiohttp_app, application, config.telegram)` and use the
spelled-out form. Requests without the right `X-Telegram-Bot-Api-Secret-Token`
header get 403. (PTB's own `run_webhook` needs tornado, which we do not install.)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    BotCommand,
    CallbackQuery,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.messages import LANGUAGES, normalize_language, text
from bot.session import Conversation, Reply, ReplyKind, Selection, State
from pipeline.config import Config, TelegramSettings

logger = logging.getLogger(__name__)

FACES_PER_PAGE = 20
FACES_PER_ROW = 5
FOLLOW_INTERVAL_SECONDS = 0.5
"""How often a running job's status is read."""
PROGRESS_EDIT_INTERVAL_SECONDS = 3.0
"""Least time between two edits of the progress message (Telegram limits edits)."""
ALBUM_MEMORY_SECONDS = 600
"""How long an album's id is remembered, so its later photos are ignored."""
MAX_RETRIES_AFTER_FLOOD = 3
"""How many times one request is sent again after a 429 (RetryAfter)."""
PHOTO_MAX_BYTES = 10_000_000
"""sendPhoto's limit; a larger result is sent only as a document."""
CAPTION_MAX_CHARS = 1024
ALERT_MAX_CHARS = 200
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
COMMANDS = ("start", "help", "cancel", "privacy", "lang")

NEW_MESSAGE = filters.UpdateType.MESSAGE  # edited messages are not new photos or new choices
OTHER_MEDIA = filters.VIDEO | filters.ANIMATION | filters.Sticker.ALL | filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE

# Button actions, the first field of callback_data.
TOGGLE, KEEP_ALL, CHANGE_ALL, MODE, PAGE, GO = "t", "a", "n", "m", "p", "g"
CALLBACK_PATTERN = r"^[tanmpg]:[A-Za-z0-9_-]{1,40}(:[a-z0-9]{1,10})?$"


@dataclass
class Adapter:
    """What the callbacks share: the conversation, the settings, and this process's follow-up state."""

    conversation: Conversation
    settings: TelegramSettings
    followers: dict[str, str] = field(default_factory=dict)  # owner -> photo id of its running follower
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


# --- plain helpers: owners, callback data, keyboards, captions ------------------


def owner_of(user: User) -> str:
    """The session owner for a Telegram user."""
    return f"telegram:{user.id}"


def callback_data(action: str, photo_id: str, argument: object = "") -> str:
    """Short button data that names the photo, so a stale button is recognised."""
    return f"{action}:{photo_id}:{argument}" if argument != "" else f"{action}:{photo_id}"


def parse_callback_data(data: str) -> tuple[str, str, str]:
    """(action, photo id, argument) of a button; the argument may be ""."""
    action, photo_id, *rest = data.split(":")
    return action, photo_id, rest[0] if rest else ""


def build_keyboard(selection: Selection, language: str) -> InlineKeyboardMarkup:
    """Face toggles for the current page, paging, keep/hide all, the modes and go."""
    photo_id = selection.photo_id
    numbers = list(selection.page_numbers(FACES_PER_PAGE))
    rows = [
        [
            InlineKeyboardButton(
                f"{'✅' if number in selection.keep else '🔒'} {number}",
                callback_data=callback_data(TOGGLE, photo_id, number),
            )
            for number in numbers[start : start + FACES_PER_ROW]
        ]
        for start in range(0, len(numbers), FACES_PER_ROW)
    ]
    pages = selection.page_count(FACES_PER_PAGE)
    if pages > 1:
        page = selection.page
        paging = [InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=callback_data(PAGE, photo_id, page))]
        if page > 0:
            paging.insert(0, InlineKeyboardButton(text("button_previous", language), callback_data=callback_data(PAGE, photo_id, page - 1)))
        if page < pages - 1:
            paging.append(InlineKeyboardButton(text("button_next", language), callback_data=callback_data(PAGE, photo_id, page + 1)))
        rows.append(paging)
    rows.append(
        [
            InlineKeyboardButton(text("button_keep_all", language), callback_data=callback_data(KEEP_ALL, photo_id)),
            InlineKeyboardButton(text("button_change_all", language), callback_data=callback_data(CHANGE_ALL, photo_id)),
        ]
    )
    rows.append(
        [
            InlineKeyboardButton(
                ("• " if mode == selection.mode else "") + text(f"mode_{mode}", language),
                callback_data=callback_data(MODE, photo_id, mode),
            )
            for mode in ("replace", "unmask", "blur")
        ]
    )
    rows.append([InlineKeyboardButton(text("button_go", language), callback_data=callback_data(GO, photo_id))])
    return InlineKeyboardMarkup(rows)


def sheet_caption(selection: Selection, language: str, summary: str) -> str:
    """The sheet's caption: what to do, paging help for many faces, and the current choice."""
    count = selection.face_count
    parts = [text("sheet_caption_one" if count == 1 else "sheet_caption", language, count=count)]
    if count > FACES_PER_PAGE:
        parts.append(text("too_many_faces_typed", language, per_page=FACES_PER_PAGE))
    parts.append(summary)
    return "\n\n".join(parts)[:CAPTION_MAX_CHARS]


def is_image_document(document: Document) -> bool:
    """An uncompressed photo sent as a file: an image MIME type or an image file name."""
    mime_type = (document.mime_type or "").lower()
    file_name = (document.file_name or "").lower()
    return mime_type.startswith("image/") or file_name.endswith(IMAGE_EXTENSIONS)


async def edit_quietly(edit) -> None:
    """Run an edit; "message is not modified" (same content) is not an error."""
    try:
        await edit
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


def adapter_of(context: ContextTypes.DEFAULT_TYPE) -> Adapter:
    return context.bot_data["adapter"]


async def language_of(adapter: Adapter, user: User) -> str:
    """The user's language: /lang if they chose one, else their Telegram language."""
    return await asyncio.to_thread(adapter.conversation.language, owner_of(user), user.language_code)


# --- sending what the conversation says ----------------------------------------


async def send_reply(bot, adapter: Adapter, chat_id: int, owner: str, photo_id: str, reply: Reply, language: str) -> None:
    """Send a TEXT, SHEET or RESULT reply as new messages."""
    conversation = adapter.conversation
    if reply.kind == ReplyKind.SHEET:
        summary = conversation.describe_selection(reply.selection, language)
        message = await bot.send_photo(
            chat_id,
            photo=reply.image,
            caption=sheet_caption(reply.selection, language, summary),
            reply_markup=build_keyboard(reply.selection, language),
        )
        await asyncio.to_thread(conversation.remember, owner, chat_id=chat_id, sheet_message_id=message.message_id)
    elif reply.kind == ReplyKind.RESULT:
        result = reply.result
        if len(result.data) <= PHOTO_MAX_BYTES:
            try:
                await bot.send_photo(chat_id, photo=result.data, caption=reply.text)
            except BadRequest as error:  # e.g. a panorama Telegram will not show as a photo
                logger.warning("result of %s not sent as a photo: %s", photo_id, error)
        await bot.send_document(
            chat_id,
            document=result.data,
            filename=f"faceprivacy.{result.extension}",
            caption=text("result_document", language),
        )
        await asyncio.to_thread(conversation.delivered, owner, photo_id)
    else:
        await bot.send_message(chat_id, reply.text)


async def update_sheet(bot, adapter: Adapter, owner: str, reply: Reply, language: str, message: Message | None = None) -> None:
    """Show a SELECTION reply by editing the user's sheet message in place (unless nothing changed)."""
    if not reply.changed:  # Telegram refuses an edit that changes nothing
        return
    refs = (await asyncio.to_thread(adapter.conversation.current, owner)).refs
    if "sheet_message_id" in refs:
        chat_id, message_id = int(refs["chat_id"]), int(refs["sheet_message_id"])
    elif message is not None:
        chat_id, message_id = message.chat_id, message.message_id
    else:
        return
    await edit_quietly(
        bot.edit_message_caption(
            chat_id=chat_id,
            message_id=message_id,
            caption=sheet_caption(reply.selection, language, reply.text),
            reply_markup=build_keyboard(reply.selection, language),
        )
    )


async def follow_photo(application: Application, adapter: Adapter, chat_id: int, owner: str, photo_id: str, progress: ProgressMessage) -> None:
    """Poll the photo's job; show its progress, then the sheet or the result, or what went wrong."""
    adapter.followers[owner] = photo_id
    bot = application.bot
    try:
        while application.running:
            replies, finished = await asyncio.to_thread(adapter.conversation.follow, owner, photo_id)
            for reply in replies:
                if reply.kind == ReplyKind.PROGRESS:
                    await progress.show(bot, reply.text)
                else:
                    language = await asyncio.to_thread(adapter.conversation.language, owner)
                    await send_reply(bot, adapter, chat_id, owner, photo_id, reply, language)
            if finished:
                if replies and replies[0].kind in (ReplyKind.SHEET, ReplyKind.RESULT):
                    await delete_quietly(bot, progress)
                return
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
    finally:
        if adapter.followers.get(owner) == photo_id:
            del adapter.followers[owner]


async def delete_quietly(bot, progress: ProgressMessage) -> None:
    """Remove the finished progress message; if that fails it simply stays."""
    try:
        await bot.delete_message(progress.chat_id, progress.message_id)
    except TelegramError as error:
        logger.info("progress message not deleted: %s", error)


async def start_following(context: ContextTypes.DEFAULT_TYPE, update: Update, owner: str, progress: Message) -> None:
    """Follow the owner's running job in the background, unless it is already followed."""
    adapter = adapter_of(context)
    session = await asyncio.to_thread(adapter.conversation.current, owner)
    if session.state not in (State.ANALYZING, State.PROCESSING) or adapter.followers.get(owner) == session.photo_id:
        return
    adapter.followers[owner] = session.photo_id
    tracker = ProgressMessage(progress.chat_id, progress.message_id, progress.text or "")
    context.application.create_task(
        follow_photo(context.application, adapter, progress.chat_id, owner, session.photo_id, tracker), update=update
    )


# --- callbacks, one per user action --------------------------------------------


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
    for reply in replies:
        await update.effective_message.reply_text(reply.text)


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: stop the job, delete the photo, and wait for a new one."""
    replies = await asyncio.to_thread(adapter_of(context).conversation.cancel, owner_of(update.effective_user))
    for reply in replies:
        await update.effective_message.reply_text(reply.text)


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
    for reply in replies:
        await update.effective_message.reply_text(reply.text)


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
    progress = await message.reply_text(text("working", language))
    photo_file = await attachment.get_file()
    data = bytes(await photo_file.download_as_bytearray())
    if len(data) > limit:
        await edit_quietly(progress.edit_text(too_big_text(len(data), limit, language)))
        return
    replies = await asyncio.to_thread(adapter.conversation.receive_photo, owner, data, user.language_code)
    del data
    for reply in replies:
        if reply.kind == ReplyKind.TEXT:  # busy
            await edit_quietly(progress.edit_text(reply.text))
            return
    await start_following(context, update, owner, progress)


def too_big_text(size_bytes: int, limit_bytes: int, language: str) -> str:
    return text("too_big_file", language, size_mb=f"{size_bytes / 1e6:.1f}", limit_mb=f"{limit_bytes / 1e6:.0f}")


async def not_a_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A video, sticker, voice note…: ask for a photo."""
    language = await language_of(adapter_of(context), update.effective_user)
    await update.effective_message.reply_text(text("not_an_image", language))


async def typed_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Typed text: face numbers, all/none, a mode, go, or anything else the session answers."""
    adapter, message, user = adapter_of(context), update.effective_message, update.effective_user
    owner = owner_of(user)
    session = await asyncio.to_thread(adapter.conversation.current, owner)
    language = await language_of(adapter, user)
    if adapter.followers.get(owner) and session.state in (State.ANALYZING, State.PROCESSING):
        await message.reply_text(text("processing" if session.state == State.PROCESSING else "working", language))
        return
    replies = await asyncio.to_thread(adapter.conversation.type_text, owner, message.text, user.language_code)
    for reply in replies:
        if reply.kind == ReplyKind.SELECTION:
            await update_sheet(context.bot, adapter, owner, reply, language)
        elif reply.kind == ReplyKind.PROGRESS:
            progress = await message.reply_text(reply.text)
            await start_following(context, update, owner, progress)
        else:
            await send_reply(context.bot, adapter, message.chat_id, owner, session.photo_id, reply, language)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sheet button: toggle a face, keep/hide all, pick a mode, turn the page, or go."""
    adapter, query, user = adapter_of(context), update.callback_query, update.effective_user
    owner, conversation = owner_of(user), adapter_of(context).conversation
    action, photo_id, argument = parse_callback_data(query.data)
    if action == TOGGLE:
        call = lambda: conversation.toggle(owner, photo_id, int(argument))  # noqa: E731
    elif action in (KEEP_ALL, CHANGE_ALL):
        call = lambda: conversation.keep_all(owner, photo_id, action == KEEP_ALL)  # noqa: E731
    elif action == MODE:
        call = lambda: conversation.choose_mode(owner, photo_id, argument)  # noqa: E731
    elif action == PAGE:
        call = lambda: turn_page(conversation, owner, photo_id, int(argument))  # noqa: E731
    else:
        call = lambda: conversation.go(owner, photo_id)  # noqa: E731
    replies = await asyncio.to_thread(call)
    language = await language_of(adapter, user)
    alerts = [reply.text for reply in replies if reply.kind == ReplyKind.TEXT]
    await query.answer("\n".join(alerts)[:ALERT_MAX_CHARS] or None, show_alert=bool(alerts))
    for reply in replies:
        if reply.kind == ReplyKind.SELECTION:
            await update_sheet(context.bot, adapter, owner, reply, language, query.message)
        elif reply.kind == ReplyKind.PROGRESS:  # go: the sheet's buttons are done
            await remove_keyboard(query)
            progress = await context.bot.send_message(query.message.chat_id, reply.text)
            await start_following(context, update, owner, progress)


def turn_page(conversation: Conversation, owner: str, photo_id: str, page: int) -> list[Reply]:
    """Turn to `page`, kept within the pages the sheet has."""
    session = conversation.current(owner)
    last_page = max(0, -(-session.face_count // FACES_PER_PAGE) - 1)
    return conversation.turn_page(owner, photo_id, min(page, last_page))


async def remove_keyboard(query: CallbackQuery) -> None:
    if isinstance(query.message, Message):
        await edit_quietly(query.message.edit_reply_markup(reply_markup=None))


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


# --- flood limits and per-user ordering ------------------------------------------


class RetryAfterLimiter(BaseRateLimiter[int]):
    """Honour Telegram's flood limits: on a 429 wait `retry_after` seconds, then send again.

    Unlike PTB's `AIORateLimiter` this needs no extra package and does not throttle
    ahead of time; it only reacts to Telegram's answer, so no message is lost.
    """

    def __init__(self, max_retries: int = MAX_RETRIES_AFTER_FLOOD):
        self.max_retries = max_retries

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        max_retries = self.max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(max_retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == max_retries:
                    raise
                delay_seconds = retry_after_seconds(error)
                logger.warning("flood limit on %s: sending again in %.1f s", endpoint, delay_seconds)
                await asyncio.sleep(delay_seconds)
        raise AssertionError("unreachable")


def retry_after_seconds(error: RetryAfter) -> float:
    """How long Telegram asks us to wait, whether PTB gives it as int or timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)  # the int form is deprecated in v22.2
        delay = error.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Different users' updates run concurrently; one user's run one at a time, in order."""

    def __init__(self, max_concurrent_updates: int = 64):
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    async def do_process_update(self, update, coroutine) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await coroutine
            return
        lock, waiting = self._locks.setdefault(user.id, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                await coroutine
        finally:
            waiting[0] -= 1
            if waiting[0] == 0:
                del self._locks[user.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


# --- building and running ---------------------------------------------------------


def build_application(config: Config, conversation: Conversation) -> Application:
    """The Telegram Application with every handler wired; it talks to `config.telegram.base_url`.

    Raises:
        ValueError: TELEGRAM_TOKEN is not set.
    """
    settings = config.telegram
    if not settings.token:
        raise ValueError("TELEGRAM_TOKEN is not set: create a bot with @BotFather and export its token")
    if settings.webhook_url and not settings.webhook_secret:
        raise ValueError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the token in the URL
    application = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(RetryAfterLimiter())
        .concurrent_updates(PerUserUpdateProcessor())
        .build()
    )
    application.bot_data["adapter"] = Adapter(conversation, settings)
    application.add_handlers(
        [
            CommandHandler("start", start),
            CommandHandler("help", show_help),
            CommandHandler("privacy", show_privacy),
            CommandHandler("cancel", cancel),
            CommandHandler("lang", change_language),
            MessageHandler(NEW_MESSAGE & (filters.PHOTO | filters.Document.ALL), receive_photo),
            MessageHandler(NEW_MESSAGE & filters.TEXT & ~filters.COMMAND, typed_text),
            MessageHandler(NEW_MESSAGE & OTHER_MEDIA, not_a_photo),
            CallbackQueryHandler(button, pattern=CALLBACK_PATTERN),
            CallbackQueryHandler(invalid_button),
        ]
    )
    application.add_error_handler(report_error)
    return application


async def set_commands(application: Application) -> None:
    """Publish the command menu in Korean (default) and English; a failure is only logged."""
    try:
        for language in LANGUAGES:
            commands = [BotCommand(name, text(f"command_{name}", language)) for name in COMMANDS]
            await application.bot.set_my_commands(commands, language_code=None if language == "ko" else language)
    except TelegramError as error:
        logger.warning("command menu not set: %s", error)


async def start_receiving(application: Application, settings: TelegramSettings) -> None:
    """After `application.start()`: long polling, or, with a webhook URL, register the webhook.

    Raises:
        ValueError: a webhook URL without TELEGRAM_WEBHOOK_SECRET.
    """
    await set_commands(application)
    if not settings.webhook_url:
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        return
    if not settings.webhook_secret:
        raise ValueError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not")
    await application.bot.set_webhook(
        url=settings.webhook_url, secret_token=settings.webhook_secret, allowed_updates=ALLOWED_UPDATES
    )


async def stop_receiving(application: Application) -> None:
    """Stop polling (before `application.stop()`); a webhook simply stops being served."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()


async def start_application(application: Application, config: Config) -> None:
    """Initialise and start the Application and start receiving updates (polling or webhook).

    In webhook mode the bot serves `telegram.webhook_url`'s path on its own small
    aiohttp server at `telegram.webhook_port`; put your HTTPS proxy in front of it.
    """
    await application.initialize()
    await application.start()
    settings = config.telegram
    if settings.webhook_url:
        web_app = web.Application()
        add_webhook_route(web_app, application, settings)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", settings.webhook_port).start()
        application.bot_data["webhook_runner"] = runner
        logger.info("Telegram webhook served on port %d", settings.webhook_port)
    await start_receiving(application, settings)


async def stop_application(application: Application) -> None:
    """Undo `start_application`: stop receiving, finish running work, shut down."""
    await stop_receiving(application)
    runner = application.bot_data.pop("webhook_runner", None)
    if runner is not None:
        await runner.cleanup()
    if application.running:
        await application.stop()
    await application.shutdown()


def add_webhook_route(web_app: web.Application, application: Application, settings: TelegramSettings) -> None:
    """Serve Telegram's webhook on the path of `settings.webhook_url` in an aiohttp app."""

    async def receive_update(request: web.Request) -> web.Response:
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
        if not settings.webhook_secret or not hmac.compare_digest(given.encode(), settings.webhook_secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    web_app.router.add_post(urlsplit(settings.webhook_url).path or "/", receive_update)
