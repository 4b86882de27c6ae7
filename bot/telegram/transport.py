"""How requests reach Telegram: flood limits, per-user ordering, edits that may change nothing."""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta

from telegram import Update
from telegram.error import BadRequest, RetryAfter
from telegram.ext import BaseRateLimiter, BaseUpdateProcessor
from telegram.warnings import PTBDeprecationWarning

logger = logging.getLogger(__name__)

MAX_RETRIES_AFTER_FLOOD = 3
"""How many times one request is sent again after a 429 (RetryAfter)."""


class RetryAfterLimiter(BaseRateLimiter[int]):
    """Honour Telegram's flood limits: on a 429 wait `retry_after` seconds, then send again.

    Unlike PTB's `AIORateLimiter` this needs no extra package and does not throttle
    ahead of time; it only reacts to Telegram's answer, so no message is lost.
    """

    def __init__(self, max_retries: int = MAX_RETRIES_AFTER_FLOOD):
        self.max_retries = max_retries

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        max_retries = self.max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(max_retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == max_retries:
                    raise
                delay_seconds = retry_after_seconds(error)
                logger.warning("flood limit on %s: sending again in %.1f s", endpoint, delay_seconds)
                await asyncio.sleep(delay_seconds)
        raise AssertionError("unreachable")


def retry_after_seconds(error: RetryAfter) -> float:
    """How long Telegram asks us to wait, whether PTB gives it as int or timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)  # the int form is deprecated in v22.2
        delay = error.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Different users' updates run concurrently; one user's run one at a time, in order."""

    def __init__(self, max_concurrent_updates: int = 64):
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    async def do_process_update(self, update, coroutine) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await coroutine
            return
        lock, waiting = self._locks.setdefault(user.id, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                await coroutine
        finally:
            waiting[0] -= 1
            if waiting[0] == 0:
                del self._locks[user.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


async def edit_quietly(edit) -> None:
    """Run an edit; "message is not modified" (same content) is not an error."""
    try:
        await edit
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise
