"""The Kakao side of the conversation: one skill request in, one 2.0 response out, in time.

Kakao waits at most 5 seconds for a skill's answer. Every request is worked on in
a background task (`respond`), and the handler waits for it at most
`inline_budget_seconds`:

  - done in time (toggles, typed numbers, modes, most texts): that is the answer;
  - a photo, or an event that leaves a job running, with a usable callback URL:
    the answer is `useCallback` at once, and the task keeps polling the job until
    it ends or `callback_window_seconds` pass, then POSTs the real response (the
    sheet, the result, or "still working" with a "결과 보기" quick reply) to the
    callback URL, which works once and for about a minute;
  - too slow without a callback (KAKAO_CALLBACK=off, or Redis/worker slow): the
    answer says "one moment", and what the user must not miss is kept for their
    next message (see `pending.py`).

The result is delivered, and the photo forgotten (`Conversation.delivered`), only
once a response carrying it was handed to Kakao: returned inline, or accepted by
the callback URL. A lost result stays in the session (PROCESSING), and the next
message shows it again.

Card buttons send "3번 남기기 #a1b2" / "3번 가리기 #a1b2" as the user's message
(action "message": visible in the chat, like typing, and it needs no extra
block). They set rather than toggle, so an old carousel further up the chat
still means what it says, and the tag (4 hex digits of a hash of the photo id)
makes a button of an older photo answer "expired". Typed numbers work as in
Telegram (`1 3`, `1번 3번`, `모두`, `없음`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import weakref
from dataclasses import dataclass
from typing import Any, Coroutine

import aiohttp

from bot.messages import normalize_language, text
from bot.session import RESULT_WORDS, Conversation, Reply, ReplyKind, Selection, Session, State
from bot.settings import BotConfig

from .fetch import PhotoRefused, allowed_url, download_photo
from .images import ImageLinks
from .payload import SkillRequest
from .pending import PendingStore
from .responses import (
    basic_card,
    callback_answer,
    carousel,
    message_button,
    quick_reply,
    simple_image,
    simple_text,
    skill_response,
    text_response,
)

logger = logging.getLogger(__name__)

FACES_PER_PAGE = 10
"""Cards per carousel (Kakao's limit); more faces page with "다음 ▶"."""

EXPIRES_AT_REF = "kakao_expires_at"
"""Session ref: when the current photo expires (Unix seconds); image links never outlive it."""

CANCEL_WORDS = {"/cancel", "cancel", "취소"}
HELP_WORDS = {"/help", "help", "도움말", "사용법"}
START_WORDS = {"/start", "처음으로"}
PRIVACY_WORDS = {"/privacy", "privacy", "개인정보"}
NEXT_WORDS = {"다음 ▶", "next ▶", "다음", "next"}
PREVIOUS_WORDS = {"◀ 이전", "◀ prev", "이전", "prev"}
SHOW_WORDS = set(RESULT_WORDS)
CARD_COMMAND = re.compile(r"(?:(\d{1,4})\s*번\s*(남기기|가리기)|(keep|hide)\s+#?(\d{1,4}))(?:\s*#([0-9a-f]{4}))?")
LANG_COMMAND = re.compile(r"/lang\s+(\w+)")


@dataclass(frozen=True)
class SkillLimits:
    """Time, size and lifetime limits of the skill server; every time is in seconds."""

    inline_budget_seconds: float = 3.0
    """How long a request's work may take before the answer falls back (Kakao allows 5)."""
    callback_window_seconds: float = 50.0
    """How long after the request a job is polled for the callback; then "still working" is posted."""
    callback_valid_seconds: float = 58.0
    """A callback URL is not called later than this after its request (Kakao: valid 1 minute)."""
    poll_interval_seconds: float = 0.5
    download_timeout_seconds: float = 10.0
    callback_post_timeout_seconds: float = 8.0
    result_ttl_seconds: int = 600
    """How long the copy of a delivered result stays reachable for Kakao (capped by the photo's TTL)."""
    max_photo_bytes: int = 20_000_000


@dataclass(frozen=True)
class Answer:
    """A response for Kakao and what handing it over (or losing it) means."""

    response: dict[str, Any]
    result_photo_id: str = ""  # forget this photo once the response is handed over
    sheet_photo_id: str = ""  # show this sheet again on the next message if the response is lost
    notices: tuple[str, ...] = ()  # texts to repeat on the next message if the response is lost
    empty: bool = False  # nothing to say (someone else already answered)


def photo_tag(photo_id: str) -> str:
    """4 hex digits naming a photo in card buttons, so an old card cannot change a new photo."""
    return hashlib.sha256(photo_id.encode()).hexdigest()[:4]


class KakaoSkill:
    """Answers skill requests for one bot; `start` and `close` bracket its HTTP client.

    Args:
        config: the service config (`kakao` section, storage TTL).
        conversation: the shared session state machine; its Redis also keeps image links and notices.
        limits: time and size limits.
    """

    def __init__(self, config: BotConfig, conversation: Conversation, limits: SkillLimits = SkillLimits()):
        connection = conversation.jobs.connection
        self.conversation = conversation
        self.limits = limits
        self.settings = config.kakao
        self.ttl_seconds = config.storage.ttl_seconds
        self.links = ImageLinks(connection, conversation.jobs, self.settings.public_url)
        self.pending = PendingStore(connection, self.ttl_seconds)
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task] = set()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(trust_env=False)

    async def close(self) -> None:
        """Stop the background work (pending callbacks are dropped) and close the HTTP client."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    # --- one request ------------------------------------------------------

    async def answer(self, request: SkillRequest) -> dict[str, Any]:
        """The response to return to Kakao now (always within the inline budget)."""
        loop = asyncio.get_running_loop()
        received_at = loop.time()
        callback_url = self._usable_callback_url(request.callback_url)
        poll_until = received_at + self.limits.callback_window_seconds if callback_url else None
        early: asyncio.Future[str] = loop.create_future()
        work = self._spawn(self.respond(request, poll_until, early), log_errors=False)
        done, _ = await asyncio.wait({work, early}, timeout=self.limits.inline_budget_seconds, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            answer = self._settled(work)
            self._spawn(self.handed_over(request.owner, answer))
            return answer.response
        language = normalize_language(request.language)
        waiting = early.result() if early.done() else text("kakao_wait", language)
        if callback_url:
            self._spawn(self.deliver_later(work, request.owner, callback_url, received_at))
            return callback_answer(waiting)
        self._spawn(self.keep_for_next_message(work, request.owner))
        return text_response(f"{waiting}\n{text('kakao_ask_again', language)}", [self._show_result_reply(language)])

    async def respond(self, request: SkillRequest, poll_until: float | None, early: asyncio.Future) -> Answer:
        """Do what the message asks; with `poll_until`, also wait for a job it leaves running."""
        owner = request.owner
        if request.photo_urls:
            replies = await self.receive_photo(request, early if poll_until is not None else None)
        else:
            async with self._lock(owner):
                replies = await asyncio.to_thread(self.converse, request)
        progress = [reply.text for reply in replies if reply.kind == ReplyKind.PROGRESS]
        if poll_until is not None and progress:
            if not early.done():
                early.set_result(progress[0])
            replies = await self.poll(owner, poll_until)
        async with self._lock(owner):
            return await asyncio.to_thread(self.render, owner, replies)

    async def receive_photo(self, request: SkillRequest, early: asyncio.Future | None) -> list[Reply]:
        """Fetch the photo from an allowed host and submit it; a refusal is a normal text."""
        owner = request.owner
        language = await asyncio.to_thread(self.conversation.language, owner, request.language)
        url = request.photo_urls[0]
        if allowed_url(url, self.settings.image_hosts) is None:
            logger.info("photo of %s refused: host not allowed", owner)
            return [Reply(ReplyKind.TEXT, text("kakao_foreign_host", language))]
        if early is not None and not early.done():
            early.set_result(text("working", language))
        try:
            data = await download_photo(
                self.http, url, self.settings.image_hosts, self.limits.max_photo_bytes, self.limits.download_timeout_seconds
            )
        except PhotoRefused as refused:
            logger.info("photo of %s refused: %s", owner, refused.code)
            return [Reply(ReplyKind.TEXT, self._refusal_text(refused, language))]
        album = [Reply(ReplyKind.TEXT, text("album", language))] if len(request.photo_urls) > 1 else []
        async with self._lock(owner):
            return album + await asyncio.to_thread(self._submit_photo, request, data)

    def _submit_photo(self, request: SkillRequest, data: bytes) -> list[Reply]:
        started = time.time()
        replies = self.conversation.receive_photo(request.owner, data, request.language)
        if any(reply.kind == ReplyKind.PROGRESS for reply in replies):
            self.pending.clear_unseen_sheet(request.owner)
            self.conversation.remember(request.owner, **{EXPIRES_AT_REF: str(int(started + self.ttl_seconds))})
        return replies

    def converse(self, request: SkillRequest) -> list[Reply]:
        """A typed text or a button's message: Kakao's own words first, then the session's."""
        owner, words = request.owner, request.utterance
        lowered = words.lower()
        conversation = self.conversation
        if lowered in CANCEL_WORDS:
            self.pending.clear_unseen_sheet(owner)
            return conversation.cancel(owner)
        if lowered in HELP_WORDS or lowered in START_WORDS or lowered in PRIVACY_WORDS:
            key = "help" if lowered in HELP_WORDS else "privacy" if lowered in PRIVACY_WORDS else "start"
            return conversation.start(owner, request.language, key=key)
        if match := LANG_COMMAND.fullmatch(lowered):
            return conversation.set_language(owner, match.group(1))
        session = conversation.current(owner)
        card = CARD_COMMAND.fullmatch(lowered)
        if session.state == State.CHOOSING:
            if self.pending.pop_unseen_sheet(owner) == session.photo_id or lowered in SHOW_WORDS:
                return [conversation.sheet(owner)]
            if lowered in NEXT_WORDS or lowered in PREVIOUS_WORDS:
                step = 1 if lowered in NEXT_WORDS else -1
                return conversation.turn_page(owner, session.photo_id, session.page + step, FACES_PER_PAGE)
            if card:
                number = int(card.group(1) or card.group(4))
                keep = card.group(2) == "남기기" or card.group(3) == "keep"
                return self._set_face(session, number, keep, card.group(5) or "")
        elif card:
            return [Reply(ReplyKind.TEXT, text("expired", session.language))]
        return conversation.type_text(owner, words, request.language)

    def _set_face(self, session: Session, number: int, keep: bool, tag: str) -> list[Reply]:
        """A card button: keep (or change) face `number` of the current photo."""
        if tag and tag != photo_tag(session.photo_id):
            return [Reply(ReplyKind.TEXT, text("expired", session.language))]
        if not 1 <= number <= session.face_count:
            return [Reply(ReplyKind.TEXT, text("bad_numbers", session.language, count=session.face_count))]
        return self.conversation.set_face(session.owner, session.photo_id, number, keep)

    async def poll(self, owner: str, until: float) -> list[Reply]:
        """Follow the user's job until it ends or `until` (loop time) comes; then say where it stands."""
        loop = asyncio.get_running_loop()
        while True:
            async with self._lock(owner):
                replies, finished = await asyncio.to_thread(self.conversation.follow, owner)
            if finished:
                return replies
            if loop.time() + self.limits.poll_interval_seconds >= until:
                language = await asyncio.to_thread(self.conversation.language, owner)
                return replies + [Reply(ReplyKind.PROGRESS, text("kakao_still_working", language))]
            await asyncio.sleep(self.limits.poll_interval_seconds)

    # --- handing answers over ---------------------------------------------

    async def handed_over(self, owner: str, answer: Answer) -> None:
        """Kakao has the response: a delivered result's photo is forgotten now."""
        if answer.result_photo_id:
            await asyncio.to_thread(self.conversation.delivered, owner, answer.result_photo_id)
            logger.info("result delivered to %s", owner)

    async def missed(self, owner: str, answer: Answer) -> None:
        """The response was lost: keep what the next message must show."""
        def keep() -> None:
            self.pending.add_notices(owner, list(answer.notices))
            if answer.sheet_photo_id:
                self.pending.mark_unseen_sheet(owner, answer.sheet_photo_id)

        await asyncio.to_thread(keep)

    async def deliver_later(self, work: asyncio.Task, owner: str, callback_url: str, received_at: float) -> None:
        """POST the task's response to the callback URL while it is valid, else keep it for later."""
        await asyncio.wait({work})
        answer = self._settled(work)
        if answer.empty:
            return
        elapsed_seconds = asyncio.get_running_loop().time() - received_at
        if elapsed_seconds < self.limits.callback_valid_seconds and await self._post_callback(callback_url, answer.response):
            await self.handed_over(owner, answer)
        else:
            logger.info("callback for %s not delivered (after %.1f s)", owner, elapsed_seconds)
            await self.missed(owner, answer)

    async def keep_for_next_message(self, work: asyncio.Task, owner: str) -> None:
        await asyncio.wait({work})
        await self.missed(owner, self._settled(work))

    async def _post_callback(self, url: str, response: dict[str, Any]) -> bool:
        timeout = aiohttp.ClientTimeout(total=self.limits.callback_post_timeout_seconds)
        try:
            async with self.http.post(url, json=response, timeout=timeout, allow_redirects=False) as reply:
                if not 200 <= reply.status < 300:
                    logger.warning("callback refused with HTTP %s", reply.status)
                    return False
                try:
                    body = await reply.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("callback failed: %s", type(error).__name__)
            return False
        status = body.get("status") if isinstance(body, dict) else None
        if isinstance(status, str) and status.upper() in ("FAIL", "ERROR"):
            logger.warning("callback answered status %s", status)
            return False
        return True

    def _usable_callback_url(self, url: str) -> str:
        if not url or not self.settings.callback:
            return ""
        if allowed_url(url, self.settings.callback_hosts) is None:
            logger.warning("callback URL on a host outside KAKAO_CALLBACK_HOSTS ignored")
            return ""
        return url

    # --- replies to 2.0 JSON ----------------------------------------------

    def render(self, owner: str, replies: list[Reply]) -> Answer:
        """The session's replies (plus notices kept for this user) as one response of at most 3 outputs."""
        session = self.conversation.current(owner)
        language = session.language
        kept_notices = self.pending.pop_notices(owner)
        texts, notices = list(kept_notices), list(kept_notices)
        image: dict[str, Any] | None = None
        cards: dict[str, Any] | None = None
        quick_replies: list[dict[str, Any]] = []
        result_photo_id = sheet_photo_id = ""
        for reply in replies:
            if reply.kind in (ReplyKind.TEXT, ReplyKind.PROGRESS):
                texts.append(reply.text)
                if reply.kind == ReplyKind.TEXT:
                    notices.append(reply.text)
                else:
                    quick_replies = [self._show_result_reply(language)]
            elif reply.kind in (ReplyKind.SHEET, ReplyKind.SELECTION) and reply.selection is not None:
                selection = reply.selection
                if reply.kind == ReplyKind.SHEET:
                    sheet_url = self.links.urls(owner, selection.photo_id, ["sheet"], self._photo_ttl(session))["sheet"]
                    image = simple_image(sheet_url, text("kakao_sheet_alt", language))
                    texts.append(f"{reply.text}\n{reply.summary}")
                    sheet_photo_id = selection.photo_id
                else:
                    texts.append(reply.summary)
                cards = self._carousel(owner, session, selection)
            elif reply.kind == ReplyKind.RESULT and reply.result is not None:
                ttl_seconds = min(self.limits.result_ttl_seconds, self._photo_ttl(session))
                url = self.links.result_url(owner, session.photo_id, reply.result.data, reply.result.extension, ttl_seconds)
                image = simple_image(url, text("kakao_result_alt", language))
                minutes = max(1, ttl_seconds // 60)
                link = "kakao_result_link_credentials" if reply.result.content_credentials else "kakao_result_link"
                texts.append(f"{reply.text}\n{text(link, language, url=url, minutes=minutes)}")
                result_photo_id = session.photo_id
        if session.state == State.CHOOSING and session.photo_id:
            quick_replies = self._controls(self.conversation.selection_of(session), language)
        empty = not (texts or image or cards)
        if empty:
            texts.append(text("send_photo_first", language))
        outputs = [output for output in (image, cards, simple_text("\n\n".join(texts))) if output]
        return Answer(
            response=skill_response(outputs, quick_replies),
            result_photo_id=result_photo_id,
            sheet_photo_id=sheet_photo_id,
            notices=tuple(notices),
            empty=empty,
        )

    def _carousel(self, owner: str, session: Session, selection: Selection) -> dict[str, Any]:
        """One square face card per face of the page, each with its keep/change button."""
        numbers = list(selection.page_numbers(FACES_PER_PAGE))
        urls = self.links.urls(owner, selection.photo_id, [f"face:{number}" for number in numbers], self._photo_ttl(session))
        tag = photo_tag(selection.photo_id)
        language = session.language
        cards = []
        for number in numbers:
            kept = number in selection.keep
            title = text("kakao_card_kept" if kept else "kakao_card_changed", language, number=number)
            label = text("kakao_button_change" if kept else "kakao_button_keep", language)
            command = text("kakao_command_change" if kept else "kakao_command_keep", language, number=number)
            cards.append(basic_card(title, urls[f"face:{number}"], [message_button(label, f"{command} #{tag}")]))
        return carousel(cards)

    def _controls(self, selection: Selection, language: str) -> list[dict[str, Any]]:
        """Quick replies while choosing: modes, go, keep all, change all, pages."""
        replies = []
        for mode in selection.available_modes:
            name = text(f"mode_{mode}", language)
            replies.append(quick_reply(("✓ " if mode == selection.mode else "") + name, name))
        replies.append(quick_reply(text("button_go", language), text("button_go", language)))
        replies.append(quick_reply(text("button_keep_all", language), text("kakao_word_all", language)))
        replies.append(quick_reply(text("button_change_all", language), text("kakao_word_none", language)))
        if selection.page > 0:
            replies.append(quick_reply(text("button_previous", language), text("button_previous", language)))
        if selection.page < selection.page_count(FACES_PER_PAGE) - 1:
            replies.append(quick_reply(text("button_next", language), text("button_next", language)))
        return replies

    @staticmethod
    def _show_result_reply(language: str) -> dict[str, Any]:
        label = text("button_show_result", language)
        return quick_reply(label, label)

    def _photo_ttl(self, session: Session) -> int:
        """Seconds the current photo has left; image links of it expire with it."""
        expires_at = session.refs.get(EXPIRES_AT_REF)
        remaining = int(float(expires_at) - time.time()) if expires_at else self.ttl_seconds
        return max(1, min(self.ttl_seconds, remaining))

    def _refusal_text(self, refused: PhotoRefused, language: str) -> str:
        if refused.code == "foreign_host":
            return text("kakao_foreign_host", language)
        if refused.code == "too_big":
            size_mb = f"{refused.size_bytes / 1_000_000:.1f}"
            return text("too_big_file", language, size_mb=size_mb, limit_mb=self.limits.max_photo_bytes // 1_000_000)
        return text("kakao_download_failed", language)

    # --- tasks and locks --------------------------------------------------

    def _spawn(self, coroutine: Coroutine, log_errors: bool = True) -> asyncio.Task:
        """Run `coroutine` in the background; `close` cancels it. Its crash is logged unless awaited elsewhere."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if log_errors:
            task.add_done_callback(_log_crash)
        return task

    def _settled(self, work: asyncio.Task) -> Answer:
        """The finished task's answer; a crash becomes the "failed" text (and is logged)."""
        if work.cancelled():
            return Answer(text_response(text("failed", "ko")), empty=True)
        error = work.exception()
        if error is None:
            return work.result()
        logger.error("skill request failed", exc_info=error)
        return Answer(text_response(text("failed", "ko")), notices=(text("failed", "ko"),))

    def _lock(self, owner: str) -> asyncio.Lock:
        """One step at a time per user (two quick taps must not race on the session)."""
        lock = self._locks.get(owner)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[owner] = lock
        return lock


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background work for a Kakao request failed", exc_info=task.exception())
