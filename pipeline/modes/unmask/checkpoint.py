"""Our checkpoint format for unmask mode's networks (`weights/unmask.pt` by default).

One file written by `torch.save`, holding only tensors and plain Python values
(dicts, lists, tuples, str, int, float, bool, None), so that it loads with
`torch.load(weights_only=True)` and nothing else: no code from the file ever runs.

    {"format": "photobot-unmask",
     "version": 1,
     "segmenter": {"config": {"width": 16, "levels": 4}, "state_dict": {name: tensor}},
     "inpainter": {"config": {"width": 32}, "state_dict": {name: tensor}},
     "train": {
         "step": 2000,                           # optimisation steps done
         "options": {"steps": 2000, "size": 128, "batch": 8, "lr": 0.0005, "seed": 0},  # the run's settings
         "optimizer_segmenter": {...},           # torch.optim.Adam.state_dict()
         "optimizer_inpainter": {...},
         "rng": {...},                           # numpy PCG64 state (bit_generator.state: str and int only)
         "data": {"folder": "...", "faces": 127},
         "metrics": {"mask_loss": 0.1, ...},     # losses of the last step
     }}

`config` rebuilds each network (`networks.build_segmenter` / `build_inpainter`)
and `state_dict` loads into it strictly; `train` is what `unmask train --resume`
needs to continue exactly where the run stopped. The file is written to a
temporary name beside its target and renamed, so a crash never leaves half a
checkpoint under the real name.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from pipeline.errors import CorruptWeights, MissingWeights
from pipeline.modes.unmask.networks import LowerFaceInpainter, MaskSegmenter, build_inpainter, build_segmenter, config_dict
from pipeline.networks.state_dict import load_strictly

FORMAT = "photobot-unmask"
VERSION = 1
CHECKPOINT_FILE = "unmask.pt"  # in the weights folder
TRAIN_COMMAND = ".venv/bin/python -m pipeline unmask train"
TRAIN_KEYS = ("step", "options", "optimizer_segmenter", "optimizer_inpainter", "rng", "data", "metrics")


def checkpoint_document(segmenter: MaskSegmenter, inpainter: LowerFaceInpainter, train: dict) -> dict:
    """The checkpoint's content (see the module docstring); tensors are copied to the CPU."""
    def network(module) -> dict:
        return {"config": config_dict(module), "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}}

    return {"format": FORMAT, "version": VERSION, "segmenter": network(segmenter), "inpainter": network(inpainter), "train": train}


def save_checkpoint(path: Path, document: dict) -> None:
    """Write `document` to `path` atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(document, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_checkpoint(path: Path) -> dict:
    """A checkpoint's content, loaded with `weights_only=True` and checked for format, version and keys.

    Raises:
        MissingWeights: no file at `path`.
        CorruptWeights: not one of our checkpoints, another version, truncated,
            or holding objects other than tensors and plain values.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(str(path), TRAIN_COMMAND)
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CorruptWeights(f"{path.name} was refused: it holds objects other than tensors and plain values") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise CorruptWeights(f"{path.name} is not a readable unmask checkpoint ({type(error).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CorruptWeights(f"{path.name} is not an unmask checkpoint (no format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise CorruptWeights(f"{path.name} is unmask checkpoint version {document.get('version')!r}; this version reads {VERSION}")
    for name in ("segmenter", "inpainter"):
        part = document.get(name)
        if not isinstance(part, dict) or not isinstance(part.get("config"), dict) or not isinstance(part.get("state_dict"), dict):
            raise CorruptWeights(f"{path.name}: its {name} lacks a config or a state_dict")
    train = document.get("train")
    if not isinstance(train, dict) or any(key not in train for key in TRAIN_KEYS):
        raise CorruptWeights(f"{path.name}: its train section lacks one of {', '.join(TRAIN_KEYS)}")
    return document


def build_networks(document: dict, name: str = CHECKPOINT_FILE) -> tuple[MaskSegmenter, LowerFaceInpainter]:
    """Both networks rebuilt from a checkpoint's configs, with its weights loaded strictly (on the CPU, in train mode).

    Raises:
        CorruptWeights: a config this code cannot build, or weights that do not fit it.
    """
    try:
        segmenter = build_segmenter(document["segmenter"]["config"])
        inpainter = build_inpainter(document["inpainter"]["config"])
    except (TypeError, ValueError) as error:
        raise CorruptWeights(f"{name}: unusable network config ({error})") from None
    load_strictly(segmenter, document["segmenter"]["state_dict"], f"{name} (segmenter)")
    load_strictly(inpainter, document["inpainter"]["state_dict"], f"{name} (inpainter)")
    return segmenter, inpainter
