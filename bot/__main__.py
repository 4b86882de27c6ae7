"""`python -m bot`: run the configured chat adapters in one event loop.

Telegram runs when `TELEGRAM_TOKEN` is set (polling, or a webhook when one is
configured); the Kakao skill server runs when `KAKAO_BOT_ID` is set. Both share
one `Conversation` over the job queue; the bot never loads a model. It needs a
Redis (`REDIS_URL`), and workers started separately (`python -m workers`), or
`make run`, which starts everything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from bot.settings import BotConfig
from pipeline.config import load_config

logger = logging.getLogger("bot")


def build_conversation(config: BotConfig):
    from bot.session import Conversation, SessionStore
    from workers.client import PhotoJobs

    jobs = PhotoJobs(config)
    return Conversation(jobs, SessionStore(jobs.connection, config.storage.ttl_seconds))


async def serve(config: BotConfig) -> None:
    """Run every configured adapter until SIGINT or SIGTERM."""
    from aiohttp import web

    conversation = build_conversation(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    health = None
    if config.bot.health_port:
        from bot.health import start_health_server

        health = await start_health_server(conversation.jobs.connection, config.bot.health_port)
    runner = None
    if config.kakao.bot_id:
        from bot.kakao import create_app

        runner = web.AppRunner(create_app(config, conversation), access_log=None)  # paths hold image tokens
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", config.kakao.port).start()
        logger.info("Kakao skill server on port %d", config.kakao.port)

    application = None
    if config.telegram.token:
        from bot.telegram import build_application, start_application

        application = build_application(config, conversation)
        await start_application(application, config)
        logger.info("Telegram bot running")
    try:
        await stop.wait()
    finally:
        if application is not None:
            from bot.telegram import stop_application

            await stop_application(application)
        if runner is not None:
            await runner.cleanup()
        if health is not None:
            await health.cleanup()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the bot token in URLs
    config = load_config(schema=BotConfig)
    if not (config.telegram.token or config.kakao.bot_id):
        print("Nothing to run: set TELEGRAM_TOKEN and/or KAKAO_BOT_ID.", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(status)  # skip the interpreter's teardown (seconds while torch is imported): a stop must fit in 10 s
