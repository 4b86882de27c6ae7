"""A fake Kakao for the skill server tests, all on 127.0.0.1.

`FakeKakao` is one small aiohttp server playing Kakao's two other parts: the
image host users' photos come from (`/photos/<name>`, every request recorded),
and the callback receiver (`/callback/<id>`, every POST recorded; a callback can
be set to fail, as an expired one does). `KakaoUser` sends SkillPayloads to the
skill server under test, as Kakao would for one user.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient

from bot.kakao import check_response
from tests.helpers import wait_until

BOT_ID = "5a548e36aea1a43fa851ecd9"
SKILL_PATH = "/kakao/skill-7f3a9c"
WAIT_SECONDS = 120  # hang protection only


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for(predicate, what: str, timeout_seconds: float = WAIT_SECONDS):
    """Poll `predicate` until it returns something truthy (hang protection only)."""
    return await wait_until(predicate, what, timeout_seconds)


@dataclass
class Photo:
    data: bytes = b""
    content_type: str = "image/png"
    announced_bytes: int | None = None  # a Content-Length that lies
    stream_bytes: int = 0  # stream this many zero bytes, with no Content-Length
    redirect_to: str = ""


@dataclass
class FakeKakao:
    photos: dict[str, Photo] = field(default_factory=dict)
    photo_requests: list[str] = field(default_factory=list)
    callbacks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failing_callbacks: set[str] = field(default_factory=set)
    port: int = 0
    _ids = itertools.count(1)

    async def __aenter__(self) -> "FakeKakao":
        app = web.Application()
        app.router.add_routes([web.get("/photos/{name}", self._photo), web.post("/callback/{id}", self._callback)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._runner.cleanup()

    def photo_url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/photos/{name}"

    def new_callback(self, fail: bool = False) -> tuple[str, str]:
        """A fresh single-use callback URL and its id; `fail` makes Kakao refuse it, as when expired."""
        callback_id = f"cb{next(self._ids)}"
        self.callbacks[callback_id] = []
        if fail:
            self.failing_callbacks.add(callback_id)
        return f"http://127.0.0.1:{self.port}/callback/{callback_id}", callback_id

    async def callback(self, callback_id: str) -> dict[str, Any]:
        """The response POSTed to a callback URL (waits for it)."""
        return (await wait_for(lambda: self.callbacks[callback_id], f"callback {callback_id}"))[0]

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.photo_requests.append(name)
        photo = self.photos.get(name)
        if photo is None:
            raise web.HTTPNotFound()
        if photo.redirect_to:
            raise web.HTTPFound(photo.redirect_to)
        if photo.announced_bytes is not None:
            response = web.StreamResponse(headers={"Content-Length": str(photo.announced_bytes), "Content-Type": photo.content_type})
            await response.prepare(request)
            await response.write(b"\0" * 1024)
            return response
        if photo.stream_bytes:
            response = web.StreamResponse(headers={"Content-Type": photo.content_type})
            response.enable_chunked_encoding()
            await response.prepare(request)
            chunk = b"\0" * (1024 * 1024)
            try:
                for _ in range(photo.stream_bytes // len(chunk)):
                    await response.write(chunk)
            except (ConnectionResetError, RuntimeError):
                pass
            return response
        return web.Response(body=photo.data, content_type=photo.content_type)

    async def _callback(self, request: web.Request) -> web.Response:
        callback_id = request.match_info["id"]
        if callback_id not in self.callbacks or self.callbacks[callback_id]:
            return web.json_response({"status": "FAIL", "message": "unknown or used callback"}, status=400)
        self.callbacks[callback_id].append(await request.json())
        if callback_id in self.failing_callbacks:
            return web.json_response({"status": "FAIL", "message": "callback expired"}, status=400)
        return web.json_response({"taskId": callback_id, "status": "SUCCESS", "message": "", "timestamp": 0})


def skill_payload(user_id: str, utterance: str = "", *, bot_id: str = BOT_ID, callback_url: str = "", secure_urls: list[str] | None = None) -> dict[str, Any]:
    """A SkillPayload as Kakao sends it (fallback block, optional secure image plugin parameter)."""
    params: dict[str, Any] = {}
    detail_params: dict[str, Any] = {}
    if secure_urls is not None:
        value = json.dumps({"privacyAgreement": "Y", "imageQuantity": str(len(secure_urls)), "secureUrls": f"List({', '.join(secure_urls)})", "expire": "2030-01-01T00:00:00"})
        params["photo"] = value
        detail_params["photo"] = {"origin": value, "value": value, "groupName": ""}
    user_request: dict[str, Any] = {
        "timezone": "Asia/Seoul",
        "params": {"ignoreMe": "true"},
        "block": {"id": "fallback", "name": "폴백 블록"},
        "utterance": utterance,
        "lang": "ko",
        "user": {"id": user_id, "type": "botUserKey", "properties": {"botUserKey": user_id}},
    }
    if callback_url:
        user_request["callbackUrl"] = callback_url
    return {
        "intent": {"id": "fallback", "name": "폴백 블록"},
        "userRequest": user_request,
        "bot": {"id": bot_id, "name": "얼굴 지킴이"},
        "action": {"name": "face_skill", "clientExtra": None, "params": params, "id": "skill", "detailParams": detail_params},
        "contexts": [],
    }


@dataclass
class Exchange:
    """One message: the skill's immediate answer, and the callback id Kakao gave it (if any)."""

    answer: dict[str, Any]
    callback_id: str = ""
    elapsed_seconds: float = 0.0


class KakaoUser:
    """A KakaoTalk user talking to the skill server through Kakao."""

    def __init__(self, client: TestClient, kakao: FakeKakao, user_id: str):
        self.client = client
        self.kakao = kakao
        self.user_id = user_id

    async def send(self, utterance: str = "", *, callback: bool = True, fail_callback: bool = False, secure_urls: list[str] | None = None) -> Exchange:
        callback_url, callback_id = self.kakao.new_callback(fail_callback) if callback else ("", "")
        payload = skill_payload(self.user_id, utterance, callback_url=callback_url, secure_urls=secure_urls)
        started = time.monotonic()
        response = await self.client.post(SKILL_PATH, json=payload)
        elapsed_seconds = time.monotonic() - started
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert check_response(answer) == [], (check_response(answer), answer)
        return Exchange(answer, callback_id, elapsed_seconds)

    async def final(self, exchange: Exchange) -> dict[str, Any]:
        """The real response: the immediate answer, or what came through the callback."""
        if not exchange.answer.get("useCallback"):
            return exchange.answer
        response = await self.kakao.callback(exchange.callback_id)
        assert check_response(response) == [], (check_response(response), response)
        return response

    async def say(self, utterance: str = "", **options) -> dict[str, Any]:
        return await self.final(await self.send(utterance, **options))


async def fetch(session: ClientSession, url: str) -> tuple[int, str, bytes]:
    async with session.get(url) as response:
        return response.status, response.content_type, await response.read()


def outputs_of(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [output[kind] for output in response["template"]["outputs"] if kind in output]


def text_of(response: dict[str, Any]) -> str:
    if response.get("useCallback"):
        return response["data"]["text"]
    return "\n".join(item["text"] for item in outputs_of(response, "simpleText"))


def cards_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    carousels = outputs_of(response, "carousel")
    return carousels[0]["items"] if carousels else []


def quick_labels(response: dict[str, Any]) -> list[str]:
    return [reply["label"] for reply in response["template"].get("quickReplies", [])]


def quick_message(response: dict[str, Any], label_part: str) -> str:
    return next(reply["messageText"] for reply in response["template"]["quickReplies"] if label_part in reply["label"])

