"""The one object that holds the loaded models, built once per process."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import weights
from pipeline.attributes import AgeGenderEstimator
from pipeline.config import PipelineSettings
from pipeline.detection import DETECTORS, FaceDetector
from pipeline.detection.verify import SecondOpinion
from pipeline.errors import PipelineError, WeightsError

if TYPE_CHECKING:
    from pipeline.modes.replace.resources import ReplaceResources
    from pipeline.modes.unmask.inpaint import TrainedUnmask

ALL_MODES = ("replace", "unmask", "blur")
GPU_DRIVERS = (Path("/proc/driver/nvidia"), Path("/dev/kfd"))  # NVIDIA's and AMD's (ROCm): without either, torch sees no GPU


@dataclass(frozen=True)
class Models:
    settings: PipelineSettings
    device: str
    detector: FaceDetector
    age_gender: AgeGenderEstimator
    second_opinion: SecondOpinion | None = None  # confirms the detector's faces; None when the detector is CenterFace
    replace: ReplaceResources | None = None  # replace mode's models, loaded on first use; None when not asked for
    unmask: TrainedUnmask | None = None  # unmask mode's own networks (weights/unmask.pt), loaded on first use; None when not asked for


def resolve_device(device: str = "auto") -> str:
    """`auto` becomes `cuda` when torch sees a GPU, else `cpu` (without importing torch where no GPU driver is loaded).

    Raises:
        PipelineError: CUDA was asked for and torch sees no GPU.
    """
    if device == "auto" and not any(driver.exists() for driver in GPU_DRIVERS):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineError(f"device {device} was asked for, but torch sees no CUDA GPU", "no_gpu")
    return device


def limit_cpu_threads(count: int) -> None:
    """Cap torch's, OpenCV's and our onnxruntime sessions' CPU threads; with N CPU workers on one machine, give each cores/N.

    torch is not imported for this: before it is, OMP_NUM_THREADS tells it (and child processes) the cap.
    """
    import cv2

    cv2.setNumThreads(count)
    torch = sys.modules.get("torch")  # None where a caller has blocked it
    if torch is not None:
        torch.set_num_threads(count)
    else:
        os.environ["OMP_NUM_THREADS"] = str(count)


def load_detector(name: str, weights_dir: Path, device: str = "cpu") -> FaceDetector:
    """The detector backend with manifest name `name`, its file found and verified in `weights_dir`."""
    if name not in DETECTORS:
        raise WeightsError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}", "unknown_model")
    return DETECTORS[name](weights.locate(name, weights_dir), device)


def load_models(settings: PipelineSettings, device: str = "auto", modes: Collection[str] = ALL_MODES) -> Models:
    """Load every model the pipeline needs for `modes` (detection always); slow, so call it once per process.

    Leaving replace and unmask out spares a blur-only command their imports (torch among them).

    Raises:
        WeightsError: a needed weight file is missing or does not match the manifest.
    """
    device = resolve_device(device)
    if settings.cpu_threads > 0:
        limit_cpu_threads(settings.cpu_threads)
    folder = settings.weights_path
    detector = load_detector(settings.detector, folder, device)
    age_gender = AgeGenderEstimator(
        weights.locate("age_gender_age", folder), weights.locate("age_gender_gender", folder), settings.cpu_threads
    )
    return Models(
        settings=settings,
        device=device,
        detector=detector,
        second_opinion=None if settings.detector == "centerface" else SecondOpinion(load_detector("centerface", folder)),
        age_gender=age_gender,
        replace=(
            replace_resources(folder, detector, device, age_gender, settings.identities)
            if "replace" in modes or "unmask" in modes
            else None
        ),
        unmask=trained_unmask(folder, device) if "unmask" in modes else None,
    )


def replace_resources(
    folder: Path, detector: FaceDetector, device: str, age_gender: AgeGenderEstimator, identities: int
) -> ReplaceResources:
    from pipeline.modes.replace.resources import ReplaceResources

    return ReplaceResources(folder, detector, device, age_gender=age_gender, identities=identities)


def trained_unmask(folder: Path, device: str) -> TrainedUnmask:
    from pipeline.modes.unmask.checkpoint import CHECKPOINT_FILE
    from pipeline.modes.unmask.inpaint import TrainedUnmask

    return TrainedUnmask(folder / CHECKPOINT_FILE, device)
