"""`Conversation` transitions against a real Redis, and a real worker where a job must run."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from bot.messages import text
from bot.session import TRANSITIONS, Conversation, ReplyKind, Session, SessionStore, State
from pipeline.config import load_config
from workers.client import PhotoJobs
from workers.settings import WorkersConfig
from workers.storage import session_key

from fake_telegram import shared_worker
from helpers import PROJECT_ROOT, assert_content_credentials, photo_bytes

SESSION_DIAGRAM = PROJECT_ROOT / "bot" / "session.mmd"

QUEUE = "telegram-tests"  # shared with test_telegram.py: one worker for both
IDLE_QUEUE = "session-tests-nobody-listens"
WAIT_SECONDS = 120  # hang protection only


def make_conversation(redis_server, queue: str = QUEUE) -> Conversation:
    config = load_config(environ={"REDIS_URL": redis_server.url}, schema=WorkersConfig)
    jobs = PhotoJobs(replace(config, workers=replace(config.workers, queues=(queue,))))
    return Conversation(jobs, SessionStore(jobs.connection, config.storage.ttl_seconds))


def follow_until_finished(conversation: Conversation, owner: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        replies, finished = conversation.follow(owner)
        if finished:
            return replies
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


@pytest.fixture(scope="module")
def worker(start_worker):
    return shared_worker(start_worker, QUEUE)


def test_typed_text_before_a_photo_asks_for_one(redis_server):
    conversation = make_conversation(redis_server, IDLE_QUEUE)
    [reply] = conversation.type_text("test:first", "1 3", "en")
    assert reply.text == text("send_photo_first", "en")


def test_language_follows_the_chat_until_lang_is_chosen(redis_server):
    conversation = make_conversation(redis_server, IDLE_QUEUE)
    assert conversation.language("test:lang", "en-GB") == "en"
    conversation.set_language("test:lang", "ko")
    assert conversation.language("test:lang", "en-GB") == "ko"


def test_second_photo_while_one_is_queued_is_busy_until_cancelled(redis_server):
    conversation = make_conversation(redis_server, IDLE_QUEUE)
    [working] = conversation.receive_photo("test:busy", photo_bytes("fr_obama_small.jpg"), "ko")
    assert working.kind == ReplyKind.PROGRESS
    [busy] = conversation.receive_photo("test:busy", photo_bytes("fr_obama_small.jpg"))
    assert busy.text == text("busy", "ko")
    [queued], finished = conversation.follow("test:busy")
    assert not finished and queued.text == text("queued", "ko", position=1)
    assert conversation.cancel("test:busy")[0].text == text("cancelled", "ko")
    assert conversation.current("test:busy").state == State.IDLE


def test_buttons_of_another_photo_say_expired_and_change_nothing(redis_server):
    conversation = make_conversation(redis_server, IDLE_QUEUE)
    session = Session(owner="test:stale", state=State.CHOOSING, photo_id="current", face_count=3, keep=[1])
    conversation.store.save(session)
    for replies in (
        conversation.toggle("test:stale", "older", 2),
        conversation.keep_all("test:stale", "older", True),
        conversation.choose_mode("test:stale", "older", "blur"),
        conversation.go("test:stale", "older"),
    ):
        assert [reply.text for reply in replies] == [text("expired", "ko")]
    assert conversation.current("test:stale") == session


def test_stored_session_with_unknown_fields_still_loads(redis_server):
    conversation = make_conversation(redis_server, IDLE_QUEUE)
    stored = '{"owner": "test:old", "state": "idle", "language": "en", "retired_field": 1}'
    conversation.store.connection.set(session_key("test:old"), stored)
    assert conversation.current("test:old").language == "en"


def test_photo_is_analysed_chosen_processed_and_forgotten(redis_server, worker):
    conversation, owner = make_conversation(redis_server), "test:whole"
    conversation.receive_photo(owner, photo_bytes("fr_two_people.jpg"), "en")
    [sheet] = follow_until_finished(conversation, owner)
    assert sheet.kind == ReplyKind.SHEET and sheet.image[:2] == b"\xff\xd8"
    assert sheet.selection.face_count == 2 and conversation.current(owner).state == State.CHOOSING
    photo_id = sheet.selection.photo_id

    for mode in [mode for mode, reason in conversation.jobs.available_modes().items() if reason is not None]:
        [refused] = conversation.choose_mode(owner, photo_id, mode)
        assert refused.kind == ReplyKind.TEXT and text(f"mode_{mode}", "en") in refused.text and "Blur" in refused.text
    assert conversation.current(owner).mode == "blur"
    [typed] = conversation.type_text(owner, "all")
    assert typed.kind == ReplyKind.SELECTION and typed.selection.keep == {1, 2}
    assert conversation.go(owner, photo_id)[0].text == text("nothing_to_change", "en")
    [toggled] = conversation.toggle(owner, photo_id, 2)
    assert toggled.selection.keep == {1}
    assert conversation.go(owner, photo_id)[0].kind == ReplyKind.PROGRESS

    [result] = follow_until_finished(conversation, owner)
    assert result.kind == ReplyKind.RESULT and result.result.content_type == "image/jpeg"
    conversation.delivered(owner, photo_id)
    assert conversation.current(owner).state == State.IDLE
    assert conversation.go(owner, photo_id)[0].text == text("expired", "en")


def test_unreadable_photo_ends_with_a_plain_message(redis_server, worker):
    conversation, owner = make_conversation(redis_server), "test:corrupt"
    conversation.receive_photo(owner, b"\xff\xd8\xff\xe0 this is not really a JPEG", "en")
    [reply] = follow_until_finished(conversation, owner)
    assert reply.kind == ReplyKind.TEXT
    assert reply.text in (text("corrupt", "en"), text("unsupported_format", "en"))
    assert conversation.current(owner).state == State.IDLE


def test_choosing_unmask_selects_the_masked_faces_and_back_again(redis_server, worker):
    conversation, owner = make_conversation(redis_server), "test:unmask"
    conversation.receive_photo(owner, photo_bytes("kagglemask_maksssksksss148.jpg"), "ko")
    [sheet] = follow_until_finished(conversation, owner)
    photo_id, main_subjects = sheet.selection.photo_id, sheet.selection.keep
    faces = conversation.jobs.get_analysis(owner, photo_id).faces
    unmasked = {face.number for face in faces if face.mask < 0.5}
    assert unmasked and len(unmasked) < len(faces) and unmasked != main_subjects

    selection, said = conversation.choose_mode(owner, photo_id, "unmask")
    assert selection.selection.mode == "unmask" and selection.selection.keep == unmasked
    assert said.text == text("unmask_selected", "ko", count=len(faces) - len(unmasked))
    [toggled] = conversation.toggle(owner, photo_id, min(unmasked))
    assert toggled.selection.keep == unmasked - {min(unmasked)}
    [back] = conversation.choose_mode(owner, photo_id, "blur")
    assert back.selection.mode == "blur" and back.selection.keep == main_subjects
    conversation.cancel(owner)


def test_the_result_says_which_faces_unmask_left_as_they_were(redis_server, worker):
    conversation, owner = make_conversation(redis_server), "test:unmask-result"
    conversation.receive_photo(owner, photo_bytes("kagglemask_maksssksksss148.jpg"), "en")
    [sheet] = follow_until_finished(conversation, owner)
    photo_id = sheet.selection.photo_id
    faces = conversation.jobs.get_analysis(owner, photo_id).faces
    unmasked = sorted(face.number for face in faces if face.mask < 0.5)
    conversation.choose_mode(owner, photo_id, "unmask")
    [typed] = conversation.type_text(owner, "none")
    assert typed.selection.keep == set()
    assert conversation.go(owner, photo_id)[0].kind == ReplyKind.PROGRESS

    [result] = follow_until_finished(conversation, owner)
    assert result.kind == ReplyKind.RESULT
    assert set(unmasked) <= set(result.result.left_as_they_were) and not result.result.blurred_instead
    listed = text("result_left_as_they_were", "en", faces=", ".join(map(str, result.result.left_as_they_were)))
    assert listed in result.text.splitlines(), result.text
    changed = len(faces) - len(result.result.left_as_they_were)
    assert result.text.splitlines()[0] == text("result_caption", "en", changed=changed)
    assert changed > 0 and result.result.made_by_ai and result.result.content_credentials
    assert result.text.splitlines()[-1] == text("result_made_by_ai_unmask", "en")  # the chat discloses AI
    assert_content_credentials(result.result.data, edited_by_ai=True)
    conversation.delivered(owner, photo_id)


def test_the_diagram_draws_every_transition_and_nothing_else():
    arrow = re.compile(r"^\s*(\w+) -- (.+?) --> (\w+)\s*$")
    drawn = {match.groups() for line in SESSION_DIAGRAM.read_text().splitlines() if (match := arrow.match(line))}
    table = {(state.name, event.value, next_state.name) for (state, event), next_state in TRANSITIONS.items()}
    assert drawn == table
