"""Training data for unmask mode: clean aligned faces, and (masked, clean, mask) triples made from them.

`collect_faces` finds every usable face in a folder of photos (our detector,
dlib's 68 landmarks), skips profiles, tiny faces and faces that already wear a
mask, and aligns each to one template so the lower face sits in the same place
in every sample. `make_triple` draws a synthetic mask on a sample and augments
the pair with albumentations, identically for both images and the mask, so
outside the mask the masked image is exactly the clean one.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import albumentations as A
import cv2
import numpy as np

from pipeline.align import transform_points, warp_antialiased
from pipeline.detection import detect_faces
from pipeline.errors import PhotoError
from pipeline.imageio import load_photo
from pipeline.face.landmarks import (
    dlib_box_from_five, eye_ratio, eye_to_mouth, face_features, find_landmarks68, landmark_disagreement,
)
from pipeline.face.pool import MAX_DISAGREEMENT, MIN_EYE_RATIO
from pipeline.face.covering import mask_probability
from pipeline.face.crop import sample_matrix
from pipeline.types import MASKED_THRESHOLD
from pipeline.offline.synthesis import synthesise_mask

log = logging.getLogger(__name__)

TRAIN_SIZE = 128  # side of an aligned training face
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_EYE_TO_MOUTH_PX = 24.0  # smaller faces have too little detail to learn from
MAX_YAW = 0.5  # dlib's yaw estimate beyond this is too far turned for a mask drawn from the landmarks


@dataclass(frozen=True)
class FaceSample:
    """One clean face, aligned."""

    face: np.ndarray  # TRAIN_SIZE×TRAIN_SIZE×3 uint8 RGB, aligned
    points68: np.ndarray  # 68×2 float, in the sample's pixels
    source: str = ""  # the photo it came from
    box: tuple[float, float, float, float] | None = None  # the detector's box of the face in that photo


@dataclass(frozen=True)
class TrainingTriple:
    masked: np.ndarray  # size×size×3 uint8: the face wearing a synthetic mask
    clean: np.ndarray  # size×size×3 uint8: the same face without it
    mask: np.ndarray  # size×size float32: where the mask covers it (see `SyntheticMask.mask`)


def photo_files(folder: Path) -> list[Path]:
    """Every JPEG, PNG and WebP file under the folder, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def aligned_face(image: np.ndarray, points68: np.ndarray, size: int) -> FaceSample:
    """The face warped onto the template (a similarity on dlib's five points), with its landmarks moved along.

    A face much larger than the sample is not aliased (`warp_antialiased`).
    """
    matrix = sample_matrix(points68, size)
    return FaceSample(warp_antialiased(image, matrix, size), transform_points(points68, matrix))


def collect_faces(folder: Path, models, predictor, size: int = TRAIN_SIZE, limit: int | None = None) -> list[FaceSample]:
    """Every usable clean face in every photo under `folder`, aligned to size×size.

    Skipped: profiles (eye ratio, dlib's yaw), faces under MIN_EYE_TO_MOUTH_PX,
    faces where dlib's landmarks disagree with the detector, and faces our mask
    finder thinks already wear a mask (they are no clean target). Unreadable
    files are logged and skipped.

    Args:
        models: the pipeline's `Models` (its detector and detection settings are used).
        predictor: a `dlib.shape_predictor` for the 68-point model.
        limit: stop after this many faces.
    """
    settings = models.settings
    samples: list[FaceSample] = []
    skipped: Counter = Counter()
    for path in photo_files(folder):
        if limit is not None and len(samples) >= limit:
            break
        try:
            image = load_photo(path.read_bytes())
        except (PhotoError, OSError) as error:
            log.warning("skipping %s: %s", path, error)
            continue
        # No second pass at twice the size: the small faces it adds are below MIN_EYE_TO_MOUTH_PX anyway.
        detections = detect_faces(image, models.detector, settings.detection_max_side, settings.detection_score, upscale_below=0)
        for index in range(len(detections)):
            five = detections.landmarks[index]
            if eye_to_mouth(five) < MIN_EYE_TO_MOUTH_PX:
                skipped["too small"] += 1
            elif eye_ratio(five) < MIN_EYE_RATIO:
                skipped["profile"] += 1
            elif mask_probability(image, five) >= MASKED_THRESHOLD:
                skipped["masked"] += 1
            else:
                points = find_landmarks68(predictor, image, dlib_box_from_five(five))
                if abs(face_features(points).yaw) > MAX_YAW or landmark_disagreement(points, five) > MAX_DISAGREEMENT:
                    skipped["turned or landmarks lost"] += 1
                    continue
                sample = aligned_face(image, points, size)
                samples.append(FaceSample(sample.face, sample.points68, str(path), tuple(float(v) for v in detections.boxes[index])))
                if limit is not None and len(samples) >= limit:
                    break
    log.info("collected %d faces from %s; skipped: %s", len(samples), folder, dict(skipped) or "none")
    return samples


@lru_cache(maxsize=1)
def geometry_and_colour() -> A.Compose:
    """Small shifts, scales, rotations and flips, then brightness, contrast, hue and saturation.

    Every one moves or maps pixels the same way in both images and the mask
    (linear interpolation for all three), so where the mask is 0 the images stay equal.
    """
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.93, 1.07), translate_percent=(-0.04, 0.04), rotate=(-8, 8), interpolation=cv2.INTER_LINEAR,
                     mask_interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_REFLECT_101, p=0.8),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.6),
            A.HueSaturationValue(hue_shift_limit=6, sat_shift_limit=15, val_shift_limit=0, p=0.5),
            A.RandomGamma(gamma_limit=(85, 115), p=0.3),
        ],
        additional_targets={"clean": "image"},
    )


@lru_cache(maxsize=1)
def softening() -> A.Compose:
    """Blur or lost resolution, applied to the mask too (as an image), so it spreads as far as the images' difference."""
    return A.Compose(
        [
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=0, sigma_limit=(0.4, 1.2)),
                    A.Downscale(scale_range=(0.5, 0.85), interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
                    A.MotionBlur(blur_limit=(3, 5)),
                ],
                p=0.35,
            )
        ],
        additional_targets={"clean": "image", "cover": "image"},
    )


@lru_cache(maxsize=1)
def grain_and_compression() -> A.Compose:
    """Sensor noise (one noise map for both images) and JPEG compression."""
    return A.Compose(
        [A.GaussNoise(std_range=(0.01, 0.04), p=0.3), A.ImageCompression(quality_range=(40, 95), p=0.5)],
        additional_targets={"clean": "image"},
    )


def seeded(pipeline: A.Compose, seed) -> A.Compose:
    """The pipeline with its random state set from `seed` (pipelines are built once: building one costs more than running it)."""
    pipeline.set_random_seed(int(seed))
    return pipeline


def make_triple(sample: FaceSample, rng: np.random.Generator, augment: bool = True) -> TrainingTriple:
    """A synthetic mask drawn on the sample, both images and the mask augmented identically.

    JPEG works in 8×8 blocks, so it would carry the mask's change a few pixels
    outside it (and a downscaled mask loses values under 1/255); there the masked
    image takes the clean image's own pixels. Outside the mask the two images are
    therefore always exactly equal.
    """
    synthetic = synthesise_mask(sample.face, sample.points68, rng)
    if not augment:
        return TrainingTriple(synthetic.image, sample.face.copy(), synthetic.mask)
    seeds = rng.integers(0, 2**31, 3)
    moved = seeded(geometry_and_colour(), seeds[0])(image=synthetic.image, clean=sample.face, mask=synthetic.mask)
    softened = seeded(softening(), seeds[1])(image=moved["image"], clean=moved["clean"], cover=moved["mask"])
    degraded = seeded(grain_and_compression(), seeds[2])(image=softened["image"], clean=softened["clean"])
    mask = np.clip(softened["cover"], 0, 1).astype(np.float32)
    clean = degraded["clean"]
    masked = np.where(mask[..., None] > 0, degraded["image"], clean)
    return TrainingTriple(masked, clean, mask)
