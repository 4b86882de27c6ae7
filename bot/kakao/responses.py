"""Kakao skill response format 2.0: small builders and one checker of Kakao's limits.

    {"version": "2.0",
     "template": {"outputs": [{"simpleText": {...}} | {"simpleImage": {...}} | {"carousel": {...}}],
                  "quickReplies": [{"label": ..., "action": "message", "messageText": ...}]}}

and, when the block has the AI chatbot callback on, the immediate answer
`{"version": "2.0", "useCallback": true, "data": {"text": ...}}`, after which the
real response is POSTed to `userRequest.callbackUrl`.

The builders cut texts to Kakao's limits; `check_response` lists what breaks them.
"""

from __future__ import annotations

from typing import Any

VERSION = "2.0"
MAX_OUTPUTS = 3
MAX_SIMPLE_TEXT_CHARS = 1000
MAX_ALT_TEXT_CHARS = 1000
MAX_CARD_TITLE_CHARS = 50
MAX_CARD_DESCRIPTION_CHARS = 230
MAX_CARD_BUTTONS = 3
MAX_LABEL_CHARS = 14
MAX_QUICK_REPLIES = 10
MAX_CAROUSEL_ITEMS = 10
BUTTON_ACTIONS = {"message", "block", "webLink"}
QUICK_REPLY_ACTIONS = {"message", "block"}


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def simple_text(text: str) -> dict[str, Any]:
    return {"simpleText": {"text": cut(text, MAX_SIMPLE_TEXT_CHARS)}}


def simple_image(image_url: str, alt_text: str) -> dict[str, Any]:
    return {"simpleImage": {"imageUrl": image_url, "altText": cut(alt_text, MAX_ALT_TEXT_CHARS)}}


def message_button(label: str, message_text: str) -> dict[str, Any]:
    """A card button that sends `message_text` as the user's message."""
    return {"label": cut(label, MAX_LABEL_CHARS), "action": "message", "messageText": message_text}


def basic_card(title: str, image_url: str, buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """A card with a square thumbnail (`fixedRatio`: every card of a carousel has the same 1:1 ratio)."""
    return {
        "title": cut(title, MAX_CARD_TITLE_CHARS),
        "thumbnail": {"imageUrl": image_url, "fixedRatio": True},
        "buttons": buttons[:MAX_CARD_BUTTONS],
    }


def carousel(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return {"carousel": {"type": "basicCard", "items": cards[:MAX_CAROUSEL_ITEMS]}}


def quick_reply(label: str, message_text: str) -> dict[str, Any]:
    return {"label": cut(label, MAX_LABEL_CHARS), "action": "message", "messageText": message_text}


def skill_response(outputs: list[dict[str, Any]], quick_replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"outputs": outputs[:MAX_OUTPUTS]}
    if quick_replies:
        template["quickReplies"] = quick_replies[:MAX_QUICK_REPLIES]
    return {"version": VERSION, "template": template}


def text_response(text: str, quick_replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return skill_response([simple_text(text)], quick_replies)


def callback_answer(text: str) -> dict[str, Any]:
    """The immediate answer that promises a callback; `text` fills the block's {{#webhook.text}}."""
    return {"version": VERSION, "useCallback": True, "data": {"text": cut(text, MAX_SIMPLE_TEXT_CHARS)}}


def check_response(response: Any) -> list[str]:
    """Every way `response` breaks the 2.0 format or Kakao's limits; empty when it is fine."""
    problems: list[str] = []
    if not isinstance(response, dict) or response.get("version") != VERSION:
        return ["not a version 2.0 response"]
    if response.get("useCallback"):
        data_text = (response.get("data") or {}).get("text")
        if not isinstance(data_text, str) or not data_text:
            problems.append("useCallback without data.text")
        elif len(data_text) > MAX_SIMPLE_TEXT_CHARS:
            problems.append(f"data.text has {len(data_text)} characters")
        return problems
    template = response.get("template")
    if not isinstance(template, dict):
        return ["no template"]
    outputs = template.get("outputs")
    if not isinstance(outputs, list) or not 1 <= len(outputs) <= MAX_OUTPUTS:
        problems.append(f"outputs must hold 1 to {MAX_OUTPUTS} items")
        outputs = outputs if isinstance(outputs, list) else []
    for index, output in enumerate(outputs):
        problems.extend(f"outputs[{index}]: {problem}" for problem in _check_output(output))
    quick_replies = template.get("quickReplies", [])
    if len(quick_replies) > MAX_QUICK_REPLIES:
        problems.append(f"{len(quick_replies)} quick replies")
    for reply in quick_replies:
        problems.extend(_check_label("quick reply", reply, QUICK_REPLY_ACTIONS))
    return problems


def _check_output(output: Any) -> list[str]:
    if not isinstance(output, dict) or len(output) != 1:
        return ["an output holds exactly one component"]
    (kind, body), = output.items()
    if kind == "simpleText":
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return ["simpleText without text"]
        return [f"simpleText has {len(text)} characters"] if len(text) > MAX_SIMPLE_TEXT_CHARS else []
    if kind == "simpleImage":
        if not body.get("imageUrl") or not body.get("altText"):
            return ["simpleImage needs imageUrl and altText"]
        return [f"altText has {len(body['altText'])} characters"] if len(body["altText"]) > MAX_ALT_TEXT_CHARS else []
    if kind == "carousel":
        items = body.get("items") or []
        problems = []
        if body.get("type") != "basicCard":
            problems.append("carousel type is not basicCard")
        if not 1 <= len(items) <= MAX_CAROUSEL_ITEMS:
            problems.append(f"carousel holds {len(items)} items")
        if len({(item.get("thumbnail") or {}).get("fixedRatio", False) for item in items}) > 1:
            problems.append("carousel thumbnails have different ratios")
        for item in items:
            problems.extend(_check_card(item))
        return problems
    if kind == "basicCard":
        return _check_card(body)
    return [f"unknown component {kind}"]


def _check_card(card: dict[str, Any]) -> list[str]:
    problems = []
    if len(card.get("title", "")) > MAX_CARD_TITLE_CHARS:
        problems.append(f"card title has {len(card['title'])} characters")
    if len(card.get("description", "")) > MAX_CARD_DESCRIPTION_CHARS:
        problems.append("card description too long")
    if not (card.get("thumbnail") or {}).get("imageUrl"):
        problems.append("card without thumbnail.imageUrl")
    buttons = card.get("buttons", [])
    if len(buttons) > MAX_CARD_BUTTONS:
        problems.append(f"card has {len(buttons)} buttons")
    for button in buttons:
        problems.extend(_check_label("button", button, BUTTON_ACTIONS))
    return problems


def _check_label(what: str, item: dict[str, Any], actions: set[str]) -> list[str]:
    problems = []
    label = item.get("label")
    if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS:
        problems.append(f"{what} label {label!r} is empty or over {MAX_LABEL_CHARS} characters")
    action = item.get("action")
    if action not in actions:
        problems.append(f"{what} action {action!r}")
    if action == "message" and not item.get("messageText"):
        problems.append(f"{what} {label!r} has no messageText")
    if action == "webLink" and not item.get("webLinkUrl"):
        problems.append(f"{what} {label!r} has no webLinkUrl")
    return problems
