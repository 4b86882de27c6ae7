"""The compose deployment against a fake Telegram Bot API: one photo, end to end.

Run by deploy/check.sh after the images are built (COMPOSE, REDIS_PASSWORD,
REDIS_PORT and BOT_HEALTH_PORT come from there). It serves the tests' fake Bot API
on 127.0.0.1, starts Redis, the bot and 2 workers with `compose up --scale
worker=2`, waits until both workers report healthy, sends a photo as a user,
changes every face in blur mode, waits for the result file, and prints what it
saw and how long the stop took.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "tests")]

from redis import Redis  # noqa: E402
from rq import Worker  # noqa: E402

from bot.messages import text  # noqa: E402
from fake_telegram import TOKEN, FakeTelegram, FakeUser, button_data  # noqa: E402
from helpers import photo_bytes  # noqa: E402

WORKERS = 2
WAIT_SECONDS = 600  # the first start loads the models


def compose(*arguments: str, environment: dict[str, str] | None = None) -> None:
    command = [*os.environ["COMPOSE"].split(), *arguments]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, **(environment or {})}, check=True)


async def main() -> None:
    user = FakeUser(424242, "en")
    redis = Redis(port=int(os.environ["REDIS_PORT"]), password=os.environ["REDIS_PASSWORD"])
    async with FakeTelegram() as fake:
        environment = {"TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url}
        compose("up", "-d", "--scale", f"worker={WORKERS}", "redis", "bot", "worker", environment=environment)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while len(Worker.all(connection=redis)) < WORKERS:
                if time.monotonic() > deadline:
                    raise AssertionError("the workers did not register")
                await asyncio.sleep(1)
            print(f"{WORKERS} workers registered in rq", flush=True)
            fake.send_photo(user, photo_bytes("fr_two_people.jpg"), size=(1126, 661))
            sheet = await fake.wait_for(lambda: fake.sheets_to(user.id) and fake.sheets_to(user.id)[-1], "the contact sheet", WAIT_SECONDS)
            fake.press(user, sheet, button_data(sheet, text("button_change_all", "en")))
            fake.press(user, sheet, button_data(sheet, text("button_go", "en")))
            [document] = await fake.wait_for(lambda: fake.calls_to("sendDocument", user.id), "the result", WAIT_SECONDS)
            print(f"result received: {len(document.files['document'])} bytes; refused Bot API calls: {len(fake.refused)}", flush=True)
        finally:
            started = time.monotonic()
            compose("stop", environment=environment)
            print(f"compose stop took {time.monotonic() - started:.1f} s", flush=True)
            compose("down", environment=environment)


if __name__ == "__main__":
    asyncio.run(main())
