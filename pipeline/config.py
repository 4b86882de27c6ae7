"""The one settings loader: config.yaml, then environment overrides, then checks.

Every part of the service (pipeline, workers, bot) receives the frozen `Config`
this returns and passes the section it needs down explicitly. Secrets such as
the Telegram token are never read from the file, only from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


class ConfigError(ValueError):
    """config.yaml or an environment override holds an invalid value."""


@dataclass(frozen=True)
class PipelineSettings:
    detector: str = "retinaface_mobilenet0.25"
    detection_max_side: int = 1280
    detection_score: float = 0.6
    max_pixels: int = 40_000_000
    blur_style: str = "mosaic"
    weights_dir: str = "weights"
    cpu_threads: int = 0  # 0: all cores

    @property
    def weights_path(self) -> Path:
        """The weights folder; a relative path counts from the project root."""
        return PROJECT_ROOT / self.weights_dir


@dataclass(frozen=True)
class StorageSettings:
    ttl_seconds: int = 3600


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    embedded_dir: str = ".redis"


@dataclass(frozen=True)
class WorkerSettings:
    device: str = "auto"
    queues: tuple[str, ...] = ("default",)
    analyze_timeout_seconds: int = 120
    process_timeout_seconds: int = 300


@dataclass(frozen=True)
class TelegramSettings:
    base_url: str = "https://api.telegram.org/bot"
    file_url: str = ""  # empty: base_url with its trailing "/bot" replaced by "/file/bot"
    max_file_bytes: int = 20_000_000
    token: str = ""
    webhook_url: str = ""  # empty: long polling; else the public HTTPS URL Telegram posts updates to
    webhook_secret: str = ""  # required with webhook_url; only from the environment
    webhook_port: int = 8443  # where the bot serves the webhook (behind your HTTPS proxy)

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


@dataclass(frozen=True)
class BotSettings:
    health_port: int = 0  # where the bot answers GET /healthz on 127.0.0.1; 0: not served


@dataclass(frozen=True)
class Config:
    pipeline: PipelineSettings = PipelineSettings()
    storage: StorageSettings = StorageSettings()
    redis: RedisSettings = RedisSettings()
    workers: WorkerSettings = WorkerSettings()
    telegram: TelegramSettings = TelegramSettings()
    kakao: KakaoSettings = KakaoSettings()
    bot: BotSettings = BotSettings()


# (section, field) -> environment variable that overrides it.
ENVIRONMENT_OVERRIDES = {
    ("pipeline", "detector"): "PIPELINE_DETECTOR",
    ("pipeline", "blur_style"): "PIPELINE_BLUR_STYLE",
    ("pipeline", "weights_dir"): "PIPELINE_WEIGHTS_DIR",
    ("pipeline", "cpu_threads"): "PIPELINE_CPU_THREADS",
    ("storage", "ttl_seconds"): "STORAGE_TTL_SECONDS",
    ("redis", "url"): "REDIS_URL",
    ("workers", "device"): "WORKER_DEVICE",
    ("telegram", "base_url"): "TELEGRAM_API_BASE_URL",
    ("telegram", "file_url"): "TELEGRAM_API_FILE_URL",
    ("telegram", "token"): "TELEGRAM_TOKEN",
    ("telegram", "webhook_url"): "TELEGRAM_WEBHOOK_URL",
    ("telegram", "webhook_secret"): "TELEGRAM_WEBHOOK_SECRET",
    ("telegram", "webhook_port"): "TELEGRAM_WEBHOOK_PORT",
    ("kakao", "bot_id"): "KAKAO_BOT_ID",
    ("kakao", "skill_path"): "KAKAO_SKILL_PATH",
    ("kakao", "public_url"): "KAKAO_PUBLIC_URL",
    ("kakao", "port"): "KAKAO_PORT",
    ("kakao", "callback"): "KAKAO_CALLBACK",
    ("kakao", "image_hosts"): "KAKAO_IMAGE_HOSTS",
    ("kakao", "callback_hosts"): "KAKAO_CALLBACK_HOSTS",
    ("bot", "health_port"): "BOT_HEALTH_PORT",
}
SECRET_FIELDS = {("telegram", "token"), ("telegram", "webhook_secret")}


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read config.yaml, apply environment overrides and return a checked `Config`.

    Args:
        path: the YAML file; `CONFIG_PATH` from the environment or config.yaml by default.
        environ: the environment to read overrides from; `os.environ` by default.

    Raises:
        ConfigError: a value has the wrong type or an unknown key is present.
    """
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("CONFIG_PATH") or DEFAULT_CONFIG_PATH)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.exists() else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    config = Config()
    sections = {}
    for section_field in fields(Config):
        name = section_field.name
        section_defaults = getattr(config, name)
        values = dict(raw.get(name) or {})
        for key in values:
            if (name, key) in SECRET_FIELDS:
                raise ConfigError(f"{name}.{key} is a secret: set it in the environment, not in {path.name}")
        for (env_section, key), variable in ENVIRONMENT_OVERRIDES.items():
            if env_section == name and variable in environ:
                values[key] = environ[variable]
        sections[name] = _build_section(name, section_defaults, values)
    return replace(config, **sections)


def _build_section(name: str, defaults: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(defaults)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting {name}.{sorted(unknown)[0]}")
    converted = {key: _convert(f"{name}.{key}", getattr(defaults, key), value) for key, value in values.items()}
    return replace(defaults, **converted)


def _convert(label: str, default: Any, value: Any) -> Any:
    """Coerce a YAML or environment value to the type of the field's default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.strip().lower() in ("1", "true", "yes", "on"):
                    return True
                if value.strip().lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            return tuple(str(item) for item in value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return "" if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{label} has an invalid value {value!r}") from None
