"""Reading a Kakao i Open Builder SkillPayload into the few things the bot needs.

Kakao POSTs one JSON object per user message. We use:
  - `bot.id` (must be ours; checked by the app before anything else),
  - `userRequest.user.id` (the user: our owner is "kakao:<id>"),
  - `userRequest.utterance` (typed text, a button's messageText, or a photo URL),
  - `userRequest.callbackUrl` (present only in blocks with the AI chatbot callback on),
  - `userRequest.lang`,
  - `action.params` / `action.detailParams`: the secure image plugin's value
    (`sys.plugin.secureimage`), a JSON string whose `secureUrls` is "List(url1, url2)".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

OWNER_PREFIX = "kakao:"
MAX_USER_ID_CHARS = 200
MAX_UTTERANCE_CHARS = 2000  # longer text is cut; nothing we understand is that long

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_KAKAO_LIST = re.compile(r"\s*List\((.*)\)\s*", re.DOTALL)
_URL_SEPARATOR = re.compile(r"\s*,\s*(?=https?://)", re.IGNORECASE)


class PayloadError(ValueError):
    """The request is not a SkillPayload we can answer (no user, wrong types)."""


@dataclass(frozen=True)
class SkillRequest:
    """One user message, as the skill needs it."""

    owner: str
    utterance: str
    photo_urls: tuple[str, ...]
    callback_url: str
    language: str


def bot_id_of(payload: Any) -> str:
    """`bot.id` of a decoded payload, or "" when there is none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("bot"), dict):
        return ""
    bot_id = payload["bot"].get("id")
    return bot_id if isinstance(bot_id, str) else ""


def parse_skill_request(payload: Any) -> SkillRequest:
    """The user, their words, any photo URLs and the callback URL of a SkillPayload.

    Raises:
        PayloadError: no `userRequest.user.id`, or fields of the wrong type.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("userRequest"), dict):
        raise PayloadError("no userRequest")
    user_request = payload["userRequest"]
    user = user_request.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_CHARS or any(c.isspace() for c in user_id):
        raise PayloadError("no usable userRequest.user.id")
    utterance = user_request.get("utterance") or ""
    callback_url = user_request.get("callbackUrl") or ""
    language = user_request.get("lang") or ""
    if not all(isinstance(value, str) for value in (utterance, callback_url, language)):
        raise PayloadError("utterance, callbackUrl and lang must be strings")
    action = payload.get("action") if isinstance(payload.get("action"), dict) else {}
    photo_urls = secure_image_urls(action) or tuple(_URL_IN_TEXT.findall(utterance))
    return SkillRequest(
        owner=OWNER_PREFIX + user_id,
        utterance=utterance[:MAX_UTTERANCE_CHARS].strip(),
        photo_urls=photo_urls,
        callback_url=callback_url.strip(),
        language=language,
    )


def secure_image_urls(action: dict[str, Any]) -> tuple[str, ...]:
    """The photo URLs the secure image plugin put in any action parameter (first parameter that has them)."""
    candidates: list[Any] = []
    params = action.get("params")
    if isinstance(params, dict):
        candidates.extend(params.values())
    detail_params = action.get("detailParams")
    if isinstance(detail_params, dict):
        for detail in detail_params.values():
            if isinstance(detail, dict):
                candidates.extend((detail.get("value"), detail.get("origin")))
    for value in candidates:
        urls = _urls_from_secure_value(value)
        if urls:
            return urls
    return ()


def _urls_from_secure_value(value: Any) -> tuple[str, ...]:
    """`{"secureUrls": "List(u1, u2)", ...}` as a JSON string or object; anything else gives ()."""
    if isinstance(value, str):
        if "secureUrls" not in value:
            return ()
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    if not isinstance(value, dict):
        return ()
    secure = value.get("secureUrls")
    if isinstance(secure, list):
        return tuple(str(url).strip() for url in secure if isinstance(url, str) and url.strip())
    if isinstance(secure, str):
        match = _KAKAO_LIST.fullmatch(secure)
        inner = match.group(1) if match else secure
        return tuple(url for url in _URL_SEPARATOR.split(inner.strip()) if url)
    return ()
