"""Settings: config.yaml, environment overrides, secrets only from the environment."""

import pytest

from bot.settings import BotConfig
from pipeline.config import ConfigError, PipelineConfig, load_config
from workers.settings import WorkersConfig


def test_environment_overrides_the_file():
    config = load_config(environ={"REDIS_URL": "redis://example:6379/0", "KAKAO_CALLBACK": "off", "KAKAO_IMAGE_HOSTS": "127.0.0.1, localhost"}, schema=BotConfig)
    assert config.redis.url == "redis://example:6379/0"
    assert config.kakao.callback is False
    assert config.kakao.image_hosts == ("127.0.0.1", "localhost")
    assert load_config(environ={}, schema=BotConfig).telegram.base_url == "https://api.telegram.org/bot"


def test_token_in_the_file_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("telegram:\n  token: '123:abc'\n")
    with pytest.raises(ConfigError, match="secret"):
        load_config(path, environ={}, schema=BotConfig)


def test_bad_values_and_unknown_keys_are_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("storage:\n  ttl_seconds: soon\n")
    with pytest.raises(ConfigError, match="ttl_seconds"):
        load_config(path, environ={}, schema=BotConfig)
    path.write_text("storage:\n  ttl: 5\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_config(path, environ={}, schema=BotConfig)


def test_each_process_reads_only_the_sections_it_owns(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("pipeline:\n  blur_style: gaussian\nstorage:\n  ttl_seconds: 60\ntelegram:\n  webhook_port: soon\n")
    workers = load_config(path, environ={}, schema=WorkersConfig)  # a worker never reads the chat sections
    assert (workers.pipeline.blur_style, workers.storage.ttl_seconds) == ("gaussian", 60)
    assert not hasattr(workers, "telegram")
    with pytest.raises(ConfigError, match="webhook_port"):
        load_config(path, environ={}, schema=BotConfig)
    assert load_config(path, environ={}, schema=PipelineConfig).pipeline.blur_style == "gaussian"
