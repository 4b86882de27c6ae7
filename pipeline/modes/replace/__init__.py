"""Replace mode: every face not kept becomes a synthetic person of the same gender and similar age.

Classical, no generative weights. Per face:

1. crop the face at a working scale (small faces are upscaled, large ones
   downscaled) and find dlib's 68 landmarks;
2. choose a donor from the pool (`donors.rank_donors`): same gender, nearest
   age, closest pose, expression and skin tone, no synthetic person twice in a
   photo while others of that gender are left;
3. warp the donor onto the target's landmarks (`warp.warp_piecewise`), give it
   the target's colour, light, resolution and grain (`colour`);
4. mask = feathered, eroded face region, minimum with the target's visible skin
   (hands, medical masks and hair in front of the face keep their pixels);
5. check anonymity with dlib's face descriptors (`identity`): the result must
   be at least `identity.MIN_DISTANCE` from the original and
   `identity.MIN_KEPT_DISTANCE` from every kept face, else the next donor is tried.

A face that is too small (`MIN_FACE_PX`), turned to profile, more than
`1 - MIN_VISIBLE_SKIN` covered, or whose donors all fail the check, is blurred
with `modes.blur.apply` instead, and its report says why.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pipeline.modes import FaceReport, ModeOutput, blur
from pipeline.modes.replace.colour import match_sharpness, skin_visibility, to_lab, transfer_colour
from pipeline.modes.replace.donors import Candidate, Target, median_skin_lab, rank_donors
from pipeline.modes.replace.identity import MIN_DISTANCE, MIN_KEPT_DISTANCE, closest_distance, describe_face, descriptor_distance
from pipeline.modes.replace.landmarks import (
    dlib_box_from_five, eye_band, face_features, face_outline, feature_mask, fill_polygon, find_landmarks68,
    landmark_disagreement, mirror_landmarks,
)
from pipeline.modes.replace.warp import warp_piecewise
from pipeline.regions import face_bounds, face_scale
from pipeline.types import Face

log = logging.getLogger(__name__)

MIN_FACE_PX = 24  # faces whose box is smaller than this (pixels) are blurred
WORK_FACE_PX = (128, 320)  # faces are resampled so their box side falls in this range
CROP_MARGIN = 0.45  # room around the face region in the work crop, as a fraction of the face size
MAX_YAW = 0.75  # beyond this (near profile) the 68-point fit and the warp are unreliable
MAX_LANDMARK_DISAGREEMENT = 0.35  # dlib vs detector five points, in eye-to-mouth distances
MIN_VISIBLE_SKIN = 0.55  # less visible skin than this in the face region counts as too occluded
ERODE = 0.05  # the face region is shrunk by this fraction of the face size ...
FEATHER = 0.06  # ... and its edge softened over this fraction
MAX_DONORS_TRIED = 6  # distinct synthetic people tried before falling back to blur


@dataclass(frozen=True)
class PreparedFace:
    """A face cut out at its working scale, with its dense landmarks."""

    crop: np.ndarray
    matrix: np.ndarray  # photo -> crop
    scale: float  # crop pixels per photo pixel
    points: np.ndarray  # 68×2 in crop pixels
    size_px: float  # face box side in crop pixels


def prepare_face(image: np.ndarray, face: Face, predictor) -> PreparedFace:
    """Cut the face out at a scale where landmarks and warps work, and fit 68 landmarks."""
    size = face_scale(face)
    scale = float(np.clip(size, *WORK_FACE_PX) / size)
    x1, y1, x2, y2 = face_bounds(face, (image.shape[1], image.shape[0]), margin=CROP_MARGIN * size)
    width, height = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
    region = image[y1:y2, x1:x2]
    crop = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    sx, sy = width / (x2 - x1), height / (y2 - y1)
    matrix = np.array([[sx, 0.0, -sx * x1], [0.0, sy, -sy * y1]])
    five = np.hstack([np.asarray(face.landmarks), np.ones((5, 1))]) @ matrix.T
    points = find_landmarks68(predictor, crop, dlib_box_from_five(five))
    return PreparedFace(crop, matrix, scale, points, size * scale)


def blend_mask(region: np.ndarray, visible: np.ndarray, face_px: float) -> np.ndarray:
    """The soft mask of new pixels: the eroded, feathered face region, minimum with the visible skin."""
    radius = max(1, int(round(ERODE * face_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(region, kernel)
    feathered = cv2.GaussianBlur(inner, (0, 0), max(1.0, FEATHER * face_px / 2))
    border = np.zeros_like(region)
    edge = max(2, radius)
    border[edge:-edge, edge:-edge] = 1.0
    return np.minimum.reduce([feathered, visible, border]).clip(0, 1).astype(np.float32)


def distinct_identities(candidates: list[Candidate], count: int) -> list[Candidate]:
    """The best candidate of each of the first `count` synthetic people, in rank order."""
    chosen, seen = [], set()
    for candidate in candidates:
        if candidate.donor.identity not in seen:
            seen.add(candidate.donor.identity)
            chosen.append(candidate)
    return chosen[:count]


@lru_cache(maxsize=96)
def read_donor_image(path: str, flip: bool) -> np.ndarray:
    """A pool crop as RGB, mirrored when asked (cached per process)."""
    image = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, ::-1]) if flip else image


class ReplaceChanger:
    """Replaces one photo's faces, remembering which donors it used and which faces are kept."""

    def __init__(self, image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models):
        self.image = image
        self.faces = tuple(faces)
        self.keep = frozenset(keep)
        self.models = models
        self.resources = models.replace.get()
        self.used_identities: Counter = Counter()
        self.used_images: Counter = Counter()
        self.reports: list[FaceReport] = []
        self._kept_descriptors: list[np.ndarray] | None = None

    def kept_descriptors(self) -> list[np.ndarray]:
        """Descriptors of the kept faces (computed once per photo, for faces large enough to describe)."""
        if self._kept_descriptors is None:
            self._kept_descriptors = []
            for face in self.faces:
                if face.number in self.keep and face_scale(face) >= MIN_FACE_PX:
                    kept = prepare_face(self.image, face, self.resources.predictor)
                    self._kept_descriptors.append(describe_face(self.resources.recognizer, kept.crop, kept.points))
        return self._kept_descriptors

    def fall_back(self, face: Face, reason: str, **details) -> ModeOutput:
        """Blur the face instead, and say why."""
        log.info("face %d blurred instead of replaced: %s", face.number, reason)
        self.reports.append(FaceReport(number=face.number, mode="blur", reason=reason, **details))
        return blur.apply(self.image, face, self.models.settings.blur_style)

    def apply(self, face: Face) -> ModeOutput:
        """Replace one face, or blur it when replacing it would not be safe or natural."""
        if face_scale(face) < MIN_FACE_PX:
            return self.fall_back(face, f"too small (under {MIN_FACE_PX} px)")
        resources = self.resources
        prepared = prepare_face(self.image, face, resources.predictor)
        crop, points, face_px = prepared.crop, prepared.points, prepared.size_px
        features = face_features(points)
        five = np.hstack([np.asarray(face.landmarks), np.ones((5, 1))]) @ prepared.matrix.T
        if abs(features.yaw) > MAX_YAW or landmark_disagreement(points, five) > MAX_LANDMARK_DISAGREEMENT:
            return self.fall_back(face, "turned too far from the camera for a reliable fit")
        shape = crop.shape[:2]
        region = fill_polygon(shape, face_outline(points))
        features_mask = feature_mask(shape, points, grow_px=0.03 * face_px)
        band = eye_band(shape, points)
        visible = skin_visibility(crop, band, features_mask, face_px)
        skin_area = region * (1 - features_mask)
        visible_share = float((visible * skin_area).sum() / max(skin_area.sum(), 1.0))
        if visible_share < MIN_VISIBLE_SKIN:
            return self.fall_back(face, f"too occluded ({visible_share:.0%} of the skin visible)")
        mask = blend_mask(region, visible, face_px)
        target_skin = skin_area * visible
        original = describe_face(resources.recognizer, crop, points)
        target = Target(
            gender=face.gender, age=face.age, features=features,
            skin_lab=median_skin_lab(to_lab(crop), band), size_px=features.size_px / prepared.scale,
        )
        candidates = rank_donors(resources.pool.donors, target, self.used_identities, self.used_images)
        best = None
        for candidate in distinct_identities(candidates, MAX_DONORS_TRIED):
            new_pixels = self.render_donor(candidate, crop, points, face_px, prepared.scale, skin_area, target_skin, band, face.number)
            composite = np.round(crop * (1 - mask[..., None]) + new_pixels * mask[..., None]).astype(np.uint8)
            descriptor = describe_face(resources.recognizer, composite, points)
            distance = descriptor_distance(descriptor, original)
            kept_distance = closest_distance(descriptor, self.kept_descriptors())
            if best is None or distance > best[1]:
                best = (candidate, distance, kept_distance)
            if distance >= MIN_DISTANCE and kept_distance >= MIN_KEPT_DISTANCE:
                self.used_identities[candidate.donor.identity] += 1
                self.used_images[candidate.key] += 1
                self.reports.append(
                    FaceReport(face.number, "replace", True, distance, kept_distance, candidate.donor.id + (" (mirrored)" if candidate.flip else ""))
                )
                return ModeOutput(crop=new_pixels, mask=mask, matrix=prepared.matrix)
        candidate, distance, kept_distance = best
        return self.fall_back(
            face, f"no donor far enough from the original (best {distance:.2f} < {MIN_DISTANCE}) and from kept faces (≥ {MIN_KEPT_DISTANCE})",
            passed=False, distance=distance, kept_distance=kept_distance,
        )

    def render_donor(
        self, candidate: Candidate, crop: np.ndarray, points: np.ndarray, face_px: float, scale: float,
        skin_area: np.ndarray, target_skin: np.ndarray, band: np.ndarray, seed: int,
    ) -> np.ndarray:
        """The donor warped onto the target, with the target's colour, light, resolution and grain."""
        donor_image = read_donor_image(str(self.resources.pool.image_path(candidate.donor)), candidate.flip)
        donor_points = np.asarray(candidate.donor.landmarks)
        if candidate.flip:
            donor_points = mirror_landmarks(donor_points, donor_image.shape[1])
        warped = warp_piecewise(donor_image, donor_points, points, (crop.shape[1], crop.shape[0]))
        coloured = transfer_colour(warped, crop, skin_area, target_skin, face_px)
        return match_sharpness(coloured, crop, band, scale, seed=seed)


def start(image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models) -> ReplaceChanger:
    """Begin replacing one photo's faces (loads replace mode's models on first use).

    Raises:
        ReplaceUnavailable: dlib, its model files or the donor pool are missing.
    """
    return ReplaceChanger(image, faces, keep, models)
