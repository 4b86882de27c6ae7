"""`python -m service`: the whole service in one command (`make run`).

- Without REDIS_URL it starts a private Redis (config.redis.embedded_dir, a
  unix socket, append-only persistence); with REDIS_URL it uses that one.
- It starts one worker process (`python -m workers`).
- When TELEGRAM_TOKEN or KAKAO_BOT_ID is set it starts the chat adapters
  (`python -m bot`) and runs until Ctrl-C or SIGTERM.
- Otherwise it runs a demo through the real queue on the bundled sample photo,
  writes out/demo_sheet.jpg and out/demo_blurred.jpg, and exits.

Children run in their own process groups, so Ctrl-C reaches only this process,
which then stops them in order, within 10 seconds (what Docker, systemd and
Kubernetes wait before they kill): the chat adapters, so that no new photo comes
in; the worker, which finishes its job or puts it back in the queue; Redis last,
which flushes its append-only file, so the queued job is there on the next start.
It sits above `bot`, `workers` and `pipeline`: it reads every config section to decide
what to start.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from bot.settings import BotConfig
from pipeline.config import PROJECT_ROOT, load_config

from workers.client import JobState, PhotoJobs
from workers.defaults import (
    ADAPTERS_STOP_TIMEOUT_SECONDS,
    DEMO_TIMEOUT_SECONDS,
    EMBEDDED_REDIS_START_TIMEOUT_SECONDS,
    REDIS_STOP_TIMEOUT_SECONDS,
    WORKER_STOP_TIMEOUT_SECONDS,
)
from workers.embedded_redis import EmbeddedRedis

logger = logging.getLogger("service")

DEMO_PHOTO = PROJECT_ROOT / "tests" / "data" / "kagglemask_maksssksksss148.jpg"
DEMO_OWNER = "demo:local"
DEMO_WAIT_STEP_SECONDS = 1.0
STOP_TIMEOUTS_SECONDS = {"worker": WORKER_STOP_TIMEOUT_SECONDS, "chat adapters": ADAPTERS_STOP_TIMEOUT_SECONDS}


class ServiceStopped(Exception):
    """SIGINT or SIGTERM asked the service to stop."""


class ChildExited(Exception):
    """A child process the service depends on exited by itself."""


def request_stop(signum: int, frame: object) -> None:
    raise ServiceStopped(signal.Signals(signum).name)


def start_child(name: str, arguments: list[str], environment: dict[str, str]) -> tuple[str, subprocess.Popen]:
    """Start `python ARGUMENTS` in the project root, in its own process group."""
    logger.info("starting %s", name)
    process = subprocess.Popen(
        [sys.executable, *arguments], cwd=PROJECT_ROOT, env=environment, process_group=0, stdin=subprocess.DEVNULL
    )
    return name, process


def stop_child(name: str, process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after the child's stop timeout (STOP_TIMEOUTS_SECONDS)."""
    if process.poll() is not None:
        return
    logger.info("stopping %s", name)
    process.terminate()
    timeout_seconds = STOP_TIMEOUTS_SECONDS[name]
    try:
        process.wait(timeout_seconds)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in %d s; killing it", name, timeout_seconds)
        process.kill()
        process.wait()


def check_children(children: list[tuple[str, subprocess.Popen]]) -> None:
    for name, process in children:
        if process.poll() is not None:
            raise ChildExited(f"{name} exited with status {process.returncode}")


def chat_adapters_configured(config: BotConfig) -> bool:
    return bool(config.telegram.token or config.kakao.bot_id)


def wait_for_job(jobs: PhotoJobs, photo_id: str, children: list[tuple[str, subprocess.Popen]]) -> None:
    """Wait for the demo photo's job, noticing a crashed worker instead of hanging."""
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = jobs.wait(DEMO_OWNER, photo_id, DEMO_WAIT_STEP_SECONDS)
        if status.state == JobState.FINISHED:
            return
        if status.state.is_done:
            raise RuntimeError(f"the demo job ended {status.state.value}: {status.error_message}")
        check_children(children)
    raise RuntimeError(f"the demo job did not finish within {DEMO_TIMEOUT_SECONDS} s")


def run_demo(config: BotConfig, children: list[tuple[str, subprocess.Popen]]) -> None:
    """Send the sample photo through the queue and write its sheet and blurred result."""
    jobs = PhotoJobs(config)
    photo_id = jobs.submit_photo(DEMO_OWNER, DEMO_PHOTO.read_bytes())
    wait_for_job(jobs, photo_id, children)
    analysis = jobs.get_analysis(DEMO_OWNER, photo_id)
    keep = analysis.default_keep
    out_dir = Path("out").resolve()
    out_dir.mkdir(exist_ok=True)
    sheet_path = out_dir / "demo_sheet.jpg"
    sheet_path.write_bytes(jobs.get_sheet(DEMO_OWNER, photo_id))
    jobs.submit_process(DEMO_OWNER, photo_id, keep, "blur")
    wait_for_job(jobs, photo_id, children)
    result = jobs.get_result(DEMO_OWNER, photo_id)
    result_path = out_dir / f"demo_blurred.{result.extension}"
    result_path.write_bytes(result.data)
    jobs.forget(DEMO_OWNER, photo_id)
    print(f"Found {len(analysis.faces)} faces in {DEMO_PHOTO.name}.")
    print(f"Contact sheet: {sheet_path}")
    kept = ", ".join(map(str, keep)) or "none"
    print(f"Kept the main subjects ({kept}), blurred the others: {result_path}")
    print("To chat with the bot, set TELEGRAM_TOKEN (Telegram) or KAKAO_BOT_ID (Kakao) and run `make run` again.")


def run_service(config: BotConfig, environment: dict[str, str], children: list[tuple[str, subprocess.Popen]]) -> None:
    children.append(start_child("worker", ["-m", "workers"], environment))
    if chat_adapters_configured(config):
        children.append(start_child("chat adapters", ["-m", "bot"], environment))
        logger.info("running; Ctrl-C stops")
        while True:
            check_children(children)
            time.sleep(1)
    run_demo(config, children)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    config = load_config(schema=BotConfig)
    environment = dict(os.environ)
    embedded_redis = None
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        if not config.redis.url:
            embedded_dir = PROJECT_ROOT / config.redis.embedded_dir
            embedded_redis = EmbeddedRedis(embedded_dir)
            embedded_redis.start(EMBEDDED_REDIS_START_TIMEOUT_SECONDS)
            environment["REDIS_URL"] = embedded_redis.url
            config = replace(config, redis=replace(config.redis, url=embedded_redis.url))
        run_service(config, environment, children)
        return 0
    except ServiceStopped as stop:
        logger.info("%s received, stopping", stop)
        return 0
    except (ChildExited, RuntimeError) as error:
        logger.error("%s", error)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(children):
            stop_child(name, process)
        if embedded_redis is not None:
            embedded_redis.stop(REDIS_STOP_TIMEOUT_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
