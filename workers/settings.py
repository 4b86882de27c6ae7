"""The config sections the job queue reads (storage, redis, workers), loaded by `pipeline.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from pipeline.config import PipelineConfig


@dataclass(frozen=True)
class StorageSettings:
    ttl_seconds: int = 3600

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {"ttl_seconds": "STORAGE_TTL_SECONDS"}
    SECRETS: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    embedded_dir: str = ".redis"

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {"url": "REDIS_URL"}
    SECRETS: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class WorkerSettings:
    device: str = "auto"
    queues: tuple[str, ...] = ("default",)
    analyze_timeout_seconds: int = 120
    process_timeout_seconds: int = 300

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {"device": "WORKER_DEVICE"}
    SECRETS: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class WorkersConfig(PipelineConfig):
    """The pipeline's sections plus the queue's."""

    storage: StorageSettings = StorageSettings()
    redis: RedisSettings = RedisSettings()
    workers: WorkerSettings = WorkerSettings()
