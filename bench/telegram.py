"""Telegram bot latency: photo update -> contact sheet sent, and "go" -> result sent.

Runs the real bot against the fake Bot API of the tests, a private Redis and one
worker process (CPU), with a ~12 MP photo (fr_two_people.jpg upscaled to
4000×3000, JPEG). Prints seconds for one user, then the median and the worst of
10 users who send at the same moment (they share the one worker).

    .venv/bin/python bench/telegram.py [--users 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds a queue.py that would shadow the standard library's queue module.
sys.path[:] = [str(ROOT), str(ROOT / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from PIL import Image  # noqa: E402
from rq import Queue, Worker  # noqa: E402

from bot.messages import text  # noqa: E402
from bot.session import Conversation, SessionStore  # noqa: E402
from bot.settings import BotConfig  # noqa: E402
from bot.telegram import build_application, start_receiving, stop_receiving  # noqa: E402
from fake_telegram import TOKEN, FakeTelegram, FakeUser, button_data  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from workers.client import PhotoJobs  # noqa: E402
from workers.connection import connect_redis  # noqa: E402
from workers.embedded_redis import EmbeddedRedis  # noqa: E402

QUEUE = "bench-telegram"
WAIT_SECONDS = 900  # hang protection only


def make_photo() -> bytes:
    image = Image.open(ROOT / "tests" / "data" / "fr_two_people.jpg").convert("RGB").resize((4000, 3000), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def start_worker(redis_url: str) -> subprocess.Popen:
    environment = {**os.environ, "REDIS_URL": redis_url, "WORKER_DEVICE": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers", "--queues", QUEUE, "--name", QUEUE], cwd=ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    queue = Queue(QUEUE, connection=connect_redis(redis_url))
    deadline = time.monotonic() + WAIT_SECONDS
    while QUEUE not in {worker.name for worker in Worker.all(queue=queue)}:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.2)
    return process


async def one_round(fake: FakeTelegram, users: list[FakeUser], photo: bytes) -> tuple[list[float], list[float]]:
    """All users send the photo at once, then press "hide all" and "go" at once: seconds to sheet, to result."""
    started = {}
    for user in users:
        started[user.id] = time.monotonic()
        fake.send_photo(user, photo, size=(4000, 3000), claimed_bytes=len(photo))
    sheets = {}
    for user in users:
        sheets[user.id] = await fake.wait_for(lambda: fake.sheets_to(user.id), "sheet", WAIT_SECONDS)
    to_sheet = [
        next(c.at for c in fake.calls_to("sendPhoto", user.id) if "reply_markup" in c.params) - started[user.id]
        for user in users
    ]
    for user in users:
        fake.press(user, sheets[user.id][0], button_data(sheets[user.id][0], text("button_change_all", "ko")))
    for user in users:
        await fake.wait_for(lambda: fake.calls_to("editMessageCaption", user.id), "hidden", WAIT_SECONDS)
    for user in users:
        started[user.id] = time.monotonic()
        fake.press(user, sheets[user.id][0], button_data(sheets[user.id][0], text("button_go", "ko")))
    to_result = []
    for user in users:
        [document] = await fake.wait_for(lambda: fake.calls_to("sendDocument", user.id), "result", WAIT_SECONDS)
        to_result.append(document.at - started[user.id])
    return to_sheet, to_result


async def run(redis_url: str, users: int) -> None:
    photo = make_photo()
    async with FakeTelegram() as fake:
        environ = {"REDIS_URL": redis_url, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url}
        config = load_config(environ=environ, schema=BotConfig)
        config = replace(config, workers=replace(config.workers, queues=(QUEUE,)))
        jobs = PhotoJobs(config)
        application = build_application(config, Conversation(jobs, SessionStore(jobs.connection, 3600)))
        async with application:
            await application.start()
            await start_receiving(application, config.telegram)
            await one_round(fake, [FakeUser(1)], photo)  # warm-up
            sheet, result = await one_round(fake, [FakeUser(2)], photo)
            print(f"photo_bytes {len(photo)}")
            print(f"one_user_sheet_s {sheet[0]:.2f}")
            print(f"one_user_result_s {result[0]:.2f}")
            sheet, result = await one_round(fake, [FakeUser(100 + n) for n in range(users)], photo)
            print(f"{users}_users_sheet_median_s {statistics.median(sheet):.2f}")
            print(f"{users}_users_sheet_worst_s {max(sheet):.2f}")
            print(f"{users}_users_result_median_s {statistics.median(result):.2f}")
            print(f"{users}_users_result_worst_s {max(result):.2f}")
            await stop_receiving(application)
            await application.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        redis = EmbeddedRedis(Path(directory))
        redis.start(timeout_seconds=10)
        worker = start_worker(redis.url)
        try:
            asyncio.run(run(redis.url, args.users))
        finally:
            worker.terminate()
            worker.wait(30)
            redis.stop()


if __name__ == "__main__":
    main()
