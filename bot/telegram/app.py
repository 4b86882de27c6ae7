"""Start-up: build the Application, receive updates by long polling or a webhook, stop.

Webhook (optional): set TELEGRAM_WEBHOOK_URL (the public HTTPS URL Telegram posts
to) and TELEGRAM_WEBHOOK_SECRET. `start_receiving` then calls setWebhook with that
secret token instead of polling, and `start_application` serves the URL's path on
its own aiohttp server at `telegram.webhook_port` (TELEGRAM_WEBHOOK_PORT, 8443),
behind your HTTPS proxy. To serve it on an existing aiohttp app instead, call
`add_webhook_route(aiohttp_app, application, config.telegram)` and use the
spelled-out form in `bot.telegram`. Requests without the right
`X-Telegram-Bot-Api-Secret-Token` header get 403. (PTB's own `run_webhook` needs
tornado, which we do not install.)
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from aiohttp import web
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.messages import LANGUAGES, text
from bot.session import Conversation
from bot.settings import BotConfig, TelegramSettings
from bot.telegram.handlers import Adapter, build_handlers, report_error
from bot.telegram.transport import PerUserUpdateProcessor, RetryAfterLimiter

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
COMMANDS = ("start", "help", "cancel", "privacy", "lang")


def build_application(config: BotConfig, conversation: Conversation) -> Application:
    """The Telegram Application with every handler wired; it talks to `config.telegram.base_url`.

    Raises:
        ValueError: TELEGRAM_TOKEN is not set.
    """
    settings = config.telegram
    if not settings.token:
        raise ValueError("TELEGRAM_TOKEN is not set: create a bot with @BotFather and export its token")
    if settings.webhook_url and not settings.webhook_secret:
        raise ValueError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the token in the URL
    application = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(RetryAfterLimiter())
        .concurrent_updates(PerUserUpdateProcessor())
        .build()
    )
    application.bot_data["adapter"] = Adapter(conversation, settings)
    application.add_handlers(build_handlers())
    application.add_error_handler(report_error)
    return application


async def set_commands(application: Application) -> None:
    """Publish the command menu in Korean (default) and English; a failure is only logged."""
    try:
        for language in LANGUAGES:
            commands = [BotCommand(name, text(f"command_{name}", language)) for name in COMMANDS]
            await application.bot.set_my_commands(commands, language_code=None if language == "ko" else language)
    except TelegramError as error:
        logger.warning("command menu not set: %s", error)


async def start_receiving(application: Application, settings: TelegramSettings) -> None:
    """After `application.start()`: long polling, or, with a webhook URL, register the webhook.

    Raises:
        ValueError: a webhook URL without TELEGRAM_WEBHOOK_SECRET.
    """
    await set_commands(application)
    if not settings.webhook_url:
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        return
    if not settings.webhook_secret:
        raise ValueError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not")
    await application.bot.set_webhook(
        url=settings.webhook_url, secret_token=settings.webhook_secret, allowed_updates=ALLOWED_UPDATES
    )


async def stop_receiving(application: Application) -> None:
    """Stop polling (before `application.stop()`); a webhook simply stops being served."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()


async def start_application(application: Application, config: BotConfig) -> None:
    """Initialise and start the Application and start receiving updates (polling or webhook).

    In webhook mode the bot serves `telegram.webhook_url`'s path on its own small
    aiohttp server at `telegram.webhook_port`; put your HTTPS proxy in front of it.
    """
    await application.initialize()
    await application.start()
    settings = config.telegram
    if settings.webhook_url:
        web_app = web.Application()
        add_webhook_route(web_app, application, settings)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", settings.webhook_port).start()
        application.bot_data["webhook_runner"] = runner
        logger.info("Telegram webhook served on port %d", settings.webhook_port)
    await start_receiving(application, settings)


async def stop_application(application: Application) -> None:
    """Undo `start_application`: stop receiving, finish running work, shut down."""
    await stop_receiving(application)
    runner = application.bot_data.pop("webhook_runner", None)
    if runner is not None:
        await runner.cleanup()
    if application.running:
        await application.stop()
    await application.shutdown()


def add_webhook_route(web_app: web.Application, application: Application, settings: TelegramSettings) -> None:
    """Serve Telegram's webhook on the path of `settings.webhook_url` in an aiohttp app."""

    async def receive_update(request: web.Request) -> web.Response:
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
        if not settings.webhook_secret or not hmac.compare_digest(given.encode(), settings.webhook_secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    web_app.router.add_post(urlsplit(settings.webhook_url).path or "/", receive_update)
