"""The donor pool: a folder of face crops of people who do not exist, and the choice of a donor.

Pool format (a directory, so other sources can be added later):

    donor_pool/
      index.json   {"format": 1, "sources": {...}, "donors": [entry, ...]}
      faces/<id>.jpg   one aligned crop per entry

Each entry: `id`, `identity` (one synthetic person), `source`, `file`,
`gender`, `age`, `landmarks` (68×2 in crop pixels), `yaw`, `roll_degrees`,
`mouth_open`, `smile`, `eyes_open`, `facial_hair`, `expression`, `skin_lab` (median L, a, b of the eye band), `size_px`
(eye-to-mouth distance in the original picture: how sharp the crop is).

`rank_donors` is pure: it orders candidates for one target face, best first.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pipeline.face.colour import to_lab
from pipeline.face.landmarks import FaceFeatures, eye_band, fill_polygon, mirror_landmarks

POOL_FORMAT = 2  # 2: eyes_open, facial_hair and expression added; an older pool is rebuilt

# Cost weights of `rank_donors`; a cost of 1 is roughly "10 years of age".
AGE_COST_PER_YEAR = 0.1
YAW_COST = 4.0  # per unit of yaw (-1..1)
MOUTH_COST = 10.0  # per unit of mouth openness (a closed mouth warped open splits the lips)
SMILE_COST = 6.0  # per unit of smile (mouth width / eye distance): a grin 0.2 wider than a straight mouth weighs like 0.3 of yaw
EYES_COST = 15.0  # per unit of eye openness (open eyes about 0.3, closed under 0.15)
FACIAL_HAIR_COST = 4.0  # per unit of facial hair (0 clean-shaven .. 1 full beard)
LIGHTNESS_COST_PER_UNIT = 0.03  # per LAB L unit of skin lightness
CHROMA_COST_PER_UNIT = 0.03  # per LAB a/b unit of skin chroma
SOFT_DONOR_COST = 1.0  # donor photographed smaller than the target will be shown
FACIAL_HAIR_DARKENING = (20.0, 35.0)  # LAB L units darker above the lip than the eye band: 0 .. 1 facial hair
# LAB L units darker at the chin's centre than the eye band: 0 .. 1 beard. Measured: the pool's clean-shaven men
# -7..9, its bearded ones 32-44, the bare men of the test photos at most 20 (shade under the lip; on grey photos the
# moustache measure above is 1 for nearly every man, moustache or not)
BEARD_DARKENING = (20.0, 30.0)
# per unit of beard the donor has beyond the target's: a full beard on a man with a moustache or none is worse than
# the same synthetic person two or three times in a photo (`REUSED_IDENTITY_COST`), not than the very same crop twice
BEARD_COST = 250.0
CHIN_CENTRE = 0.6  # the chin's polygon (jaw bottom to lower lip) shrunk to this around its centre: the jaw's shade is left out
# per acted expression a photo of someone rarely shows, whatever the face's own: the pool's "confused", "angry" and
# "disgusted" faces frown (knitted brows, lines between them: pasted on a calm face they read as a scowl), its
# "pensive" ones look aside. Landmarks cannot tell the face's own frown: the photos' calm faces measure as knitted
# as the pool's confused ones (dlib's brows on small faces sit low).
EXPRESSION_COST = {"confused": 2.0, "angry": 2.0, "disgusted": 2.0, "pensive": 1.0}
# An acted "happy" face grins (teeth, raised cheeks). Pasted on a face that does not smile, with its mouth seen, it
# reads as a grin the person never made: worse than the same synthetic person twice in a photo, not than a full beard
# on a man with none (`BEARD_COST`).
GRIN_COST = 150.0
SMILING = 1.0  # a target's smile (mouth width / eye distance) from which a grinning donor fits; calm faces 0.7-0.95
REUSED_IDENTITY_COST = 100.0  # per earlier use of this synthetic person in the same photo
REUSED_IMAGE_COST = 1000.0  # per earlier use of this exact crop (and flip) in the same photo
OTHER_GENDER_COST = 10_000.0  # only when the pool has nobody of the target's gender
SOURCE_PREFERENCE = ("stylegan2:", "composite:")  # donors offered first, by source; the pool's own people come last
# A source is passed over for a face turned further than its most turned donor (either way, mirroring allowed)
# by more than this (about 17°): frontal donors warped flat onto a face turned 25° or more show its features
# twice. Not where the mode turns the donor to the face's pose first (`rank_donors`' `turned`).
MAX_POSE_GAP = 0.3


@dataclass(frozen=True)
class Donor:
    """One face crop of the pool."""

    id: str
    identity: str
    source: str
    file: str
    gender: str
    age: float
    landmarks: tuple[tuple[float, float], ...]
    yaw: float
    roll_degrees: float
    mouth_open: float
    smile: float
    eyes_open: float
    facial_hair: float
    expression: str  # the acted expression ("neutral", "happy", ...) of an expression-sheet face; "" otherwise
    skin_lab: tuple[float, float, float]
    size_px: float

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Donor":
        values = dict(data)
        values["landmarks"] = tuple((float(x), float(y)) for x, y in data["landmarks"])
        values["skin_lab"] = tuple(float(v) for v in data["skin_lab"])
        return cls(**values)


@dataclass(frozen=True)
class DonorPool:
    folder: Path
    donors: tuple[Donor, ...]
    sources: dict = field(default_factory=dict)

    def image_path(self, donor: Donor) -> Path:
        return self.folder / donor.file


@dataclass(frozen=True)
class Target:
    """What donor choice needs to know about the face being replaced."""

    gender: str
    age: float
    features: FaceFeatures
    skin_lab: tuple[float, float, float]
    size_px: float  # eye-to-mouth distance as the face will be shown (photo pixels)
    facial_hair: float  # 0 clean-shaven .. 1 full moustache (see `facial_hair`)
    beard: float | None = None  # 0 clean chin .. 1 full beard (see `beard`); None when the chin is not seen (a face mask)


@dataclass(frozen=True)
class Candidate:
    donor: Donor
    flip: bool  # use the donor mirrored left-right
    cost: float

    @property
    def key(self) -> tuple[str, bool]:
        return (self.donor.id, self.flip)


def read_pool(folder: Path) -> DonorPool:
    """Load a pool's index.

    Raises:
        FileNotFoundError: there is no index.json.
        ValueError: the index has another format.
    """
    data = json.loads((Path(folder) / "index.json").read_text(encoding="utf-8"))
    if data.get("format") != POOL_FORMAT:
        raise ValueError(f"donor pool format {data.get('format')!r}, expected {POOL_FORMAT}")
    try:
        donors = tuple(Donor.from_json(entry) for entry in data["donors"])
    except TypeError as error:  # an entry with fields of another version
        raise ValueError(f"donor pool entries do not match format {POOL_FORMAT}: {error}") from None
    return DonorPool(Path(folder), donors, data.get("sources", {}))


def write_pool_index(folder: Path, donors: list[Donor], sources: dict) -> None:
    document = {"format": POOL_FORMAT, "sources": sources, "donors": [donor.to_json() for donor in donors]}
    (Path(folder) / "index.json").write_text(json.dumps(document, indent=1), encoding="utf-8")


def donor_cost(donor: Donor, flip: bool, target: Target, donor_beard: float = 0.0) -> float:
    """How badly this donor (mirrored or not, with this much `beard`) fits the target, ignoring reuse; lower is better."""
    yaw = -donor.yaw if flip else donor.yaw
    cost = AGE_COST_PER_YEAR * abs(donor.age - target.age)
    cost += YAW_COST * abs(yaw - target.features.yaw)
    cost += MOUTH_COST * abs(donor.mouth_open - target.features.mouth_open)
    cost += SMILE_COST * abs(donor.smile - target.features.smile)
    cost += EYES_COST * abs(donor.eyes_open - target.features.eyes_open)
    cost += FACIAL_HAIR_COST * abs(donor.facial_hair - target.facial_hair)
    cost += EXPRESSION_COST.get(donor.expression, 0.0)
    if target.beard is not None:  # the lower face is seen (no face mask)
        cost += BEARD_COST * max(0.0, donor_beard - target.beard)
        if donor.expression == "happy" and target.features.smile < SMILING:
            cost += GRIN_COST
    cost += LIGHTNESS_COST_PER_UNIT * abs(donor.skin_lab[0] - target.skin_lab[0])
    cost += CHROMA_COST_PER_UNIT * math.hypot(donor.skin_lab[1] - target.skin_lab[1], donor.skin_lab[2] - target.skin_lab[2])
    if donor.size_px < 0.8 * target.size_px:
        cost += SOFT_DONOR_COST
    if donor.gender != target.gender:
        cost += OTHER_GENDER_COST
    return cost


def rank_donors(
    donors: tuple[Donor, ...] | list[Donor],
    target: Target,
    used_identities: Counter | None = None,
    used_images: Counter | None = None,
    turned: bool = False,
    beards: dict[str, float] | None = None,
) -> list[Candidate]:
    """Every (donor, flip) for the target, best first.

    Only donors of the target's gender are offered, unless the pool has none; of
    those, only the most preferred source (`SOURCE_PREFERENCE`: generated StyleGAN
    donors, then the new identities made from the pool, then the pool's own people)
    that has a donor in the target's pose (`MAX_POSE_GAP`); when none has, the one
    whose donors come closest to that pose. A mode that turns its donor to the
    target's pose (`turned`: classical replace, `replace.turn`) is offered every pose.
    Within a photo, a synthetic person already used ranks after every unused one
    (so identities repeat only once all of that gender are used), and an exact
    crop already used ranks after every crop not yet used.

    Args:
        donors: the pool's entries.
        target: the face to replace.
        used_identities: how often each identity was already used in this photo.
        used_images: how often each (donor id, flip) was already used in this photo.
        turned: the donor will be turned to the target's pose, so no source is passed over for its pose.
        beards: each donor's `beard` by id (`donor_beards`); a donor not in it counts as clean-shaven.
    """
    used_identities = used_identities or Counter()
    used_images = used_images or Counter()
    beards = beards or {}
    same_gender = [d for d in donors if d.gender == target.gender]
    offered = same_gender or list(donors)
    if offered:
        turn = abs(target.features.yaw)
        gap = float("inf") if turned else MAX_POSE_GAP
        best_source = min((max(abs(abs(d.yaw) - turn) - gap, 0.0), source_rank(d)) for d in offered)[1]
        offered = [d for d in offered if source_rank(d) == best_source]
    candidates = []
    for donor in offered:
        for flip in (False, True):
            cost = donor_cost(donor, flip, target, beards.get(donor.id, 0.0))
            cost += REUSED_IDENTITY_COST * used_identities[donor.identity]
            cost += REUSED_IMAGE_COST * used_images[(donor.id, flip)]
            candidates.append(Candidate(donor, flip, cost))
    candidates.sort(key=lambda c: (c.cost, c.donor.id, c.flip))
    return candidates


def source_rank(donor: Donor) -> int:
    """Where the donor's source stands in `SOURCE_PREFERENCE` (0 first)."""
    return next((rank for rank, prefix in enumerate(SOURCE_PREFERENCE) if donor.source.startswith(prefix)), len(SOURCE_PREFERENCE))


def facial_hair(lab: np.ndarray, points: np.ndarray, skin_lab: tuple[float, float, float]) -> float:
    """0 (clean-shaven) .. 1 (full moustache): how much darker the skin between nose and upper lip is than the eye band.

    Measured on the pool: clean-shaven men 7-19 LAB L units darker there (shading),
    the bearded donor 38-47.
    """
    points = np.asarray(points, dtype=np.float64)
    upper_lip = fill_polygon(lab.shape[:2], np.concatenate([points[31:36], points[48:55][::-1]]))
    return darkness_share(lab, upper_lip, skin_lab, FACIAL_HAIR_DARKENING)


def beard(lab: np.ndarray, points: np.ndarray, skin_lab: tuple[float, float, float]) -> float:
    """0 (clean chin) .. 1 (full beard): how much darker the chin's centre, under the lower lip, is than the eye band."""
    points = np.asarray(points, dtype=np.float64)
    chin = points[[6, 7, 8, 9, 10, 56, 57, 58]]
    centre = chin.mean(axis=0)
    return darkness_share(lab, fill_polygon(lab.shape[:2], centre + CHIN_CENTRE * (chin - centre)), skin_lab, BEARD_DARKENING)


def darkness_share(
    lab: np.ndarray, region: np.ndarray, skin_lab: tuple[float, float, float], darkening: tuple[float, float]
) -> float:
    """0 .. 1: how far the median lightness of `region` (h×w weights) lies below the skin's, from `darkening[0]` LAB L
    units (0) to `darkening[1]` (1); 0 for an empty region."""
    values = lab[..., 0][region > 0.5]
    if values.size == 0:
        return 0.0
    darker = skin_lab[0] - float(np.median(values))
    return float(np.clip((darker - darkening[0]) / (darkening[1] - darkening[0]), 0.0, 1.0))


def donor_beards(pool: DonorPool) -> dict[str, float]:
    """Each male donor's `beard`, by id, measured on its crop (the pool's index does not hold it)."""
    beards = {}
    for donor in pool.donors:
        if donor.gender == "male":
            lab = to_lab(read_donor_image(str(pool.image_path(donor)), False))
            points = np.asarray(donor.landmarks, dtype=np.float64)
            beards[donor.id] = beard(lab, points, median_skin_lab(lab, eye_band(lab.shape[:2], points)))
    return beards


def median_skin_lab(lab: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Median L, a, b (L 0..100) of pixels where weights > 0.5; mid-grey skin when there are none."""
    values = lab[weights > 0.5]
    if values.shape[0] == 0:
        return (60.0, 12.0, 16.0)
    return tuple(float(v) for v in np.median(values, axis=0))


def load_donor(pool: DonorPool, candidate: Candidate) -> tuple[np.ndarray, np.ndarray]:
    """The donor's pool crop (mirrored when the candidate says so) and its 68 landmarks there."""
    donor_image = read_donor_image(str(pool.image_path(candidate.donor)), candidate.flip)
    donor_points = np.asarray(candidate.donor.landmarks, dtype=np.float64)
    if candidate.flip:
        donor_points = mirror_landmarks(donor_points, donor_image.shape[1])
    return donor_image, donor_points


@lru_cache(maxsize=96)
def read_donor_image(path: str, flip: bool) -> np.ndarray:
    """A pool crop as RGB, mirrored when asked (cached per process)."""
    image = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, ::-1]) if flip else image


def donor_label(candidate: Candidate) -> str:
    return candidate.donor.id + (" (mirrored)" if candidate.flip else "")
