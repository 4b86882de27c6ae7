"""The one settings loader: config.yaml, then environment overrides, then checks.

config.yaml holds one section per part of the service, and each package owns the
classes of its own sections: `PipelineSettings` and `ProvenanceSettings` here, storage, redis and workers
in `workers.settings`, telegram and kakao in `bot.settings`. A section class
names its environment overrides (`ENVIRONMENT`) and the fields that may only come
from the environment (`SECRETS`). A package's config is a frozen dataclass of
sections that extends the one of the package below it (`PipelineConfig`, then
`workers.settings.WorkersConfig`, then `bot.settings.BotConfig`), so the bot's
config also works where the workers' is expected. `load_config(schema=...)` reads
any of them; each process loads its config once and passes the sections down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"

ConfigT = TypeVar("ConfigT")


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
    identities: int = 120  # new identities made from the donor pool for replace and unmask (once, cached beside the pool)

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        "detector": "PIPELINE_DETECTOR",
        "blur_style": "PIPELINE_BLUR_STYLE",
        "weights_dir": "PIPELINE_WEIGHTS_DIR",
        "cpu_threads": "PIPELINE_CPU_THREADS",
        "identities": "PIPELINE_IDENTITIES",
    }
    SECRETS: ClassVar[frozenset[str]] = frozenset()

    @property
    def weights_path(self) -> Path:
        """The weights folder; a relative path counts from the project root."""
        return PROJECT_ROOT / self.weights_dir


@dataclass(frozen=True)
class ProvenanceSettings:
    enabled: bool = True  # XMP, signed C2PA and the watermark on results (README "Honest results")
    state_dir: str = ".provenance"  # where the local signing CA is made on first use
    cert_file: str = ""  # the deployer's PEM certificate chain (leaf first); empty: the local CA
    key_file: str = ""  # the deployer's PEM private key (ES256), only from the environment

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        "enabled": "PROVENANCE_ENABLED",
        "state_dir": "PROVENANCE_STATE_DIR",
        "cert_file": "PROVENANCE_CERT",
        "key_file": "PROVENANCE_KEY",
    }
    SECRETS: ClassVar[frozenset[str]] = frozenset({"key_file"})

    @property
    def state_path(self) -> Path:
        """The state folder; a relative path counts from the project root."""
        return PROJECT_ROOT / self.state_dir


@dataclass(frozen=True)
class PipelineConfig:
    """The sections the image library reads."""

    pipeline: PipelineSettings = PipelineSettings()
    provenance: ProvenanceSettings = ProvenanceSettings()


def load_config(
    path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    schema: type[ConfigT] = PipelineConfig,
) -> ConfigT:
    """Read config.yaml, apply environment overrides and return a checked config.

    Args:
        path: the YAML file; `CONFIG_PATH` from the environment or config.yaml by default.
        environ: the environment to read overrides from; `os.environ` by default.
        schema: the config class to build: `PipelineConfig`, `WorkersConfig` or `BotConfig`.
            Sections the schema does not have are left to the processes that read them.

    Raises:
        ConfigError: a value has the wrong type, an unknown key is present, or a secret is in the file.
    """
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("CONFIG_PATH") or DEFAULT_CONFIG_PATH)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.exists() else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    config = schema()
    sections = {}
    for section_field in fields(schema):
        name = section_field.name
        defaults = getattr(config, name)
        values = dict(raw.get(name) or {})
        for key in values:
            if key in defaults.SECRETS:
                raise ConfigError(f"{name}.{key} is a secret: set it in the environment, not in {path.name}")
        for key, variable in defaults.ENVIRONMENT.items():
            if variable in environ:
                values[key] = environ[variable]
        sections[name] = _build_section(name, defaults, values)
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
