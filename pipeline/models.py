"""The one object that holds the loaded models, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import weights
from pipeline.attributes import AgeGenderEstimator
from pipeline.config import PipelineSettings
from pipeline.detection import FaceDetector, create_detector


@dataclass(frozen=True)
class Models:
    settings: PipelineSettings
    device: str
    detector: FaceDetector
    age_gender: AgeGenderEstimator


def resolve_device(device: str = "auto") -> str:
    """`auto` becomes `cuda` when a GPU is present, else `cpu`."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_models(settings: PipelineSettings, device: str = "auto") -> Models:
    """Load every model the pipeline needs; slow, so call it once per process.

    Raises:
        WeightsError: a needed weight file is missing or does not match the manifest.
    """
    device = resolve_device(device)
    folder = settings.weights_path
    return Models(
        settings=settings,
        device=device,
        detector=create_detector(settings.detector, folder, device),
        age_gender=AgeGenderEstimator(weights.locate("age_gender_age", folder), weights.locate("age_gender_gender", folder)),
    )
