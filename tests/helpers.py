"""Small shared helpers for the tests: test photos and the once-loaded models."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).parent / "data"
PROJECT_ROOT = Path(__file__).parent.parent


def photo_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def photo_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


def ground_truth() -> dict:
    return json.loads((DATA / "ground_truth.json").read_text())


@lru_cache(maxsize=2)
def cached_models(detector: str = "retinaface_mobilenet0.25"):
    """The pipeline's models, loaded once per test process."""
    from dataclasses import replace

    from pipeline import load_config, load_models

    settings = replace(load_config(environ={}).pipeline, detector=detector)
    return load_models(settings, "cpu")
