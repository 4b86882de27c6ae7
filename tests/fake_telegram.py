"""A fake Telegram Bot API server for end-to-end tests of the bot (aiohttp, 127.0.0.1, random port).

It implements what `bot/telegram/` uses: getMe, getUpdates (long polling; tests
push users' updates with `send_photo`, `send_document`, `send_text`, `press`),
sendMessage, sendPhoto, sendDocument (multipart: the bytes are kept), edits,
deleteMessage, answerCallbackQuery, getFile and file downloads, deleteWebhook,
setWebhook and setMyCommands. Every call is recorded in `calls`, and every
message the bot sent is kept, with its edits applied, in `messages`, so a test can
assert what each user would see. `fail_next(method, retry_after)` answers the
next call of that method with a 429 flood limit.

Point python-telegram-bot at it with base_url `fake.base_url` (…/bot) and base
file URL `fake.base_file_url` (…/file/bot).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from tests.helpers import wait_until

TOKEN = "123456:TEST-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "FacePrivacy", "username": "faceprivacy_test_bot"}
TEXT_FIELDS = {"text", "caption", "callback_query_id", "file_id", "url", "secret_token", "filename"}
WAIT_SECONDS = 180  # hang protection only


@dataclass(frozen=True)
class FakeUser:
    id: int
    language_code: str = "ko"
    first_name: str = "Tester"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": False, "first_name": self.first_name, "language_code": self.language_code}

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}


@dataclass
class ApiCall:
    """One request the bot made: its method, its decoded parameters, its uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


class FakeTelegram:
    """The fake server; use as `async with FakeTelegram() as fake:`."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat id, message id) -> the bot's message now
        self.downloads: list[str] = []  # file ids the bot downloaded
        self.sheet_keys: list[tuple[int, int]] = []  # photos sent with a keyboard: contact sheets
        self._updates: list[dict[str, Any]] = []
        self._files: dict[str, bytes] = {}
        self._failures: dict[str, list[int]] = {}
        self._reactions: dict[str, Callable[[dict[str, Any]], float]] = {}
        self.refused: list[tuple[ApiCall, str]] = []  # calls answered 400, with Telegram's description
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.url = ""

    # --- server ----------------------------------------------------------------

    async def __aenter__(self) -> "FakeTelegram":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._closing = True  # ends a pending long poll at once
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await decode_request(request)
        call = ApiCall(method, params, files)
        if method != "getUpdates":
            self.calls.append(call)
        failures = self._failures.get(method)
        if failures:
            retry_after = failures.pop(0)
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        result = handler(params, files)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            if result.status == 400:
                self.refused.append((call, json.loads(result.body)["description"]))
            return result
        reaction = self._reactions.get(method)
        if reaction is not None:
            await asyncio.sleep(reaction(result))
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].split("/")[-1]
        if request.match_info["token"] != self.token or file_id not in self._files:
            return web.Response(status=404)
        self.downloads.append(file_id)
        return web.Response(body=self._files[file_id])

    # --- Bot API methods -----------------------------------------------------------

    def _getMe(self, params, files):
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _deleteWebhook(self, params, files):
        return True

    def _setWebhook(self, params, files):
        return True

    def _setMyCommands(self, params, files):
        return True

    async def _getUpdates(self, params, files):
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            pending = [update for update in self._updates if update["update_id"] >= offset]
            if pending or time.monotonic() >= deadline or self._closing:
                return pending[:limit]
            await asyncio.sleep(0.02)

    def _sendMessage(self, params, files):
        return self._store(params, text=params["text"])

    def _sendPhoto(self, params, files):
        data = files.get("photo", b"")
        file_id = self.add_file(data)
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 320, "height": 240, "file_size": len(data)}
        message = self._store(params, photo=[size], caption=params.get("caption"))
        if params.get("reply_markup"):
            self.sheet_keys.append((message["chat"]["id"], message["message_id"]))
        return message

    def _sendDocument(self, params, files):
        data = files.get("document", b"")
        file_id = self.add_file(data)
        document = {"file_id": file_id, "file_unique_id": file_id, "file_name": params.get("filename"), "file_size": len(data)}
        return self._store(params, document=document, caption=params.get("caption"))

    def _editMessageText(self, params, files):
        return self._edit(params, text=params["text"])

    def _editMessageCaption(self, params, files):
        return self._edit(params, caption=params.get("caption"))

    def _editMessageReplyMarkup(self, params, files):
        return self._edit(params)

    def _deleteMessage(self, params, files):
        message = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            return bad_request("message to delete not found")
        message["deleted"] = True
        return True

    def _answerCallbackQuery(self, params, files):
        return True

    def _getFile(self, params, files):
        file_id = params["file_id"]
        if file_id not in self._files:
            return bad_request("invalid file_id")
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(self._files[file_id]), "file_path": f"photos/{file_id}"}

    def _store(self, params, **content) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **{key: value for key, value in content.items() if value is not None},
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _edit(self, params, **content):
        message = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            return bad_request("message to edit not found")
        before = dict(message)
        message.update({key: value for key, value in content.items() if value is not None})
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        if message == before:
            return bad_request("message is not modified: specified new message content and reply markup are exactly the same")
        return message

    # --- what users do -----------------------------------------------------------

    def add_file(self, data: bytes) -> str:
        file_id = f"file{next(self._ids)}"
        self._files[file_id] = data
        return file_id

    def _push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": len(self._updates) + 1, kind: payload}
        self._updates.append(update)
        return update

    def _user_message(self, user: FakeUser, **content) -> dict[str, Any]:
        message = {"message_id": next(self._ids), "date": int(time.time()), "chat": user.chat, "from": user.to_json(), **content}
        return self._push("message", message)["message"]

    def send_photo(self, user: FakeUser, data: bytes, size: tuple[int, int] = (1280, 960), media_group_id: str | None = None, claimed_bytes: int | None = None) -> dict:
        """A compressed photo, as Telegram offers it: a small thumbnail (junk bytes) and the full size."""
        thumbnail = self.add_file(b"not the photo: a thumbnail the bot must not pick")
        full = self.add_file(data)
        sizes = [
            {"file_id": thumbnail, "file_unique_id": thumbnail, "width": 90, "height": 67, "file_size": 48},
            {"file_id": full, "file_unique_id": full, "width": size[0], "height": size[1], "file_size": claimed_bytes or len(data)},
        ]
        extra = {"media_group_id": media_group_id} if media_group_id else {}
        return self._user_message(user, photo=sizes, **extra)

    def send_document(self, user: FakeUser, data: bytes, file_name: str, mime_type: str, claimed_bytes: int | None = None) -> dict:
        file_id = self.add_file(data)
        document = {"file_id": file_id, "file_unique_id": file_id, "file_name": file_name, "mime_type": mime_type, "file_size": claimed_bytes or len(data)}
        return self._user_message(user, document=document)

    def send_text(self, user: FakeUser, text: str) -> dict:
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
        return self._user_message(user, text=text, entities=entities)

    def press(self, user: FakeUser, message: dict[str, Any], data: str) -> str:
        """The user taps a button with `data` under the bot's `message`; returns the callback query id."""
        query_id = str(next(self._ids))
        query = {"id": query_id, "from": user.to_json(), "chat_instance": str(message["chat"]["id"]), "data": data, "message": dict(message)}
        self._push("callback_query", query)
        return query_id

    def react(self, method: str, reaction: Callable[[Any], float]) -> None:
        """Call `reaction(result)` the moment the bot's `method` call succeeds, before the bot hears back.

        The reaction plays the user, who sees the message before the bot's request
        returns (it may push updates); it returns how many seconds the bot's answer
        is then held back, as network latency would.
        """
        self._reactions[method] = reaction

    def fail_next(self, method: str, retry_after: int = 1) -> None:
        """Answer the next call of `method` with 429 Too Many Requests."""
        self._failures.setdefault(method, []).append(retry_after)

    # --- what users see -------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method and (chat_id is None or call.chat_id == chat_id)]

    def answer_to(self, query_id: str) -> ApiCall | None:
        return next((call for call in self.calls_to("answerCallbackQuery") if call.params.get("callback_query_id") == query_id), None)

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, oldest first, as they look now (edits applied)."""
        return [message for (chat, _), message in sorted(self.messages.items(), key=lambda item: item[0][1]) if chat == chat_id]

    def texts_to(self, chat_id: int) -> list[str]:
        return [message.get("text") or message.get("caption") or "" for message in self.sent_to(chat_id)]

    def sheets_to(self, chat_id: int) -> list[dict[str, Any]]:
        """Photos the bot sent with a keyboard: contact sheets."""
        return [self.messages[key] for key in self.sheet_keys if key[0] == chat_id]

    async def wait_for(self, predicate: Callable[[], Any], what: str, timeout_seconds: float = WAIT_SECONDS) -> Any:
        """Poll `predicate` until it returns something truthy; fail after the (generous) timeout."""
        try:
            return await wait_until(predicate, what, timeout_seconds)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; calls: {[c.method for c in self.calls]}") from None


def bad_request(description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}, status=400)


async def decode_request(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The parameters (JSON-decoded where PTB JSON-encodes them) and the uploaded files of a request."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        return await request.json(), files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
        elif key in TEXT_FIELDS:
            params[key] = value
        else:
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
    return params, files


def keyboard_of(message: dict[str, Any]) -> list[list[dict[str, str]]]:
    return message.get("reply_markup", {}).get("inline_keyboard", [])


def button_data(message: dict[str, Any], label_end: str) -> str:
    """The callback data of the button whose label ends with `label_end` (e.g. " 2", "모자이크")."""
    for row in keyboard_of(message):
        for button in row:
            if button["text"].endswith(label_end):
                return button["callback_data"]
    raise AssertionError(f"no button ending with {label_end!r} in {keyboard_of(message)}")


def face_buttons(message: dict[str, Any]) -> dict[int, bool]:
    """Face number -> kept (✅) for the face toggles shown."""
    faces = {}
    for row in keyboard_of(message):
        for button in row:
            label = button["text"]
            if label[:1] in ("✅", "🔒") and label.split()[-1].isdigit():
                faces[int(label.split()[-1])] = label.startswith("✅")
    return faces


_shared_workers: dict[str, Any] = {}


def shared_worker(start_worker, queue: str):
    """One worker on `queue` for every test module that asks (start_worker stops it at the end)."""
    worker = _shared_workers.get(queue)
    if worker is None or worker.process.poll() is not None:
        worker = _shared_workers[queue] = start_worker(queue)
    return worker
