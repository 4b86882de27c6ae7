"""Replace mode: every face not kept becomes a synthetic person of the same gender and similar age.

Two backends, chosen automatically from the weights folder (`published.choose_backend`;
the choice is logged once and named in each replaced face's report):

- **published** when SimSwap and its ArcFace are present (BiSeNet optional): the
  screening, donor choice and fallbacks below stay, but the generator puts the
  donor's ArcFace identity on the face itself (`published.PublishedSwap`), the
  mask is the face pixels both BiSeNet parses agree on (else the classical
  mask of step 4), and ArcFace joins dlib in the anonymity check;
- **classical** otherwise, with no generative weights. Per face:

1. crop the face at a working scale (small faces are upscaled, large ones
   downscaled) and find dlib's 68 landmarks;
2. choose a donor from the pool (`face.donors.rank_donors`): same gender, nearest
   age, closest pose, expression and skin tone, no full beard on a man without
   one, no synthetic person twice in a photo while others of that gender are left;
3. turn the donor to the target's head pose (`turn.turned_donor`: a frontal donor
   warped flat onto a turned face squeezed its far cheek into a sliver), warp it onto the target's jaw line with its own inner features placed
   over the target's, its lids and lips closed as far as the target's
   (`expression`: closed and downcast eyes stay so, a straight mouth gets no
   grin's teeth), pulled towards the target's where the warp would
   fold (`warp.donor_layout`, `warp.unfolded_layout`, `warp.warp_piecewise`);
   give it the target's colour and light (`face.colour`; along its edge the target's own, `edge_matched_light`),
   its irises the person's own darkness and colour
   (`colour.darkened_eyes`), then, in the photo's own pixels, the
   person's own detail and the photo's grain (`face.texture`);
4. mask = feathered, eroded face region, raised to 1 over the features of both
   faces (`cover_features`: a feature half-shown at the soft edge beside the
   other face's showed twice), minimum with the target's visible skin
   (hands, medical masks and hair in front of the face keep their pixels; a face
   mask is found by the toolkit's mask finder, `face.covering`: `face_mask_cover`, and stays: the
   face above it, which identifies the person, is replaced);
5. check anonymity with dlib's face descriptors (`identity`): the result must
   be at least `identity.MIN_DISTANCE` (`identity.MASKED_MIN_DISTANCE` for a masked face) from the original and
   `identity.MIN_KEPT_DISTANCE` from every kept face (and, with SimSwap, below
   `identity.MAX_SIMILARITY` in ArcFace), else the next donor is tried.

A face that is too small (`MIN_FACE_PX`), turned to profile, more than
`1 - MIN_VISIBLE_SKIN` covered (above a face mask: the skin around the eyes; or whose mask leaves under
`MIN_UNMASKED_SKIN` of its skin), or whose donors all fail the check, is blurred with `face.blur.blur_face`
instead, and its report says why.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace as with_fields
from functools import partial
from itertools import zip_longest

import cv2
import numpy as np

from pipeline.align import compose, estimate_similarity, transform_points
from pipeline.face.blur import blur_face
from pipeline.face.colour import darkened_eyes, edge_matched_light, skin_visibility, to_lab, transfer_colour
from pipeline.face.covering import covering_in_crop, find_covering
from pipeline.face.crop import MAX_YAW, MIN_EYE_RATIO, MIN_FACE_PX, PreparedFace, prepare_face
from pipeline.face.texture import in_photo_pixels, matched_detail, photo_region
from pipeline.face.donors import Candidate, Target, beard, donor_label, facial_hair, load_donor, median_skin_lab, rank_donors
from pipeline.modes.replace.expression import matched_expression
from pipeline.modes.replace.identity import IdentityCheck, closest_distance, closest_similarity, describe_face, descriptor_distance
from pipeline.face.landmarks import (
    LEFT_EYE, RIGHT_EYE, eye_band, eye_disagreement, eye_ratio, eye_to_mouth, face_features, face_outline, feature_mask,
    fill_polygon, five_from_68, landmark_disagreement,
)
from pipeline.modes.replace.turn import turned_donor
from pipeline.modes.replace.warp import donor_layout, unfolded_layout, warp_piecewise
from pipeline.paste import blend
from pipeline.regions import face_bounds, face_mask, face_scale
from pipeline.types import Face, FaceReport, ModeOutput

log = logging.getLogger(__name__)

MAX_LANDMARK_DISAGREEMENT = 0.35  # dlib vs detector five points, in eye-to-mouth distances
MAX_MASKED_EYE_OFFSET = 0.4  # dlib's eyes this far from the detector's on a masked face (eye-to-mouth distances): a collapsed fit
MIN_VISIBLE_SKIN = 0.55  # less visible skin than this in the face region (around the eyes above a face mask) is too occluded
MIN_UNMASKED_SKIN = 0.1  # a face mask leaving less of the face's skin than this leaves too little to replace
ERODE = 0.05  # the face region is shrunk by this fraction of the face size ...
FEATHER = 0.06  # ... and its edge softened over this fraction
FEATURE_GROW = 0.03  # eyes, brows and lips are taken this fraction of the face size beyond their outline (never skin)
FEATURE_MARGIN = 0.06  # the features' cover reaches this fraction of the face size beyond their outline
MASK_RIM = 0.04  # a face mask's pixels are grown by this fraction of the face size before they are kept
CORE = 0.9  # new pixels' detail is matched to the person's own where the mask is above this
EYE_SOFTEN = 0.01  # the eyes' weights are softened by this fraction of the face size (`eyes_mask`)
MAX_DONORS_TRIED = 6  # donors tried before blurring (classical: each person once, then other crops; ~0.14 s each)
# ... classically above a face mask, where only the eyes show: on the test photos 9 in 10 donors failed the check
# there (nearly half of them under 0.6 from a pool person), 1 in 2 on bare faces, and the masked runner (kagglemask
# 264 #7) was blurred after six, a 49 px masked face (kagglemask 52 #34) passed with its 23rd. Most pass within seven;
# a face none fits costs ~0.12 s a try. (A SimSwap round costs seconds per face on a CPU: that path keeps six.)
MAX_MASKED_DONORS_TRIED = 24
CLASSICAL = "classical warp"  # the backend named in reports when no published networks are used


def blend_mask(region: np.ndarray, visible: np.ndarray, face_px: float) -> np.ndarray:
    """The soft mask of new pixels: the eroded, feathered face region, minimum with the visible skin."""
    radius = max(1, int(round(ERODE * face_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(region, kernel)
    feathered = cv2.GaussianBlur(inner, (0, 0), max(1.0, FEATHER * face_px / 2))
    return np.minimum.reduce([feathered, visible, crop_border(region.shape, radius)]).clip(0, 1).astype(np.float32)


def crop_border(shape: tuple[int, int], radius: int) -> np.ndarray:
    """1 inside the crop, 0 on a rim of max(2, radius) pixels: new pixels never reach the crop's edge."""
    border = np.zeros(shape, dtype=np.float32)
    edge = max(2, radius)
    border[edge:-edge, edge:-edge] = 1.0
    return border


def cover_features(mask: np.ndarray, visible: np.ndarray, face_px: float, *point_sets: np.ndarray) -> np.ndarray:
    """`mask` raised to 1 over the brows, eyes, nose and mouth of every 68-point set, where the face is visible.

    On a turned face the target's nose, or the donor's far eye, fell in the mask's
    soft edge: half of it showed beside the other face's, a feature seen twice.
    """
    cover = np.zeros_like(mask)
    for points in point_sets:
        cover = np.maximum(cover, fill_polygon(mask.shape, np.asarray(points)[17:]))
    radius = max(1, int(round(FEATURE_MARGIN * face_px)))
    cover = cv2.dilate(cover, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    cover = cv2.GaussianBlur(cover, (0, 0), max(1.0, radius / 2))
    cover = np.minimum.reduce([cover, visible, crop_border(mask.shape, int(round(ERODE * face_px)))])
    return np.maximum(mask, cover).astype(np.float32)


def face_mask_cover(image: np.ndarray, face: Face, prepared: PreparedFace) -> np.ndarray | None:
    """The pixels of a face mask the face wears, over its work crop, slightly grown; None without one.

    The skin colour test alone only half sees a pale mask (a white or light green
    mask is close to skin in chroma), and it always lets the lips through: the
    donor's mouth and beard were painted, half transparent, over the mask.
    """
    if face.mask is not None and not face.wears_mask:
        return None
    covering = find_covering(image, face.landmarks)
    if not covering.masked:
        return None
    covered = covering_in_crop(covering, prepared.matrix, prepared.crop.shape[:2])
    radius = max(1, int(round(MASK_RIM * prepared.size_px)))
    return cv2.dilate((covered > 0.2).astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))


def eyes_held_to_detector(prepared: PreparedFace, five: np.ndarray) -> PreparedFace:
    """`prepared` with dlib's 68 points turned, scaled and moved so their eye centres are the detector's (`five`, in
    the work crop), when they are more than `MAX_MASKED_EYE_OFFSET` off.

    Under a cap and a face mask dlib fitted the whole face onto the mask (kagglemask 148 #5: its eyes on the mask's
    top edge, 0.45 from the detector's; on the other masked test faces 0.33 at most): the eye band measured no skin,
    and a plainly visible face was blurred as covered.
    """
    if eye_disagreement(prepared.points, five) <= MAX_MASKED_EYE_OFFSET:
        return prepared
    onto_eyes = estimate_similarity(five_from_68(prepared.points)[:2], five[:2])  # exact for two points
    return with_fields(prepared, points=transform_points(prepared.points, onto_eyes))


def eyes_mask(shape: tuple[int, int], points: np.ndarray, face_px: float) -> np.ndarray:
    """Float32 weights over both eyes (their lid outlines), softened by `EYE_SOFTEN` of the face size."""
    points = np.asarray(points, dtype=np.float64)
    eyes = np.maximum(fill_polygon(shape, points[LEFT_EYE]), fill_polygon(shape, points[RIGHT_EYE]))
    return cv2.GaussianBlur(eyes, (0, 0), max(0.5, EYE_SOFTEN * face_px))


def donor_attempts(candidates: list[Candidate], count: int) -> list[Candidate]:
    """Up to `count` donors to try: the best crop of each synthetic person in rank order, then each one's second best, ...

    With few people of a gender in the pool, another crop of someone already
    tried (another expression, or mirrored) can still pass the anonymity check.
    """
    by_identity: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_identity.setdefault(candidate.donor.identity, []).append(candidate)
    rounds = zip_longest(*by_identity.values())
    return [candidate for round_ in rounds for candidate in round_ if candidate is not None][:count]


@dataclass(frozen=True)
class ScreenedFace:
    """A face that can be replaced, with what both paths need: its work crop, donor target, classical mask, dlib identity."""

    face: Face
    prepared: PreparedFace
    target: Target
    mask: np.ndarray  # the classical blend mask over the work crop
    skin_area: np.ndarray  # face region without eyes, brows and lips
    target_skin: np.ndarray  # ... where the face's own skin is visible
    visible: np.ndarray  # where the face itself shows (its skin and features), not something in front of it
    region: np.ndarray  # the whole face region, where sharpness is compared
    descriptor: np.ndarray  # dlib descriptor of the original
    mask_cover: np.ndarray | None  # the face mask it wears, which stays (only the face above it is replaced); None without

    @property
    def masked(self) -> bool:
        return self.mask_cover is not None


@dataclass
class SwapJob:
    """One face going through the published swap's donor rounds."""

    screened: ScreenedFace
    crop: np.ndarray  # the target aligned for the generator (S×S×3)
    matrix: np.ndarray  # photo -> aligned crop
    work_to_crop: np.ndarray  # work crop -> aligned crop
    region: np.ndarray  # the face's own region in the aligned crop (keeps the parse off neighbouring faces)
    face_px: float  # eye-to-mouth distance in the aligned crop
    identity: np.ndarray | None = None  # ArcFace embedding of the original
    parse: np.ndarray | None = None  # BiSeNet's face pixels of the original; None without BiSeNet
    tried: set = field(default_factory=set)  # synthetic people tried so far
    candidate: Candidate | None = None  # this round's donor
    best: IdentityCheck | None = None  # the safest donor's check, for the fallback's report
    output: ModeOutput | None = None


class ReplaceChanger:
    """Replaces one photo's faces, remembering which donors it used and which faces are kept.

    With the published networks (`ReplaceModels.swap`) the faces to change are
    swapped together on the first `apply` (each network runs once per donor
    round on all of them); otherwise each face is warped classically.
    """

    def __init__(self, image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models):
        self.image = image
        self.faces = tuple(faces)
        self.keep = frozenset(keep)
        self.models = models
        self.resources = models.replace.get()
        self.swap = self.resources.swap
        self.used_identities: Counter = Counter()
        self.used_images: Counter = Counter()
        self.reports: list[FaceReport] = []
        self.swapped: dict[int, ModeOutput] = {}  # published path: outputs computed ahead for the faces not yet applied
        self._kept_descriptors: list[np.ndarray] | None = None
        self.kept_identities = np.zeros((0, 512), np.float32)  # ArcFace embeddings of the kept faces (published path)

    def kept_faces(self) -> list[Face]:
        """The kept faces large enough to recognise."""
        return [face for face in self.faces if face.number in self.keep and face_scale(face) >= MIN_FACE_PX]

    def kept_descriptors(self) -> list[np.ndarray]:
        """dlib descriptors of the kept faces (computed once per photo)."""
        if self._kept_descriptors is None:
            self._kept_descriptors = []
            for face in self.kept_faces():
                kept = prepare_face(self.image, face, self.resources.predictor)
                self._kept_descriptors.append(describe_face(self.resources.recognizer, kept.crop, kept.points))
        return self._kept_descriptors

    def fall_back(self, face: Face, reason: str, **details) -> ModeOutput:
        """Blur the face instead, and say why."""
        log.info("face %d blurred instead of replaced: %s", face.number, reason)
        self.reports.append(FaceReport(number=face.number, mode="blur", reason=reason, **details))
        return blur_face(self.image, face, self.models.settings.blur_style)

    def fall_back_unmatched(self, face: Face, best: IdentityCheck | None, backend: str) -> ModeOutput:
        """Blur a face none of whose donors passed the anonymity check (or that had no donor at all)."""
        if best is None:
            return self.fall_back(face, "the donor pool has nobody to offer")
        reason = f"no donor far enough from the original and from kept faces with the {backend}; best: {best.describe()}"
        return self.fall_back(face, reason, passed=False, distance=best.distance, kept_distance=best.kept_distance)

    def accept(self, face: Face, candidate: Candidate, check: IdentityCheck, how: str) -> None:
        """Report a replaced face: its donor, distances, and the backend that made it (`how`)."""
        self.reports.append(
            FaceReport(face.number, "replace", True, check.distance, check.kept_distance, donor_label(candidate), reason=how)
        )

    def check_identity(self, composite: np.ndarray, points: np.ndarray, screened: ScreenedFace, **arcface) -> IdentityCheck:
        """The anonymity check of a replaced work crop whose 68 landmarks are `points` (dlib), plus ArcFace's similarities when given."""
        descriptor = describe_face(self.resources.recognizer, composite, points)
        return IdentityCheck(
            descriptor_distance(descriptor, screened.descriptor), closest_distance(descriptor, self.kept_descriptors()), **arcface,
            pool_distance=closest_distance(descriptor, self.resources.pool_people),
            masked=screened.masked,
        )

    def screen(self, face: Face) -> ScreenedFace | ModeOutput:
        """What replacing the face needs, or its blurred fallback when it is too small, turned away or covered."""
        if face_scale(face) < MIN_FACE_PX:
            return self.fall_back(face, f"too small (under {MIN_FACE_PX} px)")
        prepared = prepare_face(self.image, face, self.resources.predictor)
        five = transform_points(face.landmarks, prepared.matrix)
        if face.wears_mask:
            prepared = eyes_held_to_detector(prepared, five)
        crop, points, face_px = prepared.crop, prepared.points, prepared.size_px
        features = face_features(points)
        if abs(features.yaw) > MAX_YAW or landmark_disagreement(points, five) > MAX_LANDMARK_DISAGREEMENT:
            return self.fall_back(face, "turned too far from the camera for a reliable fit")
        shape = crop.shape[:2]
        region = fill_polygon(shape, face_outline(points))
        features_mask = feature_mask(shape, points, grow_px=FEATURE_GROW * face_px)
        band = eye_band(shape, points)
        mask_cover = face_mask_cover(self.image, face, prepared)
        if mask_cover is not None and eye_ratio(np.asarray(face.landmarks)) < MIN_EYE_RATIO:
            # dlib's yaw is a guess under a mask: the detector's eyes tell a profile (the donor's far eye was drawn
            # beside the head)
            return self.fall_back(face, "turned too far from the camera for a reliable fit")
        if mask_cover is None:
            visible = skin_visibility(crop, band, features_mask, face_px)
        else:  # the skin's colour is taken above the mask (which may ride up into the band)
            visible = skin_visibility(crop, band * (1 - mask_cover), features_mask, face_px)
            visible = visible * (1 - cv2.GaussianBlur(mask_cover, (0, 0), max(1.0, 0.02 * face_px)))
        skin_area = region * (1 - features_mask)
        if mask_cover is not None:
            # The mask stays, and the face it leaves is replaced: the eyes and the skin around them identify a masked
            # person, so that skin must show. A cap or hair over the forehead keeps its pixels (the blend mask is the
            # minimum with the visible skin).
            unmasked_share = float((skin_area * (1 - mask_cover)).sum() / max(skin_area.sum(), 1.0))
            around_eyes = band * (1 - mask_cover)
            visible_share = float((visible * around_eyes).sum() / max(around_eyes.sum(), 1.0))
            if unmasked_share < MIN_UNMASKED_SKIN:
                reason = f"too covered: the face mask leaves {unmasked_share:.0%} of the face's skin (needs {MIN_UNMASKED_SKIN:.0%})"
                return self.fall_back(face, reason)
            if visible_share < MIN_VISIBLE_SKIN:
                return self.fall_back(face, f"too covered: a face mask, and {visible_share:.0%} of the skin around the eyes visible")
        else:
            visible_share = float((visible * skin_area).sum() / max(skin_area.sum(), 1.0))
            if visible_share < MIN_VISIBLE_SKIN:
                return self.fall_back(face, f"too covered by something in front of it ({visible_share:.0%} of the skin visible)")
        lab = to_lab(crop)
        skin_lab = median_skin_lab(lab, band)
        target = Target(
            gender=face.gender, age=face.age, features=features, skin_lab=skin_lab,
            size_px=features.size_px / prepared.scale, facial_hair=facial_hair(lab, points, skin_lab),
            beard=None if mask_cover is not None else beard(lab, points, skin_lab),
        )
        descriptor = describe_face(self.resources.recognizer, crop, points)
        return ScreenedFace(
            face, prepared, target, blend_mask(region, visible, face_px), skin_area, skin_area * visible, visible, region, descriptor,
            mask_cover,
        )

    def apply(self, face: Face) -> ModeOutput:
        """Replace one face, or blur it when replacing it would not be safe or natural."""
        if self.swap is not None:
            if face.number not in self.swapped:
                pending = [f for f in self.faces if f.number not in self.keep and f.number not in self.swapped]
                self.swapped.update(self.swap_faces(pending if face in pending else [face]))
            return self.swapped.pop(face.number)
        screened = self.screen(face)
        return screened if isinstance(screened, ModeOutput) else self.warp_classically(screened)

    def warp_classically(self, screened: ScreenedFace) -> ModeOutput:
        """The best-ranked donor that passes the anonymity check, warped onto the face; else blur."""
        face = screened.face
        candidates = rank_donors(
            self.resources.pool.donors, screened.target, self.used_identities, self.used_images, turned=True, beards=self.resources.beards
        )
        best = None
        tries = MAX_MASKED_DONORS_TRIED if screened.masked else MAX_DONORS_TRIED
        for candidate in donor_attempts(candidates, tries):
            new_pixels, points, mask = self.render_donor(candidate, screened)
            output = self.finished(new_pixels, mask, screened)
            check = self.check_identity(self.as_work_crop(output, screened), points, screened)
            if best is None or check.distance > best.distance:
                best = check
            if check.passed:
                self.used_identities[candidate.donor.identity] += 1
                self.used_images[candidate.key] += 1
                self.accept(face, candidate, check, CLASSICAL)
                return output
        return self.fall_back_unmatched(face, best, CLASSICAL)

    def render_donor(self, candidate: Candidate, screened: ScreenedFace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The donor warped onto the target with the target's colour and light, its 68 landmarks there, and the mask
        that pastes it, over the work crop."""
        prepared = screened.prepared
        crop, face_px = prepared.crop, prepared.size_px
        donor_image, donor_points = turned_donor(*load_donor(self.resources.pool, candidate), screened.target.features.yaw)
        layout = matched_expression(donor_layout(donor_points, prepared.points), prepared.points)
        layout = unfolded_layout(donor_points, layout, prepared.points)
        warped = warp_piecewise(donor_image, donor_points, layout, (crop.shape[1], crop.shape[0]))
        coloured = transfer_colour(warped, crop, screened.skin_area, screened.target_skin, face_px)
        shape = crop.shape[:2]
        coloured = darkened_eyes(
            coloured, crop, eyes_mask(shape, layout, face_px), eyes_mask(shape, prepared.points, face_px),
            eye_band(shape, layout) * screened.skin_area, eye_band(shape, prepared.points) * screened.target_skin,
        )
        mask = cover_features(screened.mask, screened.visible, face_px, prepared.points, layout)
        features = np.maximum(*(feature_mask(shape, points, FEATURE_GROW * face_px) for points in (prepared.points, layout)))
        coloured = edge_matched_light(coloured, crop, screened.mask, features, face_px, screened.mask_cover)
        return coloured, layout, mask

    def finished(self, new: np.ndarray, mask: np.ndarray, screened: ScreenedFace) -> ModeOutput:
        """New pixels over the work crop brought back to the photo's pixels, with the person's own detail and the
        photo's grain there (`texture.matched_detail`)."""
        base, matrix, new, (mask,) = in_photo_pixels(self.image, screened.prepared, new, mask)
        core = mask >= CORE  # fully new: the blend's edge mixes both faces' detail
        new = matched_detail(new, base, mask, core, seed=screened.face.number, inside=core)
        return ModeOutput(crop=new, mask=mask, matrix=matrix)

    def as_work_crop(self, output: ModeOutput, screened: ScreenedFace) -> np.ndarray:
        """The photo with `output` pasted, cut out as its work crop was (what the anonymity check sees)."""
        prepared = screened.prepared
        base, _ = photo_region(self.image, prepared)
        size = (prepared.crop.shape[1], prepared.crop.shape[0])
        shrink = cv2.INTER_AREA if prepared.scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(blend(base, output.crop, output.mask), size, interpolation=shrink)

    def aligned_donor(self, candidate: Candidate) -> np.ndarray:
        """The donor's face aligned for the generator, which ArcFace embeds as the identity to give."""
        donor_image, donor_points = load_donor(self.resources.pool, candidate)
        return self.swap.align(donor_image, five_from_68(donor_points))[0]

    def swap_faces(self, faces: Sequence[Face]) -> dict[int, ModeOutput]:
        """Replace faces with the published networks; each network runs once per donor round on all of them."""
        outputs, jobs = {}, []
        for face in faces:
            screened = self.screen(face)
            if isinstance(screened, ModeOutput):
                outputs[face.number] = screened
            else:
                jobs.append(self.start_swap(screened))
        if not jobs:
            return outputs
        crops = [job.crop for job in jobs]
        kept = [self.swap.align(self.image, face.landmarks)[0] for face in self.kept_faces()]
        identities = self.swap.embed(crops + kept)  # the originals and the kept faces in one batch
        self.kept_identities = identities[len(crops) :]
        parses = self.swap.parse_faces(crops)
        for index, job in enumerate(jobs):
            job.identity, job.parse = identities[index], None if parses is None else parses[index]
        for _ in range(MAX_DONORS_TRIED):
            active = [job for job in jobs if job.output is None and self.reserve_next_donor(job)]
            if not active:
                break
            latents = self.swap.embed_cached([(job.candidate.key, partial(self.aligned_donor, job.candidate)) for job in active])
            swapped = self.swap.generate([job.crop for job in active], latents)
            swapped_parses = self.swap.parse_faces(swapped)
            masks = [self.swap_mask(job, None if swapped_parses is None else swapped_parses[i]) for i, job in enumerate(active)]
            composites = [blend(job.crop, new, mask) for job, new, mask in zip(active, swapped, masks)]
            for job, new, mask, identity in zip(active, swapped, masks, self.swap.embed(composites)):
                self.judge(job, new, mask, identity)
        for job in jobs:
            face = job.screened.face
            outputs[face.number] = job.output or self.fall_back_unmatched(face, job.best, self.swap.backend)
        return outputs

    def start_swap(self, screened: ScreenedFace) -> SwapJob:
        """The face aligned for the generator, with the classical mask and its own region carried into that crop."""
        face = screened.face
        crop, matrix = self.swap.align(self.image, face.landmarks)
        size = (crop.shape[1], crop.shape[0])
        work_to_crop = compose(matrix, cv2.invertAffineTransform(screened.prepared.matrix))
        bounds = face_bounds(face, (self.image.shape[1], self.image.shape[0]))
        bounds_to_crop = compose(matrix, translation(*bounds[:2]))
        region = cv2.warpAffine(face_mask(face, bounds, feather=0), bounds_to_crop, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        five = transform_points(face.landmarks, matrix)
        face_px = eye_to_mouth(five)
        return SwapJob(screened, crop, matrix, work_to_crop, region, face_px)

    def reserve_next_donor(self, job: SwapJob) -> bool:
        """Pick the face's next synthetic person (one not tried yet, reuse ranked last) and count it as used; False when done."""
        if len(job.tried) >= MAX_DONORS_TRIED:
            return False
        ranking = rank_donors(
            self.resources.pool.donors, job.screened.target, self.used_identities, self.used_images, beards=self.resources.beards
        )
        job.candidate = next((c for c in ranking if c.donor.identity not in job.tried), None)
        if job.candidate is None:
            return False
        job.tried.add(job.candidate.donor.identity)
        self.used_identities[job.candidate.donor.identity] += 1
        self.used_images[job.candidate.key] += 1
        return True

    def swap_mask(self, job: SwapJob, swapped_parse: np.ndarray | None) -> np.ndarray:
        """Where the swapped crop replaces the target: face pixels in both parses (so nothing in front of the
        face is painted over), eroded and feathered; without BiSeNet, the classical mask."""
        if swapped_parse is None:
            size = (job.crop.shape[1], job.crop.shape[0])
            return cv2.warpAffine(job.screened.mask, job.work_to_crop, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        both = job.parse * swapped_parse * (job.region > 0.5)
        if job.screened.masked:  # the face mask stays
            size = (job.crop.shape[1], job.crop.shape[0])
            both = both * cv2.warpAffine(job.screened.visible, job.work_to_crop, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        return blend_mask(both, both, job.face_px)

    def judge(self, job: SwapJob, swapped: np.ndarray, mask: np.ndarray, identity: np.ndarray) -> None:
        """Run the anonymity check on one swapped face: keep it when it passes, else give its donor back."""
        screened, candidate = job.screened, job.candidate
        work = screened.prepared.crop
        size = (work.shape[1], work.shape[0])
        to_work = cv2.invertAffineTransform(job.work_to_crop)
        new_pixels = cv2.warpAffine(swapped, to_work, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        work_mask = cv2.warpAffine(mask, to_work, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        composite = blend(work, new_pixels, work_mask)
        check = self.check_identity(
            composite, screened.prepared.points, screened,
            similarity=float(identity @ job.identity), kept_similarity=closest_similarity(identity, self.kept_identities),
        )
        if check.passed:
            job.output = ModeOutput(crop=swapped, mask=mask, matrix=job.matrix)
            self.accept(screened.face, candidate, check, f"{self.swap.backend} (ArcFace similarity {check.similarity:.2f})")
            return
        self.used_identities[candidate.donor.identity] -= 1
        self.used_images[candidate.key] -= 1
        if job.best is None or check.similarity < job.best.similarity:
            job.best = check


def translation(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y]])


def start(image: np.ndarray, faces: Sequence[Face], keep: Collection[int], models) -> ReplaceChanger:
    """Begin replacing one photo's faces (loads replace mode's models on first use).

    Raises:
        ReplaceUnavailable: dlib, its model files or the donor pool are missing.
    """
    return ReplaceChanger(image, faces, keep, models)


def unavailable_reason(models) -> str | None:
    """None when replace mode can run, else why not: it needs dlib, its model files and the donor pool; checks files, loads nothing big."""
    return models.replace.unavailable_reason() if models.replace is not None else "replace mode's models are not loaded"
