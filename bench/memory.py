"""Resident memory after start-up: the chat process (`python -m bot`) next to a worker (`python -m workers`).

Starts a private Redis, the tests' fake Bot API, one worker (CPU) and the bot with
both adapters (Telegram polling the fake API, the Kakao skill server on a free
port). Once the bot has started and the worker listens, prints each process's VmRSS.
The bot never runs a model, so it should stay far below the worker (target: < 100 MiB).

    .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds a queue.py that would shadow the standard library's queue module.
sys.path[:] = [str(ROOT), str(ROOT / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from fake_telegram import TOKEN, FakeTelegram  # noqa: E402
from workers.embedded_redis import EmbeddedRedis  # noqa: E402

# The worker start-up and RSS reading of the queue benchmark (bench/queue.py, loaded under another name).
_spec = importlib.util.spec_from_file_location("bench_queue", ROOT / "bench" / "queue.py")
bench_queue = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_queue)

SETTLE_SECONDS = 2.0
"""How long the bot runs after its start-up, before its memory is read."""
WAIT_SECONDS = 120  # hang protection only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def measure_bot_rss_mib(redis_url: str, log_dir: Path) -> float:
    """Start `python -m bot` against the fake Bot API and read its VmRSS once it has started."""
    async with FakeTelegram() as fake:
        environment = {
            **os.environ, "REDIS_URL": redis_url, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
        }
        kakao_port = free_port()
        environment.update(KAKAO_BOT_ID="bench", KAKAO_PORT=str(kakao_port), KAKAO_PUBLIC_URL=f"http://127.0.0.1:{kakao_port}")
        with (log_dir / "bot.log").open("wb") as log:
            bot = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while len(fake.calls_to("setMyCommands")) < 2:  # the command menus, set just before polling starts
                if bot.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bot did not start:\n" + (log_dir / "bot.log").read_text())
                await asyncio.sleep(0.1)
            await asyncio.sleep(SETTLE_SECONDS)
            return bench_queue.read_rss_mib(bot.pid)
        finally:
            bot.terminate()
            bot.wait(30)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        redis = EmbeddedRedis(Path(folder) / "redis")
        redis.start(timeout_seconds=10)
        worker = None
        try:
            bot_mib = asyncio.run(measure_bot_rss_mib(redis.url, Path(folder)))
            worker = bench_queue.start_worker(redis.url, "bench-memory", Path(folder))
            print(f"bot RSS after start-up: {bot_mib:.0f} MiB")
            print(f"worker RSS after start-up (models loaded): {bench_queue.read_rss_mib(worker.pid):.0f} MiB")
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            redis.stop()


if __name__ == "__main__":
    main()
