"""Unmask mode (v1, classical): a masked face gets a plausible lower face; unmasked faces stay as they are.

Per face not kept:

1. find the covering (`face.covering.find_covering`): the mask probability and its
   pixels. Below `types.MASKED_THRESHOLD` the face is left pixel-identical
   and reported as "no mask";
2. cut the face out at replace mode's working scale and fit dlib's 68 points
   (`face.crop.prepare_face`); only the eyes and brows are trusted, the rest is
   under the mask;
3. choose a donor from replace mode's pool: same gender, nearest age, closest
   pose, a closed neutral mouth, no synthetic person twice in a photo;
4. estimate the hidden landmarks: the donor's whole 68-point shape is fitted
   with an affine transform to the target's visible eyes and brows plus the
   detector's five points (`transplant.fit_donor_shape`), then kept to a face's
   proportions and no wider than the person's head (`transplant.limit_to_head`);
   the donor is warped by that same transform, so its nose, mouth and chin land
   on the estimate, each half of it narrowed to the face's sides at the
   cheekbones (`transplant.face_sides`, `transplant.within_sides`);
5. give it the target's colour and light from the target's visible skin
   (between the eyes, the forehead, the cheeks under the eyes; `face.colour`);
   where the person's jaw line is wider than the donor's, the donor's skin is
   carried out to it; when replace mode has its published networks (SimSwap
   and ArcFace), harmonise the whole composited face with the identity swap,
   using the identity ArcFace embeds from the person's own (masked) face
   (`PublishedSwap.harmonise`), so the new lower face follows the person's
   upper face;
6. blend where the covering is, its notches filled and grown over its top edge
   and rims within the face's sides, off the eyes (`transplant.unmask_blend_mask`). The transplant ends
   at the photo's own pixels: blurred or sharpened to the face's own detail, the
   photo's grain added, and joined to the person's skin, neck and background by
   a membrane (gradient-domain blending, `transplant.membrane_join`), then
   feathered: never a hard edge, and nothing outside that region changes,
   harmonised or not.

A masked face whose lower face is behind a nearer face (its box and hair) is
left as it is: a new lower face would be painted over the other person. So is
one whose chin lies outside the photo: the mask would stay below a new strip
under the eyes.

No identity check runs: the lower face is a stranger's, the eyes are the
person's own. A masked face too small to fit landmarks is left unchanged and
reported so.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import replace

import cv2
import numpy as np

from pipeline.align import compose, transform_points, warp_antialiased
from pipeline.face.colour import match_sharpness, to_lab
from pipeline.face.texture import in_photo_pixels, matched_detail
from pipeline.face.covering import (
    Covering, covering_in_crop, face_frame, find_covering, mask_probability, reference_skin, skin_distance,
)
from pipeline.face.crop import MAX_YAW, MIN_EYE_RATIO, MIN_FACE_PX, PreparedFace, prepare_face, sample_matrix
from pipeline.face.donors import Donor, Target, donor_label, load_donor, median_skin_lab, rank_donors
from pipeline.face.landmarks import eye_band, eye_ratio, eye_to_mouth, face_features, five_from_68
from pipeline.modes.unmask.inpaint import UnmaskNetworks, holes_from_probabilities, inpaint_face, predict_masks
from pipeline.modes.unmask.transplant import (
    face_sides, filled_covering, grown_covering, membrane_join, render_lower_face, unmask_blend_mask,
)
from pipeline.paste import blend
from pipeline.regions import face_scale
from pipeline.types import MASKED_THRESHOLD, Face, FaceReport, ModeOutput

log = logging.getLogger(__name__)

NEUTRAL_SMILE = 0.8  # mouth width / eye distance of a closed, relaxed mouth: what donors are ranked against
NEUTRAL_MAX_MOUTH_OPEN = 0.05  # donors with the mouth open wider than this are used only when no other is left
NEUTRAL_MAX_SMILE = 0.9  # ... and those smiling wider than this
NEUTRAL_EXPRESSIONS = ("", "neutral")  # ... and those acting another expression on the openpeople sheet (a frown, ...)
SKIN_DEPTH = 0.2  # the target's colour reference ends this far below the eyes (eye-to-mouth distances)
UPPER_FACE = (-0.9, 0.3, 1.1)  # the upper face whose detail the new lower face gets: v from, v to, |u| below
CHEEKS = (0.3, 0.95, 0.12, 0.5)  # the cheeks under the eyes: |u| and v ranges (eye distances, eye-to-mouth distances)
CHIN_DEPTH = 0.7  # the chin lies about this far below the mouth (eye-to-mouth distances)
HAIR_HEIGHT = 0.4  # a face's hair reaches this share of its box's height above the box
BARE_FACE_FADE = 0.15  # beside a face without a mask the blend fades in over this share of its box side
MAX_HIDDEN_SHARE = 0.3  # a lower face more covered than this by a nearer face's box is left as it is


def neutral_donors(donors: Sequence[Donor]) -> list[Donor]:
    """The pool's clean-shaven donors with a closed, relaxed mouth and no acted expression, plus every donor of a
    gender that has none (what is under a mask is unknown: a beard pasted there looks false)."""
    neutral = [
        d for d in donors
        if d.mouth_open <= NEUTRAL_MAX_MOUTH_OPEN and d.smile <= NEUTRAL_MAX_SMILE and d.expression in NEUTRAL_EXPRESSIONS
        and d.facial_hair < 0.5
    ]
    genders = {d.gender for d in neutral}
    return neutral + [d for d in donors if d.gender not in genders]


def at_photo_edges(prepared: PreparedFace, photo_shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """Which sides of a work crop (left, top, right, bottom) are the photo's own edges (the crop is cut off there)."""
    x1, y1, width, height = prepared.photo_box()
    return x1 < 0.5, y1 < 0.5, x1 + width > photo_shape[1] - 0.5, y1 + height > photo_shape[0] - 0.5


def unchanged(crop_shape: tuple[int, int], matrix: np.ndarray) -> ModeOutput:
    """An output that changes nothing (its mask is zero everywhere)."""
    return ModeOutput(np.zeros((*crop_shape, 3), np.uint8), np.zeros(crop_shape, np.float32), matrix)


def own_skin(crop: np.ndarray, five: np.ndarray, band: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The target's own visible skin, for colour and light (h×w float32).

    The band between brows and nose (from dlib), the skin between the eyes and
    on the forehead (from the detector's points, in case dlib lost the face) and
    the cheeks under the eyes, where the covering leaves them, without pixels
    unlike the face's skin (hair, glasses).
    """
    frame = face_frame(crop.shape[:2], five)
    upper = np.maximum(band, reference_skin(frame)) * (frame.v < SKIN_DEPTH)
    cheeks = (np.abs(frame.u) > CHEEKS[0]) & (np.abs(frame.u) < CHEEKS[1]) & (frame.v > CHEEKS[2]) & (frame.v < CHEEKS[3])
    upper = np.maximum(upper, cheeks)
    upper *= 1 - cv2.dilate(covered, np.ones((5, 5), np.uint8))
    distance = skin_distance(to_lab(crop), reference_skin(frame))
    skin = upper * (distance < 0.7)
    return (skin if skin.sum() >= 8 else upper).astype(np.float32)


class UnmaskChanger:
    """Unmasks one photo's masked faces, remembering which synthetic people it used."""

    def __init__(self, image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models):
        self.image = image
        self.faces = tuple(faces)
        self.keep = frozenset(keep)
        self.resources = models.replace.get()
        self.trained = models.unmask
        self.used_identities: Counter = Counter()
        self.used_images: Counter = Counter()
        self.reports: list[FaceReport] = []
        # Faces without a mask stay pixel-identical, also where a masked neighbour's blend would reach them.
        self.bare_boxes = [
            face.box for face in self.faces
            if (face.mask if face.mask is not None else mask_probability(image, face.landmarks)) < MASKED_THRESHOLD
        ]

    def spare_bare_faces(self, mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The mask set to 0 over every face without a mask (its box, in crop pixels via `matrix`) and faded in
        beside it over `BARE_FACE_FADE` of that box: a blend cut off at the box left a hard straight edge by the face."""
        mask = mask.copy()
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        for x1, y1, x2, y2 in self.bare_boxes:
            x1, y1, x2, y2 = x1 - 1, y1 - 1, x2 + 1, y2 + 1  # a pixel more for interpolation
            corners = transform_points([[x1, y1], [x2, y1], [x1, y2], [x2, y2]], matrix)  # the crop may be rotated
            (cx1, cy1), (cx2, cy2) = np.floor(corners.min(axis=0)).astype(int), np.ceil(corners.max(axis=0)).astype(int)
            outside = np.ones(mask.shape, np.uint8)
            outside[max(0, cy1) : max(0, cy2), max(0, cx1) : max(0, cx2)] = 0
            if outside.all():
                continue
            fade = max(1.0, BARE_FACE_FADE * min(x2 - x1, y2 - y1) * scale)
            distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)  # 0 inside the box
            mask *= np.clip(distance / fade, 0.0, 1.0)
        return mask

    def hidden_behind_another_face(self, face: Face) -> bool:
        """Whether a larger (nearer) face's box covers much of this face's lower face: what looks like its mask there
        is the other person's hair or face, and a new lower face would be painted over them."""
        points = np.asarray(face.landmarks, dtype=np.float64)
        x1, x2 = points[:, 0].min(), points[:, 0].max()
        y1, y2 = points[2, 1], points[3:, 1].mean() + CHIN_DEPTH * eye_to_mouth(points)
        area = max((x2 - x1) * (y2 - y1), 1e-6)
        for other in self.faces:
            if other.number == face.number or face_scale(other) <= face_scale(face):
                continue
            ox1, oy1, ox2, oy2 = other.box
            oy1 -= HAIR_HEIGHT * (oy2 - oy1)  # the box stops at the forehead; the hair above hides faces behind it too
            overlap = max(0.0, min(x2, ox2) - max(x1, ox1)) * max(0.0, min(y2, oy2) - max(y1, oy1))
            if overlap / area > MAX_HIDDEN_SHARE:
                return True
        return False

    def chin_outside_photo(self, face: Face) -> bool:
        """Whether the face's chin lies outside the photo: most of its mask is cut off by the photo's edge, so only the
        strip under the eyes would change while the mask below it stays."""
        points = np.asarray(face.landmarks, dtype=np.float64)
        mouth = points[3:].mean(axis=0)
        chin = mouth + CHIN_DEPTH * (mouth - points[:2].mean(axis=0))
        height, width = self.image.shape[:2]
        return not (0 <= chin[0] <= width - 1 and 0 <= chin[1] <= height - 1)

    def leave(self, face: Face, covering: Covering, reason: str) -> ModeOutput:
        self.reports.append(FaceReport(number=face.number, mode="none", reason=reason))
        return unchanged(covering.pixels.shape, covering.matrix)

    def apply(self, face: Face) -> ModeOutput:
        """Give a masked face a lower face; leave a face without a mask exactly as it is."""
        covering = find_covering(self.image, face.landmarks)
        if not covering.masked:
            return self.leave(face, covering, f"no mask (probability {covering.probability:.2f})")
        if face_scale(face) < MIN_FACE_PX or covering.pixels.sum() == 0:
            reason = f"too small (under {MIN_FACE_PX} px)" if face_scale(face) < MIN_FACE_PX else "mask found, but not where it is"
            return self.leave(face, covering, reason)
        if self.hidden_behind_another_face(face):
            return self.leave(face, covering, "its lower face is behind another face")
        if self.chin_outside_photo(face):
            return self.leave(face, covering, "its lower face is outside the photo")
        prepared = prepare_face(self.image, face, self.resources.predictor)
        five = transform_points(face.landmarks, prepared.matrix)
        if abs(face_features(prepared.points).yaw) > MAX_YAW or eye_ratio(five) < MIN_EYE_RATIO:
            return self.leave(face, covering, "turned too far from the camera for a reliable fit")
        networks = self.trained.get() if self.trained is not None else None
        if networks is not None:
            return self.paint(face, covering, prepared, networks)
        return self.transplant(face, covering, prepared, five)

    def transplant(self, face: Face, covering: Covering, prepared: PreparedFace, five: np.ndarray) -> ModeOutput:
        """Path (b): the lower face of a synthetic donor, in the person's colour and light."""
        crop, points, face_px = prepared.crop, prepared.points, prepared.size_px
        shape = crop.shape[:2]
        band = eye_band(shape, points)
        seen = face_features(points)
        target = Target(
            gender=face.gender, age=face.age,
            features=replace(seen, mouth_open=0.0, smile=NEUTRAL_SMILE),
            skin_lab=median_skin_lab(to_lab(crop), band), size_px=seen.size_px / prepared.scale,
            facial_hair=0.0,  # unseen under the mask; donors are clean-shaven (`neutral_donors`)
        )
        candidates = rank_donors(neutral_donors(self.resources.pool.donors), target, self.used_identities, self.used_images)
        if not candidates:
            return self.leave(face, covering, "the donor pool is empty")
        candidate = candidates[0]
        donor_image, donor_points = load_donor(self.resources.pool, candidate)
        covered = filled_covering(covering_in_crop(covering, prepared.matrix, shape))
        visible = own_skin(crop, five, band, covered)
        sides = face_sides(points, five)
        rendered, _ = render_lower_face(donor_image, donor_points, crop, points, five, visible, covered, face_px, sides)
        self.used_identities[candidate.donor.identity] += 1
        self.used_images[candidate.key] += 1
        how = f"mask probability {covering.probability:.2f}"
        log.info("face %d unmasked with %s", face.number, candidate.donor.id)
        reference = visible if visible.sum() >= 0.5 * band.sum() else band
        mask = unmask_blend_mask(covered, five, face_px, sides, at_photo_edges(prepared, self.image.shape[:2]))
        rendered, how = self.harmonised(crop, rendered, mask, five, how)
        masked = grown_covering(covered, five, face_px, sides)
        return self.finish_in_photo(face, prepared, rendered, mask, masked, reference, how, donor_label(candidate))

    def finish_in_photo(self, face: Face, prepared: PreparedFace, rendered: np.ndarray, mask: np.ndarray,
                        masked: np.ndarray, reference: np.ndarray, how: str, donor: str) -> ModeOutput:
        """Path (b) ends at the photo's own pixels (`texture.in_photo_pixels`), where the upper face's sharpness and
        the photo's grain are matched and the new lower face is joined to the person's own skin by a membrane
        (`transplant.membrane_join`)."""
        base, matrix, new, (mask, masked) = in_photo_pixels(self.image, prepared, rendered, mask, masked)
        mask = self.spare_bare_faces(mask, matrix)
        frame = face_frame(base.shape[:2], np.asarray(face.landmarks) + matrix[:, 2])
        upper = (frame.v > UPPER_FACE[0]) & (frame.v < UPPER_FACE[1]) & (np.abs(frame.u) < UPPER_FACE[2]) & (masked < 0.5)
        new = matched_detail(new, base, mask, upper, seed=face.number)
        joined = membrane_join(base, new, mask, masked, frame.eye_to_mouth_px)
        self.reports.append(FaceReport(face.number, "unmask", donor=donor, reason=how))
        return ModeOutput(crop=joined, mask=mask, matrix=matrix)

    def harmonised(self, crop: np.ndarray, rendered: np.ndarray, mask: np.ndarray, five: np.ndarray, how: str) -> tuple[np.ndarray, str]:
        """With SimSwap, the person's own identity, embedded from the masked original, over the composited face."""
        swap = self.resources.swap
        if swap is None:
            return rendered, how
        return swap.harmonise(crop, blend(crop, rendered, mask), five), how + f"; harmonised by {swap.name}"

    def paint(self, face: Face, covering: Covering, prepared: PreparedFace, networks: UnmaskNetworks) -> ModeOutput:
        """Path (a): the trained networks paint the face under the covering, in the aligned frame they were trained in.

        The hole is the colour test's covering joined with the segmenter's, so a rim or
        loop that one of them misses is painted over too; it stays below the eyes.
        """
        to_sample = sample_matrix(prepared.points, networks.size)
        photo_to_sample = compose(to_sample, prepared.matrix)
        side = (networks.size, networks.size)
        sample = warp_antialiased(prepared.crop, to_sample, networks.size)  # as the training samples are cut
        points = transform_points(prepared.points, to_sample)
        five = five_from_68(points)
        sample_scale = float(np.hypot(to_sample[0, 0], to_sample[1, 0]))  # sample pixels per work-crop pixel
        face_px = prepared.size_px * sample_scale
        found = covering_in_crop(covering, photo_to_sample, side)
        segmented = holes_from_probabilities(predict_masks(networks, sample[None]))[0]
        covered = filled_covering(np.maximum(found, segmented))  # what either the colour test or the segmenter sees as mask
        mask = unmask_blend_mask(covered, five, face_px, face_sides(points, five))
        painted, _ = inpaint_face(networks, sample, (mask > 0).astype(np.float32))  # every pixel the blend will show
        band = eye_band(side, points)
        how = f"mask probability {covering.probability:.2f}; painted by the trained networks ({networks.step} steps)"
        scale = prepared.scale * sample_scale  # sample pixels per photo pixel
        return self.finish(face, sample, painted, mask, five, band, photo_to_sample, scale, how)

    def finish(self, face: Face, crop: np.ndarray, rendered: np.ndarray, mask: np.ndarray, five: np.ndarray,
               sharpness_reference: np.ndarray, matrix: np.ndarray, scale: float, how: str) -> ModeOutput:
        """Path (a): harmonise with the person's own identity when SimSwap is there, match the photo's grain, blend
        softly (`mask`: the blend mask over `crop`, spared beside bare faces here)."""
        mask = self.spare_bare_faces(mask, matrix)
        rendered, how = self.harmonised(crop, rendered, mask, five, how)
        rendered = match_sharpness(rendered, crop, sharpness_reference, scale, seed=face.number)
        self.reports.append(FaceReport(face.number, "unmask", reason=how))
        return ModeOutput(crop=rendered, mask=mask, matrix=matrix)


def start(image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models) -> UnmaskChanger:
    """Begin unmasking one photo's faces (loads replace mode's models and donor pool on first use).

    Raises:
        ReplaceUnavailable: dlib, its model files or the donor pool are missing.
    """
    return UnmaskChanger(image, faces, keep, models)


def unavailable_reason(models) -> str | None:
    """None when unmask mode can run, else why not: it needs replace mode's dlib files and donor pool (unmask transplants lower faces from that pool); checks files, loads nothing big."""
    return models.replace.unavailable_reason() if models.replace is not None else "replace mode's models are not loaded"
