"""The Telegram bot end to end: python-telegram-bot polling a fake Bot API, a real Redis and a real worker.

Each test runs the real Application (built by `bot.telegram.build_application`)
against a fresh `FakeTelegram`, pushes what users do, and asserts what each user
would see. Waits are hang protection only; nothing here measures time.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from bot.messages import text
from bot.session import Conversation, SessionStore, State
from bot.settings import BotConfig
from bot.telegram import build_application, start_application, stop_application
from bot.telegram.keyboard import parse_callback_data
from pipeline.config import load_config
from workers.client import JobState, PhotoJobs

from fake_telegram import TOKEN, FakeTelegram, FakeUser, button_data, face_buttons, keyboard_of, shared_worker
from helpers import assert_content_credentials, photo_bytes, photo_rgb

QUEUE = "telegram-tests"  # our own queue and worker; user ids 7710xx are used by no other test module


@pytest.fixture(scope="module")
def worker(start_worker):
    return shared_worker(start_worker, QUEUE)


def png_bytes(name: str) -> bytes:
    """A test photo re-encoded as PNG, so the result is PNG and pixels compare exactly."""
    buffer = io.BytesIO()
    Image.fromarray(photo_rgb(name)).save(buffer, format="PNG")
    return buffer.getvalue()


def plain_png(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 140, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_bot(redis_server, scenario, conversation_class=Conversation) -> None:
    """Run `scenario(fake, jobs, conversation)` while the real Application polls a fresh fake server."""

    async def main() -> None:
        async with FakeTelegram() as fake:
            environ = {"REDIS_URL": redis_server.url, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url}
            config = load_config(environ=environ, schema=BotConfig)
            config = replace(config, workers=replace(config.workers, queues=(QUEUE,)))
            jobs = PhotoJobs(config)
            conversation = conversation_class(jobs, SessionStore(jobs.connection, config.storage.ttl_seconds))
            application = build_application(config, conversation)
            await start_application(application, config)  # as `python -m bot` runs it: polling
            try:
                await scenario(fake, jobs, conversation)
            finally:
                await stop_application(application)

    asyncio.run(main())


async def sheet_after(fake: FakeTelegram, user: FakeUser, count_before: int = 0) -> dict:
    """Wait for the user's next contact sheet."""
    return await fake.wait_for(lambda: len(fake.sheets_to(user.id)) > count_before and fake.sheets_to(user.id)[-1], "a contact sheet")


def photo_id_of(sheet: dict) -> str:
    return parse_callback_data(button_data(sheet, " 1"))[1]


def box_slices(face):
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    return slice(max(0, y1), y2), slice(max(0, x1), x2)


def test_photo_becomes_blurred_result_with_chosen_faces_unchanged(redis_server, worker):
    user = FakeUser(771001, "ko")
    original = photo_rgb("fr_two_people.jpg")

    async def scenario(fake, jobs, conversation):
        fake.send_document(user, png_bytes("fr_two_people.jpg"), "two.png", "image/png")
        sheet = await sheet_after(fake, user)
        assert fake.texts_to(user.id)[0] == text("working", "ko")  # answered at once, before the sheet
        photo_id = photo_id_of(sheet)
        analysis = jobs.get_analysis(f"telegram:{user.id}", photo_id)
        assert len(analysis.faces) == 2
        assert face_buttons(sheet) == {n: n in analysis.default_keep for n in (1, 2)}
        messages_before = len(fake.sent_to(user.id))

        for number in (1, 2):  # toggle both faces: the sheet changes in place
            edits = len(fake.calls_to("editMessageCaption", user.id))
            fake.press(user, sheet, button_data(sheet, f" {number}"))
            await fake.wait_for(lambda: len(fake.calls_to("editMessageCaption", user.id)) > edits, "the sheet edited")
        kept = {n for n, keep in face_buttons(sheet).items() if keep}
        assert kept == {1, 2} ^ set(analysis.default_keep)
        if not kept or kept == {1, 2}:  # compare one kept and one changed face
            fake.press(user, sheet, button_data(sheet, " 1"))
            await fake.wait_for(lambda: face_buttons(sheet)[1] != (1 in kept), "face 1 toggled again")
            kept ^= {1}
        assert len(fake.sent_to(user.id)) == messages_before  # no new message per click

        unavailable = [mode for mode, reason in jobs.available_modes().items() if reason is not None]
        for mode in unavailable:  # a mode without its weights: says so and offers blur
            query = fake.press(user, sheet, button_data(sheet, text(f"mode_{mode}", "ko")))
            answer = await fake.wait_for(lambda: fake.answer_to(query), f"the {mode} button answered")
            assert text(f"mode_{mode}", "ko") in answer.params["text"] and answer.params["show_alert"] is True
            assert text("mode_blur", "ko") in answer.params["text"]
        assert "• " + text("mode_blur", "ko") in [b["text"] for row in keyboard_of(sheet) for b in row]  # blur stays chosen

        fake.press(user, sheet, button_data(sheet, text("button_go", "ko")))
        document = await fake.wait_for(lambda: fake.calls_to("sendDocument", user.id), "the result document")
        result_photos = [call for call in fake.calls_to("sendPhoto", user.id) if "reply_markup" not in call.params]
        assert len(result_photos) == 1 and result_photos[0].files["photo"] == document[0].files["document"]
        assert text("processing", "ko") in [call.params["text"] for call in fake.calls_to("sendMessage", user.id)]
        assert "reply_markup" not in sheet  # the used sheet's buttons are gone

        result = np.asarray(Image.open(io.BytesIO(document[0].files["document"])).convert("RGB"))
        assert result.shape == original.shape
        assert_content_credentials(document[0].files["document"], edited_by_ai=False)  # the stored bytes, byte for byte
        assert document[0].params["caption"] == text("result_document_credentials", "ko")
        for face in analysis.faces:
            if face.number in kept:
                assert np.array_equal(result[box_slices(face)], original[box_slices(face)])
            else:
                assert np.abs(result[box_slices(face)].astype(int) - original[box_slices(face)]).mean() > 5

        owner = f"telegram:{user.id}"
        await fake.wait_for(lambda: conversation.current(owner).state == State.IDLE, "the session back to idle")
        assert jobs.get_status(owner, photo_id).state == JobState.EXPIRED  # the photo is deleted

    run_bot(redis_server, scenario)


def test_typed_korean_numbers_update_the_keyboard_in_place(redis_server, worker):
    user = FakeUser(771002, "ko")

    async def scenario(fake, jobs, conversation):
        fake.send_document(user, photo_bytes("scrfd_solvay_1927.png"), "solvay.png", "image/png")
        sheet = await sheet_after(fake, user)
        faces = jobs.get_analysis(f"telegram:{user.id}", photo_id_of(sheet)).faces
        assert len(faces) > 20
        assert sorted(face_buttons(sheet)) == list(range(1, 21))  # the first page
        sent_before = len(fake.sent_to(user.id))

        fake.send_text(user, "1번 2번")
        await fake.wait_for(lambda: face_buttons(sheet) == {n: n in (1, 2) for n in range(1, 21)}, "faces 1 and 2 kept")
        fake.press(user, sheet, button_data(sheet, text("button_next", "ko")))
        await fake.wait_for(lambda: sorted(face_buttons(sheet)) == list(range(21, len(faces) + 1)), "the second page")
        fake.send_text(user, "1, 25")
        await fake.wait_for(lambda: face_buttons(sheet).get(25), "face 25 kept")
        assert len(fake.sent_to(user.id)) == sent_before  # edited in place, nothing new sent

        fake.send_text(user, "/cancel")
        await fake.wait_for(lambda: text("cancelled", "ko") in fake.texts_to(user.id), "cancelled")

    run_bot(redis_server, scenario)


def test_text_file_and_oversized_file_are_refused_before_download(redis_server):
    user = FakeUser(771003, "en")

    async def scenario(fake, jobs, conversation):
        fake.send_document(user, b"shopping list\n", "notes.txt", "text/plain")
        await fake.wait_for(lambda: text("not_an_image", "en") in fake.texts_to(user.id), "not a photo")
        fake.send_photo(user, photo_bytes("fr_obama_small.jpg"), claimed_bytes=25_000_000)
        await fake.wait_for(lambda: any("25.0 MB" in t for t in fake.texts_to(user.id)), "file too large")
        assert fake.downloads == [] and fake.calls_to("getFile") == []
        assert conversation.current(f"telegram:{user.id}").state == State.IDLE  # nothing queued

    run_bot(redis_server, scenario)


def test_photo_without_faces_says_so(redis_server, worker):
    user = FakeUser(771004, "en")

    async def scenario(fake, jobs, conversation):
        fake.send_photo(user, plain_png(), size=(640, 480))
        await fake.wait_for(lambda: text("no_faces", "en") in fake.texts_to(user.id), "no faces")
        assert fake.sheets_to(user.id) == []

    run_bot(redis_server, scenario)


def test_stale_button_says_the_photo_expired(redis_server, worker):
    user = FakeUser(771005, "ko")

    async def scenario(fake, jobs, conversation):
        fake.send_photo(user, photo_bytes("fr_obama_small.jpg"))
        old_sheet = await sheet_after(fake, user)
        fake.send_photo(user, photo_bytes("fr_two_people.jpg"))
        new_sheet = await sheet_after(fake, user, 1)
        new_before = dict(new_sheet)
        query = fake.press(user, old_sheet, button_data(old_sheet, " 1"))
        answer = await fake.wait_for(lambda: fake.answer_to(query), "the stale button answered")
        assert answer.params["text"] == text("expired", "ko")
        query = fake.press(user, new_sheet, "t:no-such-photo:1")
        assert (await fake.wait_for(lambda: fake.answer_to(query), "answered")).params["text"] == text("expired", "ko")
        query = fake.press(user, new_sheet, "some-old-format")
        assert (await fake.wait_for(lambda: fake.answer_to(query), "answered")).params["text"] == text("expired", "ko")
        assert new_sheet == new_before

    run_bot(redis_server, scenario)


def test_album_is_handled_one_photo_at_a_time(redis_server, worker):
    user = FakeUser(771006, "en")

    async def scenario(fake, jobs, conversation):
        for _ in range(3):
            fake.send_photo(user, photo_bytes("fr_obama_small.jpg"), media_group_id="album-1")
        await sheet_after(fake, user)
        await asyncio.sleep(1)  # time for a wrong second sheet to show up
        assert fake.texts_to(user.id).count(text("album", "en")) == 1
        assert len(fake.sheets_to(user.id)) == 1

    run_bot(redis_server, scenario)


def test_two_users_never_see_each_others_photos(redis_server, worker):
    alice, bob = FakeUser(771007, "ko"), FakeUser(771008, "en")

    async def scenario(fake, jobs, conversation):
        fake.send_photo(alice, photo_bytes("fr_two_people.jpg"), size=(1126, 661))
        fake.send_photo(bob, photo_bytes("fr_obama_small.jpg"))
        alice_sheet, bob_sheet = await sheet_after(fake, alice), await sheet_after(fake, bob)
        alice_owner = f"telegram:{alice.id}"
        alice_keep = conversation.current(alice_owner).keep

        for message in (alice_sheet, bob_sheet):  # Alice's buttons, pressed by Bob
            query = fake.press(bob, message, button_data(alice_sheet, " 1"))
            answer = await fake.wait_for(lambda: fake.answer_to(query), "Bob's press answered")
            assert answer.params["text"] == text("expired", "en")
        query = fake.press(bob, alice_sheet, button_data(alice_sheet, text("button_go", "ko")))
        await fake.wait_for(lambda: fake.answer_to(query), "Bob's go answered")
        assert fake.calls_to("editMessageCaption") == [] and fake.calls_to("editMessageReplyMarkup") == []
        assert conversation.current(alice_owner).keep == alice_keep
        assert conversation.current(alice_owner).state == State.CHOOSING

        fake.press(alice, alice_sheet, button_data(alice_sheet, text("button_change_all", "ko")))
        fake.press(bob, bob_sheet, button_data(bob_sheet, text("button_change_all", "en")))
        fake.press(alice, alice_sheet, button_data(alice_sheet, text("button_go", "ko")))
        fake.press(bob, bob_sheet, button_data(bob_sheet, text("button_go", "en")))
        alice_document = await fake.wait_for(lambda: fake.calls_to("sendDocument", alice.id), "Alice's result")
        bob_document = await fake.wait_for(lambda: fake.calls_to("sendDocument", bob.id), "Bob's result")
        assert len(alice_document) == len(bob_document) == 1
        assert Image.open(io.BytesIO(alice_document[0].files["document"])).size == (1126, 661)
        assert Image.open(io.BytesIO(bob_document[0].files["document"])).size == Image.open(io.BytesIO(photo_bytes("fr_obama_small.jpg"))).size
        assert len(fake.sheets_to(alice.id)) == len(fake.sheets_to(bob.id)) == 1
        assert {call.chat_id for call in fake.calls if call.chat_id is not None} == {alice.id, bob.id}

    run_bot(redis_server, scenario)


def test_flood_limit_on_send_photo_is_retried(redis_server, worker):
    user = FakeUser(771009, "en")

    async def scenario(fake, jobs, conversation):
        fake.fail_next("sendPhoto", retry_after=1)
        fake.send_photo(user, photo_bytes("fr_obama_small.jpg"))
        sheet = await sheet_after(fake, user)
        assert len(fake.calls_to("sendPhoto", user.id)) == 2  # refused once, then sent
        assert face_buttons(sheet)

    run_bot(redis_server, scenario)


def test_commands_answer_in_the_users_language(redis_server):
    user = FakeUser(771010, "en-US")

    async def scenario(fake, jobs, conversation):
        async def ask(command: str, expected: str) -> None:
            fake.send_text(user, command)
            await fake.wait_for(lambda: fake.texts_to(user.id) and fake.texts_to(user.id)[-1] == expected, f"answer to {command}")

        await ask("/start", text("start", "en"))
        await ask("/lang", text("lang_set", "ko"))
        await ask("/privacy", text("privacy", "ko", ttl_minutes=60))
        await ask("/lang en", text("lang_set", "en"))
        await ask("/lang fr", text("lang_usage", "en"))
        await ask("/help", text("help", "en"))
        await ask("/cancel", text("nothing_to_cancel", "en"))
        await ask("hello", text("send_photo_first", "en"))

    run_bot(redis_server, scenario)


class BrokenConversation(Conversation):
    def type_text(self, owner, typed, language_code=None):
        raise RuntimeError("a bug")


def test_a_failing_handler_is_logged_and_reported_and_the_bot_goes_on(redis_server, caplog):
    user = FakeUser(771011, "ko")

    async def scenario(fake, jobs, conversation):
        fake.send_text(user, "1 2")
        await fake.wait_for(lambda: text("error", "ko") in fake.texts_to(user.id), "the error message")
        fake.send_text(user, "/help")
        await fake.wait_for(lambda: text("help", "ko") in fake.texts_to(user.id), "help after the failure")

    with caplog.at_level(logging.ERROR, logger="bot.telegram"):
        run_bot(redis_server, scenario, conversation_class=BrokenConversation)
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


class RecordingBot:
    def __init__(self):
        self.edits: list[str] = []

    async def edit_message_text(self, new_text, chat_id, message_id):
        self.edits.append(new_text)


def test_progress_message_is_edited_only_when_changed_and_not_too_often():
    from bot.telegram.render import PROGRESS_EDIT_INTERVAL_SECONDS, ProgressMessage

    async def scenario():
        bot = RecordingBot()
        progress = ProgressMessage(1, 2, "working", edited_at=0.0)  # last edited long ago
        await progress.show(bot, "working")  # unchanged: no edit
        await progress.show(bot, "queued 2")
        await progress.show(bot, "queued 1")  # within the interval of the last edit: skipped
        progress.edited_at -= PROGRESS_EDIT_INTERVAL_SECONDS
        await progress.show(bot, "queued 1")
        return bot.edits

    assert asyncio.run(scenario()) == ["queued 2", "queued 1"]


def test_webhook_needs_the_secret_token_and_feeds_the_bot(redis_server):
    import socket

    import aiohttp

    from bot.telegram.app import WEBHOOK_SECRET_HEADER

    user = FakeUser(771012, "en")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        async with FakeTelegram() as fake:
            environ = {
                "REDIS_URL": redis_server.url,
                "TELEGRAM_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": fake.base_url,
                "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/telegram/hook",
                "TELEGRAM_WEBHOOK_SECRET": "s3cret-token",
                "TELEGRAM_WEBHOOK_PORT": str(port),
            }
            config = load_config(environ=environ, schema=BotConfig)
            jobs = PhotoJobs(config)
            application = build_application(config, Conversation(jobs, SessionStore(jobs.connection, 3600)))
            await start_application(application, config)
            try:
                [registered] = fake.calls_to("setWebhook")
                assert registered.params["secret_token"] == "s3cret-token"
                assert not application.updater.running  # no polling next to a webhook
                update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": user.chat, "from": user.to_json(), "text": "/help", "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
                url = f"http://127.0.0.1:{port}/telegram/hook"
                async with aiohttp.ClientSession() as http:
                    async with http.post(url, json=update, headers={WEBHOOK_SECRET_HEADER: "wrong"}) as response:
                        assert response.status == 403
                    async with http.post(url, json=update, headers={WEBHOOK_SECRET_HEADER: "s3cret-token"}) as response:
                        assert response.status == 200
                await fake.wait_for(lambda: text("help", "en") in fake.texts_to(user.id), "help via the webhook")
                assert fake.texts_to(user.id) == [text("help", "en")]  # the refused request did nothing
            finally:
                await stop_application(application)

    asyncio.run(main())


BURST_ROUNDS = 50
ROUND_WAIT_SECONDS = 90  # hang protection only: a lost photo never gets its result
SLOW_ANSWER_SECONDS = 3.0  # a slow network: long enough for the user's next presses to be handled first


def test_next_photo_sent_the_moment_a_result_arrives_is_never_refused_or_lost(redis_server, worker):
    """A user who sends the next photo within milliseconds of each result, 50 times over.

    The fake server pushes the next photo the moment the bot sends the result file
    and holds the bot's own answer back 0-98 ms (2 ms more each round), so the
    bot's clean-up after photo N meets photo N+1's intake at many different points.
    """
    user = FakeUser(771013, "en")
    photo = photo_bytes("fr_obama_small.jpg")

    async def scenario(fake, jobs, conversation):
        def on_sheet(message):
            if keyboard_of(message):  # a contact sheet, not a result photo: change every face, go
                fake.press(user, message, button_data(message, text("button_change_all", "en")))
                fake.press(user, message, button_data(message, text("button_go", "en")))
            return 0.0

        def on_result(message):
            sent = len(fake.calls_to("sendDocument", user.id))
            if sent > BURST_ROUNDS:
                return 0.0
            fake.send_photo(user, photo)
            return sent * 0.002

        fake.react("sendPhoto", on_sheet)
        fake.react("sendDocument", on_result)
        fake.send_photo(user, photo)
        for round_number in range(1, BURST_ROUNDS + 2):
            await fake.wait_for(
                lambda: len(fake.calls_to("sendDocument", user.id)) >= round_number,
                f"the result of photo {round_number} (texts: {fake.texts_to(user.id)[-4:]})",
                timeout_seconds=ROUND_WAIT_SECONDS,
            )
            assert text("busy", "en") not in fake.texts_to(user.id), f"photo {round_number} refused as busy"
        assert len(fake.sheets_to(user.id)) == BURST_ROUNDS + 1
        assert fake.refused == []

    run_bot(redis_server, scenario)


def test_go_pressed_before_the_bot_has_cleared_the_sheets_progress_message_still_gets_the_result(redis_server, worker):
    """The user presses go the moment the sheet appears, while the bot's last request
    about the analysis (deleting its "looking for faces" line) is still on its way.

    The analysis' follower is still running then; the process job needs its own.
    """
    user = FakeUser(771015, "en")

    async def scenario(fake, jobs, conversation):
        def on_sheet(message):
            if keyboard_of(message):
                fake.press(user, message, button_data(message, text("button_change_all", "en")))
                fake.press(user, message, button_data(message, text("button_go", "en")))
            return 0.0

        fake.react("sendPhoto", on_sheet)
        fake.react("deleteMessage", lambda result: SLOW_ANSWER_SECONDS)
        fake.send_photo(user, photo_bytes("fr_obama_small.jpg"))
        await fake.wait_for(lambda: fake.calls_to("sendDocument", user.id), "the result")
        assert text("processing", "en") in fake.texts_to(user.id)

    run_bot(redis_server, scenario)


def test_pressing_what_is_already_chosen_sends_no_edit_telegram_would_refuse(redis_server, worker):
    user = FakeUser(771014, "en")

    async def scenario(fake, jobs, conversation):
        fake.send_photo(user, photo_bytes("fr_two_people.jpg"), size=(1126, 661))
        sheet = await sheet_after(fake, user)
        edits = lambda: len(fake.calls_to("editMessageCaption", user.id))  # noqa: E731

        async def press(label: str) -> None:
            query = fake.press(user, sheet, button_data(sheet, label))
            await fake.wait_for(lambda: fake.answer_to(query), f"{label} answered")

        for label in (text("mode_blur", "en"), text("button_keep_all", "en")):
            await press(label)
            before = edits()
            await press(label)  # changes nothing
            assert edits() == before
        fake.send_text(user, "1")
        await fake.wait_for(lambda: face_buttons(sheet) == {1: True, 2: False}, "face 1 kept")
        before = edits()
        fake.send_text(user, "1")  # changes nothing
        await press(text("mode_blur", "en"))  # answered after the typed text: this user's updates run in order
        assert edits() == before
        fake.press(user, sheet, button_data(sheet, text("button_go", "en")))
        await fake.wait_for(lambda: fake.calls_to("sendDocument", user.id), "the result")
        assert fake.refused == []

    run_bot(redis_server, scenario)
