"""The conversation about one photo, independent of any chat.

A user's `Session` is one JSON record in Redis with a TTL. `Conversation` turns
user events (a photo, a button, typed text, a command) into state transitions
and returns `Reply` objects; the Telegram and Kakao adapters only translate
updates into these calls and replies into messages. Every change of state goes
through `TRANSITIONS`, the one table of (state, event) -> next state, which
`session.mmd` draws (a test keeps the two equal):

    IDLE --photo--> ANALYZING --faces found--> CHOOSING --go--> PROCESSING --delivered--> IDLE

ANALYZING ends in IDLE when no face is found or the photo is refused; any state
returns to IDLE on /cancel, on failure, or when the photo expires.

Every event names the photo it is about (buttons carry its id): an event about a
photo that is not the user's current one is stale and answered with `expired`.

One user's events run one at a time (`SessionStore.locked`, a Redis lock, so also
across threads and bot processes): the clean-up after a delivered result and the
intake of the next photo, sent a few milliseconds later, can never interleave and
overwrite each other's session.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum

from redis import Redis
from redis.exceptions import LockError

from bot.messages import normalize_language, text
from pipeline.errors import InvalidSelection
from pipeline.modes import MODE_NAMES
from pipeline.selection import ALL_WORDS, NONE_WORDS, default_keep_for_mode, parse_face_numbers
from workers.client import JobState, PhotoJobs, ResultFile
from workers.errors import BusyError, NotReady, PhotoExpired
from workers.storage import session_key, session_lock_key

logger = logging.getLogger(__name__)

LOCK_EXPIRY_SECONDS = 30
"""A user's lock whose holder died is free again after this long."""
LOCK_WAIT_SECONDS = 30
"""How long an event waits for the user's previous event before it fails."""
DEFAULT_MODE = "blur"
GO_WORDS = {"go", "start", "시작", "▶️ 시작", "▶️ go", "완료", "done"}
RESULT_WORDS = {"결과 보기", "show result", "결과"}


class State(str, Enum):
    """What the bot is waiting for from this user."""

    IDLE = "idle"  # a photo
    ANALYZING = "analyzing"  # the analysis job
    CHOOSING = "choosing"  # the user's choice of faces and mode
    PROCESSING = "processing"  # the process job


class Event(str, Enum):
    """What moves a session from one state to the next; the values label `session.mmd`'s arrows."""

    PHOTO = "photo"  # a photo was stored and its analysis queued (a new photo replaces the old one)
    FACES_FOUND = "faces found"  # the analysis finished: the sheet and its controls are shown
    CHOOSE = "choose"  # a face, keep all, change all, a mode, a page or typed numbers
    GO = "go"  # the process job is queued
    DELIVERED = "delivered"  # the adapter has sent the result
    ENDED = "ended"  # no face, a refused photo, a failure, or the photo expired
    CANCEL = "cancel"  # /cancel


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.IDLE, Event.PHOTO): State.ANALYZING,
    (State.ANALYZING, Event.PHOTO): State.ANALYZING,
    (State.CHOOSING, Event.PHOTO): State.ANALYZING,
    (State.PROCESSING, Event.PHOTO): State.ANALYZING,
    (State.ANALYZING, Event.FACES_FOUND): State.CHOOSING,
    (State.ANALYZING, Event.ENDED): State.IDLE,
    (State.CHOOSING, Event.CHOOSE): State.CHOOSING,
    (State.CHOOSING, Event.GO): State.PROCESSING,
    (State.CHOOSING, Event.ENDED): State.IDLE,
    (State.PROCESSING, Event.DELIVERED): State.IDLE,
    (State.PROCESSING, Event.ENDED): State.IDLE,
    (State.IDLE, Event.CANCEL): State.IDLE,
    (State.ANALYZING, Event.CANCEL): State.IDLE,
    (State.CHOOSING, Event.CANCEL): State.IDLE,
    (State.PROCESSING, Event.CANCEL): State.IDLE,
}
"""Every state change of a session; a pair that is not here is a bug and raises KeyError."""


@dataclass
class Session:
    owner: str
    language: str = "ko"
    language_chosen: bool = False  # set by /lang; then the chat's language no longer applies
    state: State = State.IDLE
    photo_id: str = ""
    face_count: int = 0
    keep: list[int] = field(default_factory=list)
    mode: str = DEFAULT_MODE
    page: int = 0
    refs: dict[str, str] = field(default_factory=dict)  # the adapter's own message references
    main_subjects: list[int] = field(default_factory=list)  # default faces to keep in blur and replace
    unmasked: list[int] = field(default_factory=list)  # default faces to keep in unmask: those without a mask

    def move(self, event: Event) -> None:
        """Go to the state `TRANSITIONS` names for this event; back in IDLE the photo is forgotten."""
        self.state = TRANSITIONS[(self.state, event)]
        if self.state == State.IDLE:
            self.photo_id, self.face_count, self.keep, self.page, self.refs = "", 0, [], 0, {}

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "state": self.state.value}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Session":
        """Read a stored session; fields this version does not know (or no longer has) are skipped."""
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "state": State(data["state"])})


class SessionStore:
    """Sessions as JSON under one key per user, each with the storage TTL."""

    def __init__(self, connection: Redis, ttl_seconds: int):
        self.connection = connection
        self.ttl_seconds = ttl_seconds
        self._held = threading.local()  # the owners whose lock this thread holds

    @contextmanager
    def locked(self, owner: str) -> Iterator[None]:
        """Hold the owner's lock, so that no other event of theirs runs meanwhile.

        Re-entrant within a thread: an event may call another (typed "go" calls `go`).

        Raises:
            TimeoutError: the user's previous event held the lock longer than LOCK_WAIT_SECONDS.
        """
        held: set[str] = self._held.__dict__.setdefault("owners", set())
        if owner in held:
            yield
            return
        lock = self.connection.lock(session_lock_key(owner), timeout=LOCK_EXPIRY_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS)
        if not lock.acquire():
            raise TimeoutError(f"the session of {owner} stayed locked for {LOCK_WAIT_SECONDS} s")
        held.add(owner)
        try:
            yield
        finally:
            held.discard(owner)
            try:
                lock.release()
            except LockError:  # it expired while held: another event may have run meanwhile
                logger.warning("the session lock of %s expired before it was released", owner)

    def load(self, owner: str) -> Session:
        raw = self.connection.get(session_key(owner))
        return Session.from_json(raw) if raw else Session(owner=owner)

    def save(self, session: Session) -> None:
        self.connection.set(session_key(session.owner), session.to_json(), ex=self.ttl_seconds)


@dataclass(frozen=True)
class Selection:
    """What the choosing controls show: faces kept, the mode, which modes work, the page."""

    photo_id: str
    face_count: int
    keep: frozenset[int]
    mode: str
    available_modes: tuple[str, ...]
    page: int

    def page_numbers(self, per_page: int) -> range:
        first = self.page * per_page + 1
        return range(first, min(self.face_count, first + per_page - 1) + 1)

    def page_count(self, per_page: int) -> int:
        return page_count(self.face_count, per_page)


def page_count(face_count: int, per_page: int) -> int:
    """How many pages of `per_page` face buttons the sheet has (at least one)."""
    return max(1, -(-face_count // per_page))


class ReplyKind(str, Enum):
    TEXT = "text"  # a plain message
    SHEET = "sheet"  # the contact sheet with the choosing controls
    SELECTION = "selection"  # the choosing controls changed: update them in place
    PROGRESS = "progress"  # a status line to show (or edit) while a job runs
    RESULT = "result"  # the finished photo


@dataclass(frozen=True)
class Reply:
    """What to tell the user. SHEET and SELECTION replies carry the sheet's caption
    as `text` and the current choice as `summary`, so adapters need not ask again."""

    kind: ReplyKind
    text: str
    summary: str = ""
    image: bytes = field(default=b"", repr=False)
    selection: Selection | None = None
    result: ResultFile | None = None
    changed: bool = True  # SELECTION: False when the event left the choice as it was (nothing to edit)


def one_event_at_a_time(event):
    """Run a `Conversation` event under its owner's lock (`SessionStore.locked`)."""

    @functools.wraps(event)
    def locked(self: "Conversation", owner: str, *args, **kwargs):
        with self.store.locked(owner):
            return event(self, owner, *args, **kwargs)

    return locked


class Conversation:
    """The session state machine; every method takes the user (`owner`) it acts for.

    The events (the methods that may change a session) run one at a time per user.
    """

    def __init__(self, jobs: PhotoJobs, store: SessionStore):
        self.jobs = jobs
        self.store = store

    # --- events -----------------------------------------------------------

    @one_event_at_a_time
    def start(self, owner: str, language_code: str | None = None, key: str = "start") -> list[Reply]:
        """/start, /help or /privacy: a text in the user's language."""
        session = self._session(owner, language_code)
        self.store.save(session)
        ttl_minutes = self.store.ttl_seconds // 60
        return [Reply(ReplyKind.TEXT, text(key, session.language, ttl_minutes=ttl_minutes))]

    @one_event_at_a_time
    def set_language(self, owner: str, language: str) -> list[Reply]:
        """/lang: from now on this language, whatever the chat's setting."""
        session = self.store.load(owner)
        session.language, session.language_chosen = normalize_language(language), True
        self.store.save(session)
        return [Reply(ReplyKind.TEXT, text("lang_set", session.language))]

    def language(self, owner: str, language_code: str | None = None) -> str:
        return self._session(owner, language_code).language

    @one_event_at_a_time
    def receive_photo(self, owner: str, data: bytes, language_code: str | None = None) -> list[Reply]:
        """A photo arrived: store it and queue its analysis, or say why not."""
        session = self._session(owner, language_code)
        try:
            photo_id = self.jobs.submit_photo(owner, data)
        except BusyError:
            return [Reply(ReplyKind.TEXT, text("busy", session.language))]
        if session.photo_id:  # the new photo replaces it: nobody can reach the old one any more
            self.jobs.forget(owner, session.photo_id)
        session = replace(session, photo_id=photo_id, face_count=0, keep=[], page=0, refs={}, mode=DEFAULT_MODE)
        session.move(Event.PHOTO)
        self.store.save(session)
        return [Reply(ReplyKind.PROGRESS, text("working", session.language))]

    @one_event_at_a_time
    def follow(self, owner: str, photo_id: str | None = None) -> tuple[list[Reply], bool]:
        """Check the user's running job and say what changed.

        Args:
            owner: the user.
            photo_id: when given, only follow this photo: once the user has moved on
                (a new photo, /cancel) the answer is ([], True).

        Returns:
            (replies, finished): finished is True once no job runs any more.
        """
        session = self.store.load(owner)
        if session.state not in (State.ANALYZING, State.PROCESSING):
            return [], True
        if photo_id is not None and session.photo_id != photo_id:
            return [], True
        status = self.jobs.get_status(owner, session.photo_id)
        language = session.language
        if status.state == JobState.QUEUED:
            return [Reply(ReplyKind.PROGRESS, text("queued", language, position=status.queue_position or 1))], False
        if status.state == JobState.STARTED:
            key = "working" if session.state == State.ANALYZING else "processing"
            return [Reply(ReplyKind.PROGRESS, text(key, language))], False
        if status.state == JobState.FINISHED:
            try:
                if session.state == State.ANALYZING:
                    return self._show_sheet(session), True
                return self._show_result(session), True
            except (PhotoExpired, NotReady):
                return self._end(session, "expired"), True
        if status.state == JobState.FAILED:
            return self._end(session, status.error_code), True
        return self._end(session, "expired"), True

    @one_event_at_a_time
    def toggle(self, owner: str, photo_id: str, number: int) -> list[Reply]:
        """A face button: keep it if it was changed, change it if it was kept."""
        return self._choose(owner, photo_id, lambda s: s.keep.remove(number) if number in s.keep else s.keep.append(number), number)

    @one_event_at_a_time
    def set_face(self, owner: str, photo_id: str, number: int, keep: bool) -> list[Reply]:
        """Keep (True) or change (False) one face; unlike `toggle`, pressing twice does the same."""

        def change(session: Session) -> None:
            session.keep = [n for n in session.keep if n != number] + ([number] if keep else [])

        return self._choose(owner, photo_id, change, number)

    @one_event_at_a_time
    def keep_all(self, owner: str, photo_id: str, keep: bool) -> list[Reply]:
        """The "keep all" (True) or "change all" (False) button."""
        return self._choose(owner, photo_id, lambda s: s.keep.__setitem__(slice(None), range(1, s.face_count + 1) if keep else []))

    @one_event_at_a_time
    def choose_mode(self, owner: str, photo_id: str, mode: str) -> list[Reply]:
        """A mode button; an unavailable mode is refused with the ones that work."""
        session = self.store.load(owner)
        if session.state != State.CHOOSING or session.photo_id != photo_id or mode not in MODE_NAMES:
            return [Reply(ReplyKind.TEXT, text("expired", session.language))]
        if mode not in self._available_modes():
            return [self._mode_unavailable(session.language, mode)]
        if (mode == "unmask") == (session.mode == "unmask"):
            return self._choose(owner, photo_id, lambda s: setattr(s, "mode", mode))

        def switch(s: Session) -> None:
            """Unmask changes the masked faces; the other modes change the bystanders: each has its own default."""
            s.mode, s.keep = mode, list(s.unmasked if mode == "unmask" else s.main_subjects)

        replies = self._choose(owner, photo_id, switch)
        if mode == "unmask" and replies[0].kind == ReplyKind.SELECTION:
            masked = session.face_count - len(session.unmasked)
            key = "unmask_selected" if masked else "no_masks"
            replies.append(Reply(ReplyKind.TEXT, text(key, session.language, count=masked)))
        return replies

    @one_event_at_a_time
    def turn_page(self, owner: str, photo_id: str, page: int, per_page: int) -> list[Reply]:
        """A ◀ ▶ button: show page `page` of `per_page` face buttons, kept within the pages there are."""
        return self._choose(owner, photo_id, lambda s: setattr(s, "page", min(max(0, page), page_count(s.face_count, per_page) - 1)))

    @one_event_at_a_time
    def type_text(self, owner: str, typed: str, language_code: str | None = None) -> list[Reply]:
        """Typed text: face numbers to keep, `all`/`none`, a mode's name, `go`, or `결과 보기`."""
        session = self._session(owner, language_code)
        words = typed.strip().lower()
        if session.state == State.PROCESSING or (words in RESULT_WORDS and session.state == State.ANALYZING):
            replies, _ = self.follow(owner)
            return replies
        if session.state == State.ANALYZING:
            return [Reply(ReplyKind.PROGRESS, text("working", session.language))]
        if session.state != State.CHOOSING:
            return [Reply(ReplyKind.TEXT, text("send_photo_first", session.language))]
        if words in GO_WORDS:
            return self.go(owner, session.photo_id)
        for mode in MODE_NAMES:
            if words in (mode, text(f"mode_{mode}", "ko").lower(), text(f"mode_{mode}", "en").lower()):
                return self.choose_mode(owner, session.photo_id, mode)
        if words in ALL_WORDS | NONE_WORDS or any(ch.isdigit() for ch in words):
            try:
                numbers = parse_face_numbers(words, session.face_count)
            except InvalidSelection:
                return [Reply(ReplyKind.TEXT, text("bad_numbers", session.language, count=session.face_count))]
            return self._choose(owner, session.photo_id, lambda s: s.keep.__setitem__(slice(None), sorted(numbers)))
        return [Reply(ReplyKind.TEXT, text("bad_numbers", session.language, count=session.face_count))]

    @one_event_at_a_time
    def go(self, owner: str, photo_id: str) -> list[Reply]:
        """The go button: queue the change of every face not kept."""
        session = self.store.load(owner)
        if session.state != State.CHOOSING or session.photo_id != photo_id:
            return [Reply(ReplyKind.TEXT, text("expired", session.language))]
        if len(session.keep) >= session.face_count:
            return [Reply(ReplyKind.TEXT, text("nothing_to_change", session.language))]
        if session.mode not in self._available_modes():
            return [self._mode_unavailable(session.language, session.mode)]
        try:
            self.jobs.submit_process(owner, photo_id, session.keep, session.mode)
        except BusyError:
            return [Reply(ReplyKind.TEXT, text("busy", session.language))]
        except (PhotoExpired, NotReady):
            return self._end(session, "expired")
        session.move(Event.GO)
        self.store.save(session)
        return [Reply(ReplyKind.PROGRESS, text("processing", session.language))]

    @one_event_at_a_time
    def delivered(self, owner: str, photo_id: str) -> None:
        """The adapter has sent the result: delete the photo and everything about it."""
        session = self.store.load(owner)
        self.jobs.forget(owner, photo_id)
        if session.photo_id == photo_id:
            session.move(Event.DELIVERED)
            self.store.save(session)

    @one_event_at_a_time
    def cancel(self, owner: str) -> list[Reply]:
        """/cancel: stop the running job, delete the photo, start over."""
        session = self.store.load(owner)
        had_job = self.jobs.cancel(owner)
        if not had_job and not session.photo_id:
            return [Reply(ReplyKind.TEXT, text("nothing_to_cancel", session.language))]
        if session.photo_id:
            self.jobs.forget(owner, session.photo_id)
        session.move(Event.CANCEL)
        self.store.save(session)
        return [Reply(ReplyKind.TEXT, text("cancelled", session.language))]

    @one_event_at_a_time
    def remember(self, owner: str, **refs: str) -> None:
        """Keep adapter message references (e.g. the sheet's message id) with the session."""
        session = self.store.load(owner)
        session.refs.update({key: str(value) for key, value in refs.items()})
        self.store.save(session)

    def current(self, owner: str) -> Session:
        return self.store.load(owner)

    def selection_of(self, session: Session) -> Selection:
        return Selection(
            photo_id=session.photo_id,
            face_count=session.face_count,
            keep=frozenset(session.keep),
            mode=session.mode,
            available_modes=self._available_modes(),
            page=session.page,
        )

    def sheet(self, owner: str) -> Reply:
        """The sheet's caption and controls again (without the image), for a user who missed them."""
        session = self.store.load(owner)
        return self._sheet_reply(session, self.selection_of(session))

    def describe_selection(self, selection: Selection, language: str) -> str:
        """One line: which faces are kept, which changed, and the mode."""
        none = text("none_listed", language)
        kept = ", ".join(map(str, sorted(selection.keep))) or none
        changed = ", ".join(str(n) for n in range(1, selection.face_count + 1) if n not in selection.keep) or none
        return text("selection", language, kept=kept, changed=changed, mode=text(f"mode_{selection.mode}", language))

    # --- helpers ----------------------------------------------------------

    def _session(self, owner: str, language_code: str | None) -> Session:
        session = self.store.load(owner)
        if language_code and not session.language_chosen:
            session.language = normalize_language(language_code)
        return session

    def _available_modes(self) -> tuple[str, ...]:
        return tuple(mode for mode, reason in self.jobs.available_modes().items() if reason is None)

    def _mode_unavailable(self, language: str, mode: str) -> Reply:
        available = ", ".join(text(f"mode_{m}", language) for m in self._available_modes())
        return Reply(ReplyKind.TEXT, text("mode_unavailable", language, mode=text(f"mode_{mode}", language), available=available))

    def _choose(self, owner: str, photo_id: str, change, number: int | None = None) -> list[Reply]:
        session = self.store.load(owner)
        if session.state != State.CHOOSING or session.photo_id != photo_id or (number is not None and not 1 <= number <= session.face_count):
            return [Reply(ReplyKind.TEXT, text("expired", session.language))]
        if self.jobs.get_status(owner, photo_id).state == JobState.EXPIRED:
            return self._end(session, "expired")
        before = self.selection_of(session)
        change(session)
        session.keep = sorted(set(session.keep))
        session.move(Event.CHOOSE)
        self.store.save(session)
        selection = self.selection_of(session)
        return [replace(self._sheet_reply(session, selection), kind=ReplyKind.SELECTION, changed=selection != before)]

    def _show_sheet(self, session: Session) -> list[Reply]:
        analysis = self.jobs.get_analysis(session.owner, session.photo_id)
        if not analysis.faces:
            return self._end(session, "no_faces")
        sheet = self.jobs.get_sheet(session.owner, session.photo_id)
        session.face_count, session.keep = len(analysis.faces), list(analysis.default_keep)
        session.main_subjects = list(analysis.default_keep)
        session.unmasked = list(default_keep_for_mode(analysis.faces, "unmask", analysis.default_keep))
        session.move(Event.FACES_FOUND)
        self.store.save(session)
        return [replace(self._sheet_reply(session, self.selection_of(session)), image=sheet)]

    def _sheet_reply(self, session: Session, selection: Selection) -> Reply:
        """A SHEET reply: what to do (the caption), the current choice (the summary) and the controls."""
        count = session.face_count
        caption = text("sheet_caption_one" if count == 1 else "sheet_caption", session.language, count=count)
        return Reply(ReplyKind.SHEET, caption, summary=self.describe_selection(selection, session.language), selection=selection)

    def _show_result(self, session: Session) -> list[Reply]:
        result = self.jobs.get_result(session.owner, session.photo_id)
        changed = session.face_count - len(session.keep) - len(result.left_as_they_were)
        lines = [text("result_caption", session.language, changed=changed)]
        for key, numbers in (("result_blurred_instead", result.blurred_instead), ("result_left_as_they_were", result.left_as_they_were)):
            if numbers:
                lines.append(text(key, session.language, faces=face_list(numbers)))
        if result.made_by_ai:  # the law asks that AI-made content say so (README "Honest results")
            lines.append(text("result_made_by_ai_unmask" if session.mode == "unmask" else "result_made_by_ai", session.language))
        return [Reply(ReplyKind.RESULT, "\n".join(lines), result=result)]

    def _end(self, session: Session, key: str) -> list[Reply]:
        """Finish the photo with a message and forget it."""
        if session.photo_id:
            self.jobs.forget(session.owner, session.photo_id)
        session.move(Event.ENDED)
        self.store.save(session)
        return [Reply(ReplyKind.TEXT, error_text(key, session.language))]


def face_list(numbers: Sequence[int], limit: int = 20) -> str:
    """Face numbers for a message: "2, 5, 7", the first `limit` of a long list and "…"."""
    shown = ", ".join(map(str, sorted(numbers)[:limit]))
    return shown + (", …" if len(numbers) > limit else "")


def error_text(code: str, language: str) -> str:
    """The user's text for a job outcome code: a pipeline code, `expired`, `no_faces` or a failure."""
    if code == "too_large":
        return text("too_large", language, max_megapixels=40)
    if code in ("unsupported_format", "corrupt", "empty", "expired", "no_faces"):
        return text(code, language)
    if code == "mode_unavailable":
        return text("mode_unavailable", language, mode="?", available=text("mode_blur", language))
    return text("failed", language)
