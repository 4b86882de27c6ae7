"""Small shared helpers for the tests: test photos and the once-loaded models."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).parent / "data"
PROJECT_ROOT = Path(__file__).parent.parent
# Test photos with no human face: animals, objects, textures, sky and microscope photos (sources in data/MANIFEST.tsv)
PHOTOS_WITHOUT_FACES = (
    "scipy_raccoon.jpg", "skimage_chelsea.png", "skimage_coffee.png", "skimage_rocket.jpg",
    "skimage_brick.png", "skimage_clock_motion.png", "skimage_coins.png", "skimage_grass.png", "skimage_gravel.png",
    "skimage_hubble_deep_field.jpg", "skimage_ihc.png", "skimage_moon.png", "skimage_motorcycle_left.png",
    "skimage_retina.jpg", "sklearn_china.jpg", "sklearn_flower.jpg",
)


async def wait_until(predicate: Callable[[], Any], what: str, timeout_seconds: float) -> Any:
    """Poll `predicate` until it returns something truthy; the timeout is hang protection only."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def photo_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def photo_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


def ground_truth() -> dict:
    return json.loads((DATA / "ground_truth.json").read_text())


TEST_IDENTITIES = 24  # new identities the tests make (the default is 120: minutes to build); with 6, two of the masked crowd's three faces found no donor


@lru_cache(maxsize=2)
def cached_models(detector: str = "retinaface_mobilenet0.25", identities: int = TEST_IDENTITIES):
    """The pipeline's models, loaded once per test process (benchmarks ask for the configured identities)."""
    from dataclasses import replace

    from pipeline.config import load_config
    from pipeline.models import load_models

    settings = replace(load_config(environ={}).pipeline, detector=detector, identities=identities)
    return load_models(settings, "cpu")


def assert_content_credentials(data: bytes, edited_by_ai: bool) -> None:
    """The delivered file still carries its valid, signed C2PA manifest, AI-made or not as expected."""
    from pipeline.config import load_config
    from pipeline.provenance import AI_SOURCE_TYPE
    from pipeline.provenance.check import check_file

    report = check_file(data, load_config(environ={}).provenance)
    assert report["c2pa"]["valid"] and "c2pa.edited" in report["c2pa"]["actions"], report
    assert report["c2pa"]["digital_source_type"] == (AI_SOURCE_TYPE if edited_by_ai else None)


def run_pipeline(*args) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` as a user runs it: a subprocess in the project root."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess) -> None:
    """Bad input: exit 2, one line on stderr, no traceback, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
