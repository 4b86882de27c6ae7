"""The KakaoTalk skill server end to end: the real aiohttp app, a fake Kakao, a real Redis and worker.

Each test builds the app with `bot.kakao.create_app`, serves it on 127.0.0.1,
and talks to it as Kakao does: SkillPayloads in, 2.0 responses (inline or through
a callback URL) out, and image URLs fetched back from the server. Every response
is checked against Kakao's limits (`check_response`) by `KakaoUser`. Waits are
hang protection only; nothing here measures time.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, replace

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.kakao import SkillLimits, check_response, create_app
from bot.kakao.payload import PayloadError, parse_skill_request
from bot.kakao.responses import carousel, basic_card, message_button, quick_reply, simple_text, skill_response
from bot.messages import text
from bot.session import Conversation, SessionStore, State
from bot.settings import BotConfig
from pipeline.config import load_config
from pipeline.imageio import load_photo
from workers.client import JobState, PhotoJobs
from workers.storage import kakao_notice_key, kakao_unseen_key, session_key

from fake_kakao import (
    BOT_ID,
    SKILL_PATH,
    FakeKakao,
    KakaoUser,
    Photo,
    cards_of,
    fetch,
    free_port,
    outputs_of,
    quick_labels,
    quick_message,
    skill_payload,
    text_of,
    wait_for,
)
from fake_telegram import shared_worker
from helpers import assert_content_credentials, photo_bytes, photo_rgb

QUEUE = "kakao-tests"
IDLE_QUEUE = "kakao-tests-nobody-listens"  # no worker serves it: jobs stay queued


@pytest.fixture(scope="module")
def worker(start_worker):
    return shared_worker(start_worker, QUEUE)


@dataclass
class Harness:
    client: TestClient
    kakao: FakeKakao
    conversation: Conversation
    jobs: PhotoJobs

    def user(self, name: str) -> KakaoUser:
        return KakaoUser(self.client, self.kakao, f"{name}-{time.monotonic_ns()}")


def run_skill(redis_server, scenario, *, queue=QUEUE, callback=True, limits=SkillLimits(), conversation_class=Conversation) -> None:
    """Run `scenario(harness)` against a fresh skill server and fake Kakao."""

    async def main() -> None:
        async with FakeKakao() as kakao:
            port = free_port()
            environ = {
                "REDIS_URL": redis_server.url,
                "KAKAO_BOT_ID": BOT_ID,
                "KAKAO_SKILL_PATH": SKILL_PATH,
                "KAKAO_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "KAKAO_CALLBACK": "on" if callback else "off",
                "KAKAO_IMAGE_HOSTS": "127.0.0.1",
                "KAKAO_CALLBACK_HOSTS": "127.0.0.1",
            }
            config = load_config(environ=environ, schema=BotConfig)
            config = replace(config, workers=replace(config.workers, queues=(queue,)))
            jobs = PhotoJobs(config)
            conversation = conversation_class(jobs, SessionStore(jobs.connection, config.storage.ttl_seconds))
            app = create_app(config, conversation, limits=limits)
            async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
                await scenario(Harness(client, kakao, conversation, jobs))

    asyncio.run(main())


def png_bytes(name: str) -> bytes:
    """A test photo re-encoded as PNG, so the result is PNG and pixels compare exactly."""
    buffer = io.BytesIO()
    Image.fromarray(photo_rgb(name)).save(buffer, format="PNG")
    return buffer.getvalue()


def box_slice(face):
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    return slice(max(0, y1), y2), slice(max(0, x1), x2)


def owner_of(user: KakaoUser) -> str:
    return f"kakao:{user.user_id}"


async def sheet_by_asking(user: KakaoUser) -> dict:
    """Without callbacks: ask "결과 보기" until the contact sheet comes (hang protection only)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await user.say("결과 보기", callback=False)
        if outputs_of(response, "simpleImage"):
            return response
        await asyncio.sleep(0.3)
    raise AssertionError("no contact sheet")


def test_full_conversation_blurs_only_the_faces_not_kept(redis_server, worker):
    async def scenario(h: Harness) -> None:
        h.kakao.photos["two.png"] = Photo(png_bytes("fr_two_people.jpg"))
        user = h.user("alice")
        owner = owner_of(user)

        exchange = await user.send("사진 보내기", secure_urls=[h.kakao.photo_url("two.png")])
        assert exchange.answer["useCallback"] is True
        assert exchange.answer["data"]["text"] == text("working", "ko")
        sheet = await user.final(exchange)
        [sheet_image] = outputs_of(sheet, "simpleImage")
        cards = cards_of(sheet)
        assert [card["title"][2:4] for card in cards] == ["1번", "2번"]
        assert all(card["thumbnail"]["fixedRatio"] is True for card in cards)
        assert {"✓ 모자이크", "▶️ 시작", "✅ 모두 남기기", "🔒 모두 가리기"} <= set(quick_labels(sheet))

        photo_id = h.conversation.current(owner).photo_id
        assert photo_id not in sheet_image["imageUrl"]
        assert await fetch(h.client.session, sheet_image["imageUrl"]) == (200, "image/jpeg", h.jobs.get_sheet(owner, photo_id))
        status, content_type, thumbnail = await fetch(h.client.session, cards[1]["thumbnail"]["imageUrl"])
        assert (status, content_type) == (200, "image/jpeg")
        width, height = Image.open(io.BytesIO(thumbnail)).size
        assert width == height

        chosen = await user.say("1 2")  # typed numbers: keep both
        assert [card["title"] for card in cards_of(chosen)] == ["✅ 1번 · 남길 얼굴", "✅ 2번 · 남길 얼굴"]
        button = cards_of(chosen)[1]["buttons"][0]
        assert button["action"] == "message" and button["messageText"].startswith("2번 가리기")
        chosen = await user.say(button["messageText"])  # the card button: change face 2
        assert cards_of(chosen)[1]["title"] == "🔒 2번 · 가릴 얼굴"
        chosen = await user.say(quick_message(chosen, "모자이크"))
        assert h.conversation.current(owner).keep == [1]
        faces = h.jobs.get_analysis(owner, photo_id).faces

        exchange = await user.send(quick_message(chosen, "시작"))
        assert exchange.answer["useCallback"] is True
        result = await user.final(exchange)
        [result_image] = outputs_of(result, "simpleImage")
        assert result_image["imageUrl"].endswith(".png") and result_image["imageUrl"] in text_of(result)
        status, content_type, data = await fetch(h.client.session, result_image["imageUrl"])
        assert (status, content_type) == (200, "image/png")
        assert_content_credentials(data, edited_by_ai=False)  # the stored bytes, byte for byte
        original = photo_rgb("fr_two_people.jpg").astype(int)
        changed = load_photo(data).astype(int)
        kept, blurred = faces
        assert np.array_equal(changed[box_slice(kept)], original[box_slice(kept)])
        assert np.abs(changed[box_slice(blurred)] - original[box_slice(blurred)]).mean() > 5.0

        # Delivered: the photo is forgotten, its sheet is gone, the result copy stays a while.
        await wait_for(lambda: h.jobs.get_status(owner, photo_id).state == JobState.EXPIRED, "the photo forgotten")
        assert h.conversation.current(owner).state == State.IDLE
        assert (await fetch(h.client.session, sheet_image["imageUrl"]))[0] == 404
        assert (await fetch(h.client.session, result_image["imageUrl"]))[0] == 200
        assert (await fetch(h.client.session, result_image["imageUrl"][:-4] + ".jpg"))[0] == 404
        base = result_image["imageUrl"].split("/img/")[0]
        for path in ("/img/", "/img", "/img/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.jpg", "/img/../config.yaml"):
            assert (await fetch(h.client.session, base + path))[0] == 404

    run_skill(redis_server, scenario)


def test_lost_callbacks_are_shown_on_the_next_message(redis_server, worker):
    async def scenario(h: Harness) -> None:
        h.kakao.photos["obama.jpg"] = Photo(photo_bytes("fr_obama_small.jpg"), "image/jpeg")
        user = h.user("bob")
        owner = owner_of(user)

        exchange = await user.send(h.kakao.photo_url("obama.jpg"), fail_callback=True)  # a photo URL as utterance
        lost_sheet = await h.kakao.callback(exchange.callback_id)  # Kakao refused it: expired
        assert outputs_of(lost_sheet, "simpleImage")
        await wait_for(lambda: h.jobs.connection.exists(kakao_unseen_key(owner)), "the sheet kept for later")
        again = await user.say("?", callback=False)  # any next message shows the sheet
        assert outputs_of(again, "simpleImage") and len(cards_of(again)) == 1

        chosen = await user.say("없음")
        exchange = await user.send(quick_message(chosen, "시작"), fail_callback=True)
        lost_result = await h.kakao.callback(exchange.callback_id)
        assert outputs_of(lost_result, "simpleImage")
        assert h.conversation.current(owner).state == State.PROCESSING  # not delivered, so not forgotten

        result = await user.say("결과 보기", callback=False)
        [image] = outputs_of(result, "simpleImage")
        status, content_type, _ = await fetch(h.client.session, image["imageUrl"])
        assert (status, content_type) == (200, "image/jpeg")
        await wait_for(lambda: h.conversation.current(owner).state == State.IDLE, "the photo forgotten after delivery")

    run_skill(redis_server, scenario)


def test_answers_at_once_while_no_worker_takes_the_job(redis_server):
    limits = SkillLimits(callback_window_seconds=1.5, poll_interval_seconds=0.2)

    async def scenario(h: Harness) -> None:
        h.kakao.photos["obama.jpg"] = Photo(photo_bytes("fr_obama_small.jpg"), "image/jpeg")
        user = h.user("carol")
        exchange = await user.send(h.kakao.photo_url("obama.jpg"))
        assert exchange.answer["useCallback"] is True
        late = await h.kakao.callback(exchange.callback_id)  # the window closed with the job still queued
        assert text("kakao_still_working", "ko") in text_of(late)
        assert quick_labels(late) == ["결과 보기"]
        progress = await user.say("결과 보기", callback=False)
        assert text("queued", "ko", position=1) in text_of(progress)
        assert text_of(await user.say("취소", callback=False)) == text("cancelled", "ko")

    run_skill(redis_server, scenario, queue=IDLE_QUEUE, limits=limits)


class SlowConversation(Conversation):
    """Typed text takes longer than the inline budget, as with a slow Redis."""

    def type_text(self, *arguments, **options):
        time.sleep(1.0)
        return super().type_text(*arguments, **options)


def test_answers_at_once_while_storage_is_slow(redis_server):
    limits = SkillLimits(inline_budget_seconds=0.3)

    async def scenario(h: Harness) -> None:
        user = h.user("dave")
        exchange = await user.send("1 3")
        assert exchange.answer == {"version": "2.0", "useCallback": True, "data": {"text": text("kakao_wait", "ko")}}
        assert text_of(await user.final(exchange)) == text("send_photo_first", "ko")

        exchange = await user.send("1 3", callback=False)  # no callback: the answer waits for the next message
        assert text("kakao_wait", "ko") in text_of(exchange.answer)
        await wait_for(lambda: h.jobs.connection.exists(kakao_notice_key(owner_of(user))), "the late answer kept")
        help_answer = await user.say("도움말", callback=False)
        assert text_of(help_answer).startswith(text("send_photo_first", "ko"))
        assert text("help", "ko") in text_of(help_answer)

    run_skill(redis_server, scenario, queue=IDLE_QUEUE, limits=limits, conversation_class=SlowConversation)


def test_refuses_other_bots_other_paths_and_garbage(redis_server):
    async def scenario(h: Harness) -> None:
        post = h.client.post
        response = await post(SKILL_PATH, json=skill_payload("eve", "모두", bot_id="someone-else"))
        assert response.status == 403
        assert not h.jobs.connection.exists(session_key("kakao:eve"))
        for body in (b"{not json", b"\xff\xfe", b"[]", b'"text"'):
            assert (await post(SKILL_PATH, data=body, headers={"Content-Type": "application/json"})).status == 400
        no_user = skill_payload("eve")
        del no_user["userRequest"]["user"]
        assert (await post(SKILL_PATH, json=no_user)).status == 400
        assert (await post("/kakao/skill", json=skill_payload("eve"))).status == 404
        assert (await h.client.get(SKILL_PATH)).status == 404
        assert (await h.client.get("/")).status == 404
        assert (await post(SKILL_PATH, json=skill_payload("eve", "도움말"))).status == 200

    run_skill(redis_server, scenario, queue=IDLE_QUEUE)


def test_refuses_photos_from_other_hosts_and_too_large_photos(redis_server):
    async def scenario(h: Harness) -> None:
        kakao = h.kakao
        kakao.photos["a.png"] = Photo(png_bytes("fr_obama_small.jpg"))
        kakao.photos["hop.png"] = Photo(redirect_to=kakao.photo_url("a.png", host="localhost"))
        kakao.photos["announced.png"] = Photo(announced_bytes=30_000_000)
        kakao.photos["stream.png"] = Photo(stream_bytes=21 * 1024 * 1024)
        user = h.user("frank")
        refusal = text("kakao_foreign_host", "ko")

        for sent in ({"utterance": kakao.photo_url("a.png", host="localhost")}, {"secure_urls": ["https://evil.example.com/a.png"]}):
            exchange = await user.send(**sent)
            assert not exchange.answer.get("useCallback") and text_of(exchange.answer) == refusal
        assert kakao.photo_requests == []  # never fetched

        assert text_of(await user.say(kakao.photo_url("hop.png"))) == refusal
        assert kakao.photo_requests == ["hop.png"]  # the redirect to another host was not followed

        assert text_of(await user.say(kakao.photo_url("announced.png"))) == text("too_big_file", "ko", size_mb="30.0", limit_mb=20)
        assert "20 MB" in text_of(await user.say(kakao.photo_url("stream.png")))
        assert h.conversation.current(owner_of(user)).state == State.IDLE

    run_skill(redis_server, scenario, queue=IDLE_QUEUE)


def test_two_users_see_only_their_own_pictures(redis_server, worker):
    async def scenario(h: Harness) -> None:
        h.kakao.photos["two.png"] = Photo(png_bytes("fr_two_people.jpg"))
        h.kakao.photos["crowd.jpg"] = Photo(photo_bytes("kagglemask_maksssksksss389.jpg"), "image/jpeg")
        alice, bob = h.user("alice"), h.user("bob")
        answers = await asyncio.gather(
            alice.send(h.kakao.photo_url("two.png"), callback=False), bob.send(h.kakao.photo_url("crowd.jpg"), callback=False)
        )
        assert all(not exchange.answer.get("useCallback") for exchange in answers)
        sheet_a, sheet_b = await asyncio.gather(sheet_by_asking(alice), sheet_by_asking(bob))

        photo_a, photo_b = (h.conversation.current(owner_of(user)).photo_id for user in (alice, bob))
        urls_a = [outputs_of(sheet_a, "simpleImage")[0]["imageUrl"]] + [card["thumbnail"]["imageUrl"] for card in cards_of(sheet_a)]
        urls_b = [outputs_of(sheet_b, "simpleImage")[0]["imageUrl"]] + [card["thumbnail"]["imageUrl"] for card in cards_of(sheet_b)]
        assert not set(urls_a) & set(urls_b)
        secrets = (photo_a, photo_b, alice.user_id, bob.user_id)
        assert not any(secret in url for url in urls_a + urls_b for secret in secrets)
        assert (await fetch(h.client.session, urls_a[0]))[2] == h.jobs.get_sheet(owner_of(alice), photo_a)
        assert (await fetch(h.client.session, urls_b[0]))[2] == h.jobs.get_sheet(owner_of(bob), photo_b)

        assert len(cards_of(sheet_b)) == 10 and "다음 ▶" in quick_labels(sheet_b)  # 11 faces (the dark blob once counted as a 12th is gone): two pages
        page_two = await bob.say(quick_message(sheet_b, "다음"), callback=False)
        assert [card["title"][2:5] for card in cards_of(page_two)] == ["11번"]
        assert "◀ 이전" in quick_labels(page_two) and "다음 ▶" not in quick_labels(page_two)

        keep_before = h.conversation.current(owner_of(alice)).keep
        bobs_button = cards_of(sheet_b)[0]["buttons"][0]["messageText"]
        assert text_of(await alice.say(bobs_button, callback=False)) == text("expired", "ko")
        assert h.conversation.current(owner_of(alice)).keep == keep_before
        for user in (alice, bob):
            await user.say("취소", callback=False)

    run_skill(redis_server, scenario, callback=False)


def test_response_checker_names_every_broken_limit():
    long_label = "가" * 15
    broken = skill_response(
        [simple_text("ok")] * 3,
        [quick_reply("ok", "ok")] * 10,
    )
    broken["template"]["outputs"].append({"simpleText": {"text": "x" * 1001}})
    broken["template"]["quickReplies"].append({"label": long_label, "action": "message", "messageText": "x"})
    cards = [basic_card("t", "https://example.com/a.jpg", [message_button("ok", "ok")]) for _ in range(10)]
    too_many = carousel(cards)
    too_many["carousel"]["items"].append({"title": "x" * 51, "thumbnail": {"imageUrl": "u"}, "buttons": []})
    problems = check_response(broken) + check_response(skill_response([too_many]))
    assert any("outputs" in problem for problem in problems)
    assert any("1001 characters" in problem for problem in problems)
    assert any("11 quick replies" in problem for problem in problems)
    assert any(long_label in problem for problem in problems)
    assert any("carousel holds 11 items" in problem for problem in problems)
    assert any("card title has 51" in problem for problem in problems)
    assert any("different ratios" in problem for problem in problems)
    assert check_response(skill_response([simple_text("x" * 1000), carousel(cards)], [quick_reply("가" * 14, "x")])) == []
    assert check_response({"version": "2.0", "useCallback": True, "data": {"text": "잠시만요"}}) == []


def test_photo_urls_come_from_the_secure_image_plugin_or_the_utterance():
    plugin = skill_payload("u1", "사진", secure_urls=["https://talk.kakaocdn.net/a.jpg", "https://talk.kakaocdn.net/b,c.jpg"])
    assert parse_skill_request(plugin).photo_urls == ("https://talk.kakaocdn.net/a.jpg", "https://talk.kakaocdn.net/b,c.jpg")
    as_object = skill_payload("u1")
    as_object["action"]["detailParams"] = {"photo": {"value": {"secureUrls": ["https://k.kakaocdn.net/x.png"]}}}
    assert parse_skill_request(as_object).photo_urls == ("https://k.kakaocdn.net/x.png",)
    typed = parse_skill_request(skill_payload("u1", "http://dn-m.talk.kakao.com/talkm/abc/i_1.jpeg"))
    assert typed.photo_urls == ("http://dn-m.talk.kakao.com/talkm/abc/i_1.jpeg",) and typed.owner == "kakao:u1"
    assert parse_skill_request(skill_payload("u1", "1 3")).photo_urls == ()
    for broken in ({}, {"userRequest": {"user": {"id": ""}}}, {"userRequest": {"user": {"id": "a b"}}}):
        with pytest.raises(PayloadError):
            parse_skill_request(broken)
