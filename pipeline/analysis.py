"""The pipeline's two entry points: analyse a photo, and process it in a mode."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.config import ProvenanceSettings
from pipeline.detection import detect_faces
from pipeline.detection.types import Detections
from pipeline.errors import InvalidSelection, PipelineError, UnknownMode
from pipeline.imageio import encode_photo, load_photo, suggest_format
from pipeline.models import Models
from pipeline.face.covering import mask_probability
from pipeline.modes import MODE_NAMES, blur, replace, unmask
from pipeline.paste import paste_back
from pipeline.provenance import Edit, mark_file, watermark_result
from pipeline.selection import choose_main_subjects, reading_order
from pipeline.sheet import render_contact_sheet, render_face_crops
from pipeline.types import Analysis, Face, FaceReport

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {"jpeg": "jpg", "png": "png"}
MODES = {"replace": replace, "unmask": unmask, "blur": blur}
"""Each mode's module, by the names of `MODE_NAMES`: `start(image, faces, keep, models) -> FaceChanger`, `unavailable_reason(models)`."""


@dataclass(frozen=True)
class Result:
    data: bytes = field(repr=False)
    content_type: str
    extension: str
    reports: tuple[FaceReport, ...] = ()  # what was done to each changed face


def find_faces(image: np.ndarray, models: Models) -> tuple[tuple[Face, ...], tuple[int, ...]]:
    """Detect, estimate age, gender and the chance of a face mask, and number the faces of an RGB photo.

    Returns:
        (faces in reading order numbered from 1, numbers of the main subjects to keep by default)
    """
    detections = confirmed_faces(image, models)
    detections = detections.subset(np.asarray(reading_order(detections.boxes), dtype=np.int64))
    attributes = models.age_gender.estimate(image, detections.landmarks)
    faces = tuple(
        Face(
            number=index + 1,
            box=tuple(float(v) for v in box),
            score=float(score),
            landmarks=tuple((float(x), float(y)) for x, y in points),
            gender=gender,
            gender_score=gender_score,
            age=age,
            mask=mask_probability(image, points),
        )
        for index, (box, score, points, (gender, gender_score, age)) in enumerate(
            zip(detections.boxes, detections.scores, detections.landmarks, attributes)
        )
    )
    sharpness = [face_sharpness(image, face) for face in faces]
    main = choose_main_subjects(detections.boxes, sharpness, (image.shape[1], image.shape[0]))
    return faces, tuple(sorted(faces[i].number for i in main))


def confirmed_faces(image: np.ndarray, models: Models) -> Detections:
    """The detector's faces in an RGB photo that the second opinion, where there is one, confirms."""
    settings = models.settings
    detections = detect_faces(image, models.detector, settings.detection_max_side, settings.detection_score)
    return detections if models.second_opinion is None else models.second_opinion.confirm(image, detections)


def face_sharpness(image: np.ndarray, face: Face) -> float:
    """Variance of the Laplacian over the face, resampled to 64×64: higher is sharper."""
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    crop = image[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
    gray = cv2.cvtColor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def analyze_photo(data: bytes, models: Models) -> Analysis:
    """Decode a photo, find its faces, draw the contact sheet and crop each face.

    Raises:
        PhotoError: the photo cannot be used.
    """
    image = load_photo(data, models.settings.max_pixels)
    faces, default_keep = find_faces(image, models)
    sheet = render_contact_sheet(image, faces, default_keep)
    return Analysis(image.shape[1], image.shape[0], faces, default_keep, sheet, render_face_crops(image, faces))


def available_modes(models: Models) -> dict[str, str | None]:
    """Each mode with None when it works, else why it does not (replace: checks its files, loads nothing big)."""
    return {name: mode_unavailable_reason(name, models) for name in MODE_NAMES}


def mode_unavailable_reason(mode: str, models: Models) -> str | None:
    """None when `mode` works, else why not; only the asked mode is checked, so blur never waits on replace's files."""
    if mode not in MODES:
        return f"unknown mode {mode!r}; choose one of {', '.join(MODE_NAMES)}"
    return MODES[mode].unavailable_reason(models)


def require_mode(mode: str, models: Models) -> None:
    """Raises UnknownMode, saying why, when `mode` cannot run."""
    reason = mode_unavailable_reason(mode, models)
    if reason is not None:
        raise UnknownMode(f"{mode}: {reason}" if mode in MODE_NAMES else reason, "mode_unavailable" if mode in MODE_NAMES else None)


def change_faces(image: np.ndarray, faces: Sequence[Face], keep: Collection[int], mode: str, models: Models) -> np.ndarray:
    """A copy of the photo with every face not in `keep` changed in `mode`; kept faces' pixels stay as they were."""
    return change_faces_reported(image, faces, keep, mode, models)[0]


def change_faces_reported(
    image: np.ndarray, faces: Sequence[Face], keep: Collection[int], mode: str, models: Models
) -> tuple[np.ndarray, list[FaceReport]]:
    """Like `change_faces`, also returning what was done to each changed face (replace may fall back to blur)."""
    require_mode(mode, models)
    numbers = {face.number for face in faces}
    unknown = sorted(set(keep) - numbers)
    if unknown:
        raise InvalidSelection(f"there is no face {unknown[0]}; the faces are numbered 1 to {len(faces)}")
    result = image.copy()
    protect = np.zeros(image.shape[:2], dtype=bool)
    for face in faces:
        if face.number in keep:
            x1, y1, x2, y2 = (int(round(v)) for v in face.box)
            protect[max(0, y1) : y2, max(0, x1) : x2] = True
    changer = MODES[mode].start(image, faces, keep, models)
    for face in sorted((f for f in faces if f.number not in keep), key=lambda f: f.width * f.height):
        paste_back(result, changer.apply(face), protect)
    return result, sorted(changer.reports, key=lambda report: report.number)


def process_photo(
    data: bytes, faces: Sequence[Face], keep: Collection[int], mode: str, models: Models,
    provenance: ProvenanceSettings = ProvenanceSettings(),
) -> Result:
    """Change every face not kept and encode the result without EXIF, PNG for PNG input, else JPEG, with its provenance marks.

    Raises:
        PipelineError: bad photo, unknown face number, or a mode that cannot run.
    """
    image = load_photo(data, models.settings.max_pixels)
    changed, reports = change_faces_reported(image, faces, keep, mode, models)
    fmt = suggest_format(data)
    return Result(encode_result(image, changed, reports, fmt, provenance), CONTENT_TYPES[fmt], EXTENSIONS[fmt], tuple(reports))


def encode_result(image: np.ndarray, changed: np.ndarray, reports: Sequence[FaceReport], fmt: str, provenance: ProvenanceSettings) -> bytes:
    """Encode a changed photo with the marks that say how it was made (pipeline/provenance); no EXIF or anything personal."""
    edit = Edit.from_modes({report.mode for report in reports})
    data = encode_photo(watermark_result(image, changed, edit, provenance), fmt)
    return mark_file(data, CONTENT_TYPES[fmt], edit, provenance)


__all__ = ["Analysis", "Result", "PipelineError", "analyze_photo", "process_photo", "encode_result", "available_modes", "find_faces", "change_faces", "change_faces_reported"]
