"""The KakaoTalk skill server: an aiohttp app factory.

    app = create_app(config, conversation)
    web.run_app(app, port=config.kakao.port)   # or an AppRunner next to the Telegram bot

Routes:
    POST {KAKAO_SKILL_PATH}   the skill (Kakao i Open Builder, response format 2.0)
    GET  /img/<token>.jpg     pictures Kakao fetches (sheet, face thumbnails, result; also .png)

Anything else is 404, including other methods on the skill path, so the secret
path is not revealed. A request whose `bot.id` is not KAKAO_BOT_ID gets 403 and
no work is done; a body that is not a SkillPayload gets 400.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from functools import partial
from typing import AsyncIterator

from aiohttp import web

from bot.session import Conversation
from bot.settings import BotConfig
from pipeline.config import ConfigError

from .images import CONTENT_TYPES
from .payload import PayloadError, bot_id_of, parse_skill_request
from .responses import check_response
from .skill import KakaoSkill, SkillLimits

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest skill request body accepted (Kakao's payloads are a few kilobytes)."""

IMAGE_TIMEOUT_SECONDS = 10.0
"""How long serving one picture may wait for storage before it answers 503."""

IMAGE_NAME = re.compile(r"([A-Za-z0-9_-]{32})\.(jpg|png)")
IMAGE_CACHE_CONTROL = "private, max-age=300"

skill_key = web.AppKey("kakao_skill", KakaoSkill)


def create_app(config: BotConfig, conversation: Conversation, *, limits: SkillLimits = SkillLimits()) -> web.Application:
    """The skill server for `config.kakao`, answering through `conversation`.

    Args:
        config: the service config (`kakao` section, storage TTL).
        conversation: the session state machine (its `jobs` Redis also holds image links).
        limits: time and size limits; tests shorten them.

    Raises:
        ConfigError: KAKAO_BOT_ID or KAKAO_PUBLIC_URL is empty, or the skill path is not a path.
    """
    settings = config.kakao
    if not settings.bot_id:
        raise ConfigError("kakao.bot_id is empty: set KAKAO_BOT_ID to the bot id of your Kakao channel's chatbot")
    if not settings.public_url.startswith(("https://", "http://")):
        raise ConfigError("kakao.public_url must be the http(s) URL Kakao reaches this server at (KAKAO_PUBLIC_URL)")
    if not settings.skill_path.startswith("/") or settings.skill_path.startswith("/img/"):
        raise ConfigError("kakao.skill_path must be a path such as /kakao/<secret> (KAKAO_SKILL_PATH)")
    app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
    app[skill_key] = KakaoSkill(config, conversation, limits)
    app.cleanup_ctx.append(skill_context)
    app.router.add_routes(
        [
            web.post(settings.skill_path, handle_skill),
            web.route("*", settings.skill_path, not_found),
            web.get("/img/{name}", serve_image),
        ]
    )
    return app


async def skill_context(app: web.Application) -> AsyncIterator[None]:
    """Open the skill's HTTP client (downloads, callbacks); on shutdown stop its background work."""
    skill = app[skill_key]
    await skill.start()
    yield
    await skill.close()


async def handle_skill(request: web.Request) -> web.Response:
    """One SkillPayload in, one 2.0 response out, within Kakao's 5 seconds."""
    skill = request.app[skill_key]
    try:
        payload = json.loads(await request.text())
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    if not isinstance(payload, dict):
        raise web.HTTPBadRequest(text="not a SkillPayload")
    if not hmac.compare_digest(bot_id_of(payload).encode(), skill.settings.bot_id.encode()):
        logger.warning("skill request for another bot refused")
        raise web.HTTPForbidden()
    try:
        skill_request = parse_skill_request(payload)
    except PayloadError as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    response = await skill.answer(skill_request)
    problems = check_response(response)
    if problems:
        logger.error("response breaks Kakao's limits: %s", "; ".join(problems))
    return web.json_response(response, dumps=partial(json.dumps, ensure_ascii=False))


async def serve_image(request: web.Request) -> web.Response:
    """A picture by its token; unknown, expired or malformed names are 404."""
    match = IMAGE_NAME.fullmatch(request.match_info["name"])
    if match is None:
        raise web.HTTPNotFound()
    token, extension = match.groups()
    links = request.app[skill_key].links
    try:
        image = await asyncio.wait_for(asyncio.to_thread(links.resolve, token, extension), IMAGE_TIMEOUT_SECONDS)
    except TimeoutError:
        raise web.HTTPServiceUnavailable() from None
    if image is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": IMAGE_CACHE_CONTROL, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return web.Response(body=image.data, content_type=CONTENT_TYPES[extension], headers=headers)


async def not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()
