"""Build the donor pool from the `openpeople` package (10 synthetic people, MIT), once, and cache it.

Each person's studio portrait, selfie, expression sheet and face-angle sheet are
searched with our own detector; every usable face gets dlib's 68 landmarks, is
aligned into a square crop and indexed by gender, age, pose, expression and
skin tone (see `donors.py` for the format). The pool is written to a temporary
folder and renamed into place, so two workers building at once never see half
a pool. Other sources (`offline/generated.py`) add donors with `add_donors`, which keeps
the pool's donors and replaces its index in one rename.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.align import transform_points, warp_face
from pipeline.detection import FaceDetector, detect_faces
from pipeline.face.colour import to_lab
from pipeline.face.donors import Donor, DonorPool, facial_hair, median_skin_lab, read_pool, write_pool_index
from pipeline.face.landmarks import (
    dlib_box_from_five, eye_band, eye_ratio, face_features, find_landmarks68, five_from_68, landmark_disagreement,
)

log = logging.getLogger(__name__)

OPENPEOPLE_PACKAGE = "openpeople"
OPENPEOPLE_VERSION = "0.1.2"
OPENPEOPLE_ASSETS = ("studio_portrait.jpg", "amateur_selfie.jpg", "emotions_sheet.jpg", "character_sheet.jpg")
CROP_SIZE = 384  # side of a pool crop in pixels
CROP_PADDING = 0.55  # room around dlib's unit face in a crop (keeps forehead, jaw and the warp's frame ring)
MIN_SCORE = 0.8  # detector score a donor face needs
MIN_SIZE_PX = 24.0  # eye-to-mouth distance a donor face needs, in its picture
MAX_YAW = 0.6  # profiles are skipped: the 68-point model and the warp need both eyes
DETECTION_MAX_SIDE = 2400  # search sheets at full size: their faces are small
MIN_EYE_RATIO = 0.8  # five-point eye distance / eye-to-mouth below this is a profile view
MAX_DISAGREEMENT = 0.25  # dlib's fit vs the detector's five points, in eye-to-mouth distances
SINGLE_FACE_ASSETS = ("studio_portrait.jpg", "amateur_selfie.jpg")  # one person: keep the largest face only
# The expression sheet is a 4×4 grid in the same order for everyone; these cells
# have a hand on the face, closed eyes or a tongue out, and are not used.
EMOTION_GRID = (
    ("neutral", "happy", "sad", "angry"),
    ("surprised", "disgusted", "scared", "confused"),
    ("smug", "flirty", "thoughtful", "pensive"),
    ("exhausted", "shocked", "playful", "determined"),
)
SKIPPED_EMOTIONS = {"thoughtful", "exhausted", "shocked", "playful", "flirty"}


class PoolUnavailable(RuntimeError):
    """No donor pool is built and the package to build one is missing."""


class UnusableFace(ValueError):
    """A detected face that cannot be a donor; the message says why in a few words."""


def openpeople_folder() -> Path | None:
    """The installed openpeople package's curated data folder, without importing it (it needs pydantic)."""
    import importlib.util

    spec = importlib.util.find_spec(OPENPEOPLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "data" / "curated"
    return folder if folder.is_dir() else None


def load_or_build_pool(folder: Path, detector: FaceDetector, predictor) -> DonorPool:
    """The pool in `folder`, built first if it is not there (logged with its duration).

    Raises:
        PoolUnavailable: no pool and no openpeople package to build one from.
    """
    try:
        return read_pool(folder)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        pass
    source = openpeople_folder()
    if source is None:
        raise PoolUnavailable(f"no donor pool in {folder} and the {OPENPEOPLE_PACKAGE} package is not installed")
    started = time.monotonic()
    log.warning("building the donor pool in %s from %s (once; takes a minute or two)", folder, OPENPEOPLE_PACKAGE)
    build_pool(folder, source, detector, predictor)
    pool = read_pool(folder)
    log.warning("donor pool built: %d faces of %d people in %.1f s", len(pool.donors), len({d.identity for d in pool.donors}), time.monotonic() - started)
    return pool


def build_pool(folder: Path, source: Path, detector: FaceDetector, predictor) -> None:
    """Write a fresh pool from openpeople's curated folder into `folder`.

    An old pool's openpeople donors are replaced; its donors from other sources (generated ones) are kept.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a container's worker user must read a mounted pool
    try:
        (staging / "faces").mkdir()
        donors: list[Donor] = []
        for person in sorted(p for p in source.iterdir() if (p / "metadata.json").is_file()):
            donors.extend(index_person(person, staging, detector, predictor))
        sources = {OPENPEOPLE_PACKAGE: {"version": OPENPEOPLE_VERSION, "license": "MIT", "people": len({d.identity for d in donors})}}
        with pool_lock(folder):
            others, other_sources = donors_of_other_sources(folder, staging)
            write_pool_index(staging, donors + others, {**sources, **other_sources})
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.replace(staging, folder)
            except OSError:  # another process renamed its own pool into place first
                pass
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def donors_of_other_sources(folder: Path, staging: Path) -> tuple[list[Donor], dict]:
    """The donors of the pool at `folder` that are not from openpeople, and their `sources` entries.

    Their crops are copied into staging/faces. No readable pool: none.
    """
    try:
        old = read_pool(folder)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        return [], {}
    kept = [d for d in old.donors if not d.source.startswith(OPENPEOPLE_PACKAGE + "==") and old.image_path(d).is_file()]
    for donor in kept:
        shutil.copy2(old.image_path(donor), staging / donor.file)
    return kept, {name: entry for name, entry in old.sources.items() if name != OPENPEOPLE_PACKAGE}


def add_donors(folder: Path, staging: Path, donors: list[Donor], sources: dict) -> DonorPool:
    """Add donors whose crops lie in staging/faces to the pool in `folder`, keeping the pool's donors.

    The crops are moved in first (under names no index uses yet), then the index is
    replaced in one rename: a reader sees the old pool or the new one, never a mix.
    A lock beside the pool keeps two builders from dropping each other's donors;
    a donor whose id is already in the pool is left out.

    Args:
        folder: the pool (created when missing).
        staging: a folder on the same file system holding `faces/<id>.jpg` of `donors`.
        donors: the new entries.
        sources: entries for the index's `sources`, by source name (replacing ones of the same name).

    Returns:
        The pool as written.
    """
    folder = Path(folder)
    (folder / "faces").mkdir(parents=True, exist_ok=True)
    with pool_lock(folder):
        current = read_pool(folder) if (folder / "index.json").is_file() else DonorPool(folder, ())
        known = {donor.id for donor in current.donors}
        added = [donor for donor in donors if donor.id not in known]
        for donor in added:
            os.replace(staging / donor.file, folder / donor.file)
        write_pool_index(staging, [*current.donors, *added], {**current.sources, **sources})
        os.replace(staging / "index.json", folder / "index.json")
    return read_pool(folder)


@contextmanager
def pool_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the pool, held through a file beside it (the pool folder itself may be replaced)."""
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def person_demographics(metadata: dict) -> tuple[str, float]:
    """(gender, age) from an openpeople metadata.json: sex and the middle of its age range."""
    demographics = metadata["character_details"]["demographics"]
    low, high = (float(v) for v in str(demographics["age_range"]).split("-"))
    sex = str(demographics["sex"]).lower()
    return ("female" if sex.startswith("f") else "male"), (low + high) / 2


def index_person(person: Path, staging: Path, detector: FaceDetector, predictor) -> list[Donor]:
    """Every usable face of one openpeople person, cropped into staging/faces."""
    gender, age = person_demographics(json.loads((person / "metadata.json").read_text(encoding="utf-8")))
    donors = []
    for asset in OPENPEOPLE_ASSETS:
        path = person / "assets" / asset
        if not path.is_file():
            continue
        image = np.asarray(Image.open(path).convert("RGB"))
        detections = detect_faces(image, detector, max_side=DETECTION_MAX_SIDE, score_threshold=MIN_SCORE)
        order = np.argsort(-(detections.boxes[:, 2] - detections.boxes[:, 0]))
        if asset in SINGLE_FACE_ASSETS:
            order = order[:1]
        for number in order:
            landmarks5, box = detections.landmarks[number], detections.boxes[number]
            expression = emotion_at(box, image.shape) if asset == "emotions_sheet.jpg" else ""
            if expression in SKIPPED_EMOTIONS:
                continue
            try:
                points = fit_donor_face(image, landmarks5, predictor)
            except UnusableFace:
                continue
            donors.append(
                save_donor(
                    image,
                    points,
                    staging,
                    donor_id=f"op-{person.name}-{path.stem}-{number:02d}",
                    identity=f"openpeople:{person.name}",
                    source=f"{OPENPEOPLE_PACKAGE}=={OPENPEOPLE_VERSION}:{person.name}/assets/{asset}",
                    gender=gender,
                    age=age,
                    expression=expression,
                )
            )
    return donors


def fit_donor_face(image: np.ndarray, landmarks5: np.ndarray, predictor) -> np.ndarray:
    """dlib's 68 landmarks of a detected face that can be a donor.

    Raises:
        UnusableFace: the face is in profile, too small, turned too far, or dlib's
            fit disagrees with the detector's five points.
    """
    if eye_ratio(landmarks5) < MIN_EYE_RATIO:
        raise UnusableFace("profile")
    points = find_landmarks68(predictor, image, dlib_box_from_five(landmarks5))
    features = face_features(points)
    if features.size_px < MIN_SIZE_PX:
        raise UnusableFace("too small")
    if abs(features.yaw) > MAX_YAW:
        raise UnusableFace("turned away")
    if landmark_disagreement(points, landmarks5) > MAX_DISAGREEMENT:
        raise UnusableFace("landmarks disagree")
    return points


def save_donor(image: np.ndarray, points68: np.ndarray, staging: Path, donor_id: str, identity: str, source: str,
               gender: str, age: float, expression: str) -> Donor:  # fmt: skip
    """Align the face into staging/faces/<donor_id>.jpg and return its index entry."""
    crop, crop_points = align_crop(image, points68)
    band = eye_band(crop.shape[:2], crop_points)
    cv2.imwrite(str(staging / "faces" / f"{donor_id}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 93])
    aligned = face_features(crop_points)
    lab = to_lab(crop)
    skin_lab = median_skin_lab(lab, band)
    return Donor(
        id=donor_id,
        identity=identity,
        source=source,
        file=f"faces/{donor_id}.jpg",
        gender=gender,
        age=age,
        landmarks=tuple((float(x), float(y)) for x, y in crop_points),
        yaw=aligned.yaw,
        roll_degrees=aligned.roll_degrees,
        mouth_open=aligned.mouth_open,
        smile=aligned.smile,
        eyes_open=aligned.eyes_open,
        facial_hair=facial_hair(lab, crop_points, skin_lab),
        expression=expression,
        skin_lab=skin_lab,
        size_px=face_features(points68).size_px,
    )


def emotion_at(box: np.ndarray, shape: tuple[int, ...]) -> str:
    """The expression sheet cell a face box's centre falls in."""
    height, width = shape[:2]
    column = int(np.clip((box[0] + box[2]) / 2 / width * 4, 0, 3))
    row = int(np.clip((box[1] + box[3]) / 2 / height * 4, 0, 3))
    return EMOTION_GRID[row][column]


def align_crop(image: np.ndarray, points68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An upright CROP_SIZE² crop around the face, and the 68 landmarks in its pixels."""
    crop, matrix = warp_face(image, five_from_68(points68), "dlib_chip", CROP_SIZE, CROP_PADDING)
    return crop, transform_points(points68, matrix)
