"""The config sections of the chat adapters (telegram, kakao), loaded by `pipeline.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from workers.settings import WorkersConfig


@dataclass(frozen=True)
class TelegramSettings:
    base_url: str = "https://api.telegram.org/bot"
    file_url: str = ""  # empty: base_url with its trailing "/bot" replaced by "/file/bot"
    max_file_bytes: int = 20_000_000
    token: str = ""
    webhook_url: str = ""  # empty: long polling; else the public HTTPS URL Telegram posts updates to
    webhook_secret: str = ""  # required with webhook_url; only from the environment
    webhook_port: int = 8443  # where the bot serves the webhook (behind your HTTPS proxy)

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        "base_url": "TELEGRAM_API_BASE_URL",
        "file_url": "TELEGRAM_API_FILE_URL",
        "token": "TELEGRAM_TOKEN",
        "webhook_url": "TELEGRAM_WEBHOOK_URL",
        "webhook_secret": "TELEGRAM_WEBHOOK_SECRET",
        "webhook_port": "TELEGRAM_WEBHOOK_PORT",
    }
    SECRETS: ClassVar[frozenset[str]] = frozenset({"token", "webhook_secret"})

    @property
    def base_file_url(self) -> str:
        """The Bot API file download URL (before the token)."""
        if self.file_url:
            return self.file_url
        root = self.base_url[: -len("/bot")] if self.base_url.endswith("/bot") else self.base_url.rstrip("/")
        return f"{root}/file/bot"


@dataclass(frozen=True)
class KakaoSettings:
    bot_id: str = ""
    skill_path: str = "/kakao/skill"
    public_url: str = ""
    port: int = 8080
    callback: bool = True
    image_hosts: tuple[str, ...] = ("talk.kakaocdn.net", "k.kakaocdn.net", "dn-m.talk.kakao.com")
    callback_hosts: tuple[str, ...] = ("bot-api.kakao.com",)

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        "bot_id": "KAKAO_BOT_ID",
        "skill_path": "KAKAO_SKILL_PATH",
        "public_url": "KAKAO_PUBLIC_URL",
        "port": "KAKAO_PORT",
        "callback": "KAKAO_CALLBACK",
        "image_hosts": "KAKAO_IMAGE_HOSTS",
        "callback_hosts": "KAKAO_CALLBACK_HOSTS",
    }
    SECRETS: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class BotSettings:
    health_port: int = 0  # where the bot answers GET /healthz on 127.0.0.1; 0: not served

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {"health_port": "BOT_HEALTH_PORT"}
    SECRETS: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class BotConfig(WorkersConfig):
    """Every section: the bot talks to the queue and reads the chats' settings."""

    telegram: TelegramSettings = TelegramSettings()
    kakao: KakaoSettings = KakaoSettings()
    bot: BotSettings = BotSettings()
