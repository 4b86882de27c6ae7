"""`GET /healthz` on a local port, for Docker's and compose's health checks.

It answers 200 "ok" while the bot's event loop runs and Redis answers, else 503.
It listens on 127.0.0.1 only (with host networking, the host's loopback).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis import Redis
from redis.exceptions import RedisError

HEALTH_PATH = "/healthz"


async def start_health_server(connection: Redis, port: int) -> web.AppRunner:
    """Serve `/healthz` on 127.0.0.1:`port`; `await runner.cleanup()` stops it."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            await asyncio.to_thread(connection.ping)
        except RedisError:
            return web.Response(status=503, text="redis unreachable\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get(HEALTH_PATH, healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
