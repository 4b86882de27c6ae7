"""New identities made from the pool's openpeople faces: people who do not exist, and look like nobody in the pool.

Warped onto a face, a pool person still showed through: dlib put every replaced
face of the test photos 0.33-0.52 from its pool person (0.6 is its same-person
line). A plain 50/50 morph would not help: morphs match *both* of their sources.
Each new identity takes

- its skin, hair and head from one person of the pool,
- its jaw line from a second, its eyes and brows from a third, its nose and mouth
  from others again (as many different people as the pool has of that gender),
- a feature layout moved away from all of them (eye spacing and height, mouth
  width and height, nose length),

all in one expression (the expression sheets are in the same grid for everyone),
so the eyes' and mouth's state can still be matched to the face being replaced.
Each identity is made twice when the pool allows: in its own expression and, with
the same people, parts and layout moves, in the other mouth state (a smiling one
calm, a calm one smiling), so a calm face need not be given a grin.
The features are cloned in the gradient domain (`cv2.seamlessClone`), so their
colour and light are the skin's. A new identity is kept only if dlib puts it at
least `MIN_POOL_DISTANCE` from every crop of every pool person and at least
`MIN_IDENTITY_DISTANCE` from every identity kept before it, the detector still
finds a face, and our age/gender model gives it the intended gender (each of its
crops is checked so). Its age is
its skin person's (skin, hair and head carry the age; the model reads composites
younger), and its pose, eyes, mouth and smile are dlib's reading of the composite.

Men are tried first (the pool has 3 men and 7 women: every male combination
before women repeat), and three tries in four are for a calm mouth. The
identities are frontal (the pool's side views are full profiles, which dlib's
68 points cannot fit, and it has no three-quarter views): replace mode turns
them to a turned face's pose when it uses them (`replace.turn`).

Built once beside the pool and kept in its index under the source `composite`,
with a digest of what it was made from: rebuilt only when those inputs change or
more identities are asked for than were built.
Every identity is made from MIT-licensed openpeople material; the pool has no
East Asian person, so no identity is East Asian either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from pipeline.align import estimate_similarity, transform_points
from pipeline.face.donors import Donor, DonorPool, read_pool, write_pool_index
from pipeline.modes.replace.identity import MIN_POOL_DISTANCE, closest_distance, describe_face
from pipeline.face.landmarks import BROWS, JAW, LEFT_EYE, NOSE, OUTER_LIPS, RIGHT_EYE
from pipeline.face.landmarks import fill_polygon
from pipeline.face.pool import CROP_SIZE, OPENPEOPLE_PACKAGE, UnusableFace, fit_donor_face, pool_lock, save_donor
from pipeline.modes.replace.warp import warp_piecewise

log = logging.getLogger(__name__)

SOURCE = "composite"
VERSION = 6  # raise when the recipe changes: the identities are rebuilt
IDENTITY_COUNT = 120  # identities built by default (at least 100 are wanted across genders, ages and skin tones)
MAX_TRIES = 150  # failed compositions in a row after which a gender gives no more identities
# dlib distance between two identities, so none is a near-duplicate of another: above the median distance
# between two crops of one pool person (0.41; 90th percentile 0.52, in other expressions or views). Asking
# 0.6 (dlib's "another person") stalled the build at 24 identities: 7 women and 3 men give too few parts.
MIN_IDENTITY_DISTANCE = 0.45
MIN_FACE_SCORE = 0.8  # the detector's score a new face needs
SEED = 20261205
# The expression sheets' cells identities are made from. Sad, angry, disgusted and scared faces are left out:
# their brows and mouth corners made grimaces that donor choice cannot see (it measures the mouth's opening and
# width only), and a smiling woman came back frowning.
CALM_EXPRESSIONS = ("neutral", "determined", "pensive", "confused")
SMILING_EXPRESSIONS = ("happy", "smug")
CALM_SHARE = (3, 4)  # three tries in four are for an expression with a calm mouth
# Each identity is also made in the other mouth state (by whether its own expression smiles): a calm face given a
# grinning donor came back grinning (the identities are few, and one was not reused while others were left).
VARIANT_EXPRESSION = {False: "happy", True: "neutral"}
EYES = LEFT_EYE + RIGHT_EYE + BROWS
MOUTH = list(range(48, 68))
# How far the layout moves (fractions of the eye distance, or of the feature's own size): at least the
# first number, at most the second, in a random direction.
# Half these amounts left three in four women and every man within 0.6 of a pool person.
EYE_SPACING = (0.08, 0.16)
EYE_HEIGHT = (0.06, 0.13)
MOUTH_HEIGHT = (0.06, 0.13)
MOUTH_WIDTH = (0.08, 0.19)
NOSE_LENGTH = (0.06, 0.13)
MOVES = (EYE_SPACING, EYE_HEIGHT, MOUTH_WIDTH, MOUTH_HEIGHT, NOSE_LENGTH)  # drawn in this order
ROLES = ("skin", "jaw", "eyes", "nose", "mouth")
CLONE_MARGIN = (("nose", NOSE, 0.03), ("eyes", EYES, 0.04), ("mouth", OUTER_LIPS, 0.04))  # (part, points, margin / crop size)


def identities_digest(pool: DonorPool) -> str:
    """What the identities are made from: the recipe and the pool's openpeople crops."""
    sources = sorted((d.id, d.landmarks, d.expression) for d in pool.donors if is_openpeople(d))
    return hashlib.sha256(json.dumps([VERSION, SEED, sources]).encode()).hexdigest()[:16]


def is_openpeople(donor: Donor) -> bool:
    return donor.source.startswith(OPENPEOPLE_PACKAGE + "==")


def pool_descriptors(pool: DonorPool, recognizer) -> dict[str, list[np.ndarray]]:
    """dlib descriptors of every openpeople crop, by person (cached beside the pool, keyed by its digest)."""
    cache = pool.folder / f"descriptors-{identities_digest(pool)}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            people = defaultdict(list)
            for key in stored.files:
                people[key.rsplit("#", 1)[0]].append(stored[key])
            return dict(people)
    people = defaultdict(list)
    for donor in pool.donors:
        if is_openpeople(donor):
            image = read_rgb(pool.image_path(donor))
            people[donor.identity].append(describe_face(recognizer, image, np.asarray(donor.landmarks)))
    np.savez(cache, **{f"{person}#{i}": d for person, found in people.items() for i, d in enumerate(found)})
    return dict(people)


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def ensure_identities(
    pool: DonorPool, recognizer, detector, predictor, age_gender, count: int = IDENTITY_COUNT
) -> DonorPool:
    """The pool with its first `count` new identities (fewer when the pool cannot give more), built first
    when they are missing, fewer, or made from other inputs.

    Only the first `count` are used even when more were built: they are the ones a build of `count`
    makes (the same seed, in the same order), so a machine that once built more behaves like a fresh one.
    """
    digest = identities_digest(pool)
    built = pool.sources.get(SOURCE, {})
    if built.get("digest") == digest and built.get("asked", 0) >= count:
        return first_identities(pool, count)
    started = time.monotonic()
    log.warning("making new identities from the donor pool (once; a few minutes)")
    staging = Path(tempfile.mkdtemp(prefix=f".{pool.folder.name}.identities.", dir=pool.folder.parent))
    try:
        (staging / "faces").mkdir()
        donors = compose_identities(pool, staging, recognizer, detector, predictor, age_gender, digest, count)
        made = len({d.identity for d in donors})
        source = {"digest": digest, "license": "MIT (made from openpeople)", "asked": count, "identities": made}
        with pool_lock(pool.folder):
            current = read_pool(pool.folder)
            kept = [d for d in current.donors if not d.source.startswith(SOURCE + ":")]
            for donor in donors:
                os.replace(staging / donor.file, pool.folder / donor.file)
            write_pool_index(staging, kept + donors, {**current.sources, SOURCE: source})
            os.replace(staging / "index.json", pool.folder / "index.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.warning("%d new identities (%d crops) made in %.0f s", made, len(donors), time.monotonic() - started)
    return read_pool(pool.folder)


def first_identities(pool: DonorPool, count: int) -> DonorPool:
    """The pool with only the first `count` of its new identities, in the order they were made."""
    identities = list(dict.fromkeys(d.identity for d in pool.donors if d.source.startswith(SOURCE + ":")))
    dropped = set(identities[count:])
    return dataclasses.replace(pool, donors=tuple(d for d in pool.donors if d.identity not in dropped))


def without_identities(pool: DonorPool) -> DonorPool:
    """The pool as it was before any identity was made (`identities: 0`)."""
    return dataclasses.replace(pool, donors=tuple(d for d in pool.donors if not d.source.startswith(SOURCE + ":")))


def compose_identities(
    pool: DonorPool, staging: Path, recognizer, detector, predictor, age_gender, digest: str, count: int
) -> list[Donor]:
    """Up to `count` new identities, each with its crops (`VARIANT_EXPRESSION`), cropped into staging/faces.

    Each attempt is for the gender with fewer identities so far (men first: the pool has 3 men
    and 7 women, so every male combination is tried before women repeat), until a gender gives
    nothing for `MAX_TRIES` attempts in a row. `CALM_SHARE` of the tries are for an expression
    with a calm mouth (most faces to replace have a closed mouth).
    """
    from pipeline.detection import detect_faces

    rng = np.random.default_rng(SEED)
    people = pool_descriptors(pool, recognizer)
    sheets = expression_sheets(pool)
    cycles = {g: expression_cycle(by_expression) for g, by_expression in sheets.items()}
    cycles = {g: cycle for g, cycle in cycles.items() if cycle}
    made: list[Donor] = []  # every crop, each identity's together
    descriptors: list[np.ndarray] = []  # one per identity, as first made
    attempts = Counter()
    misses = Counter()
    rejected = Counter()  # compositions by why they were not kept (logged)
    skins = Counter()  # identities kept per skin person
    genders = Counter()  # identities kept per gender

    def made_crop(
        gender: str, expression: str, recipe: Recipe, number: int, identities: list[np.ndarray], suffix: str = ""
    ) -> tuple[Donor, np.ndarray] | None:
        """Identity `number` composed by `recipe` in `expression` and saved as a donor, with its descriptor, if it
        passes every check (far from every pool person and these `identities`); else None, the reason counted."""
        image, layout, parts, skin = compose_one(pool, sheets[gender][expression], recipe)
        if not far_enough(describe_face(recognizer, image, layout), people, identities):
            rejected["near a pool person or an identity"] += 1
            return None
        detections = detect_faces(image, detector, score_threshold=MIN_FACE_SCORE, upscale_below=0)
        if len(detections) != 1:
            rejected["not one face to the detector"] += 1
            return None
        if age_gender.estimate(image, detections.landmarks[:1])[0][0] != gender:
            rejected["other gender"] += 1
            return None
        try:  # the features (pose, eyes, mouth, smile) as dlib reads them on the composite, not as planned
            fitted = fit_donor_face(image, detections.landmarks[0], predictor)
        except UnusableFace:
            rejected["dlib's fit"] += 1
            return None
        donor = save_donor(
            image, fitted, staging, donor_id=f"id-{digest[:8]}-{number:03d}{suffix}", identity=f"{SOURCE}:{digest[:8]}:{number:03d}",
            source=f"{SOURCE}:{parts}", gender=gender, age=skin.age, expression=expression,
        )  # fmt: skip
        # Checked again as saved (aligned, JPEG): that crop is what replace mode pastes.
        saved = describe_face(recognizer, read_rgb(staging / donor.file), np.asarray(donor.landmarks))
        if far_enough(saved, people, identities):
            return donor, saved
        rejected["near a pool person or an identity, as saved"] += 1
        (staging / donor.file).unlink()
        return None

    while len(descriptors) < count:
        open_genders = [g for g in sorted(cycles) if misses[g] < MAX_TRIES]
        if not open_genders:
            break
        gender = min(open_genders, key=lambda g: genders[g])
        cycle = cycles[gender]
        expression = cycle[attempts[gender] % len(cycle)]
        attempts[gender] += 1
        misses[gender] += 1
        recipe = draw_recipe(sheets[gender][expression], skins, rng)
        kept = made_crop(gender, expression, recipe, len(descriptors), descriptors)
        if kept is None:
            continue
        made.append(kept[0])
        misses[gender] = 0
        genders[gender] += 1
        skins[recipe.people[0]] += 1
        # The same people, parts and layout moves in the other mouth state, held to the pool's people only: held to
        # the other identities too, 49 of 117 identities had a second crop, 75 without. A crop near another identity
        # is, in a photo, no worse than that identity twice.
        variant = VARIANT_EXPRESSION[expression in SMILING_EXPRESSIONS]
        if set(recipe.by_role().values()) <= set(sheets[gender].get(variant, {})):
            other = made_crop(gender, variant, recipe, len(descriptors), [], suffix=f"-{variant}")
            if other is not None:
                made.append(other[0])
        descriptors.append(kept[1])
    log.info("identities: %s tried, rejected: %s", dict(attempts), dict(rejected))
    return made


def expression_cycle(by_expression: dict[str, dict[str, Donor]]) -> list[str]:
    """The order expressions are tried in for one gender: `CALM_SHARE` of the tries with a calm mouth."""
    calm = [e for e in CALM_EXPRESSIONS if len(by_expression.get(e, {})) >= 3]  # fewer people give no composite
    smiling = [e for e in SMILING_EXPRESSIONS if len(by_expression.get(e, {})) >= 3]
    if not calm or not smiling:
        return calm or smiling
    tries = CALM_SHARE[1] * len(calm) * len(smiling)
    calm_tries = [calm[i % len(calm)] for i in range(tries * CALM_SHARE[0] // CALM_SHARE[1])]
    smiling_tries = [smiling[i % len(smiling)] for i in range(tries - len(calm_tries))]
    spread = [(i / len(calm_tries), 0, e) for i, e in enumerate(calm_tries)]
    spread += [((i + 1) / (len(smiling_tries) + 1), 1, e) for i, e in enumerate(smiling_tries)]  # evenly among the calm ones
    return [e for *_, e in sorted(spread)]


def far_enough(descriptor: np.ndarray, people: dict[str, list[np.ndarray]], identities: list[np.ndarray]) -> bool:
    """Whether a face is at least MIN_POOL_DISTANCE from every pool crop and MIN_IDENTITY_DISTANCE from every identity."""
    nearest = min(closest_distance(descriptor, found) for found in people.values())
    return nearest >= MIN_POOL_DISTANCE and closest_distance(descriptor, identities) >= MIN_IDENTITY_DISTANCE


def expression_sheets(pool: DonorPool) -> dict[str, dict[str, dict[str, Donor]]]:
    """The pool's frontal openpeople crops by gender, expression and person (the portrait counts as neutral)."""
    sheets: dict = defaultdict(lambda: defaultdict(dict))
    for donor in pool.donors:
        if not is_openpeople(donor) or abs(donor.yaw) > 0.15:
            continue
        expression = donor.expression or ("neutral" if "studio_portrait" in donor.id else "")
        if expression:
            sheets[donor.gender][expression].setdefault(donor.identity, donor)
    return {gender: dict(by_expression) for gender, by_expression in sheets.items()}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What makes one identity, whatever its expression: who gives which part, and how its layout is moved."""

    people: tuple[str, ...]  # the skin's person first, then the others (parts go to them in `ROLES` order)
    moves: tuple[float, ...]  # signed amounts of `MOVES`, in that order

    def by_role(self) -> dict[str, str]:
        """The person who gives each part."""
        return {role: self.people[i % len(self.people)] for i, role in enumerate(ROLES)}


def draw_recipe(crops: dict[str, Donor], skins: Counter, rng: np.random.Generator) -> Recipe:
    """A new identity's recipe from the people with a crop in one expression.

    The skin (with hair and head, which carry most of a face's age) comes from the person who has
    given the fewest skins so far, the oldest first; the other parts from the others, shuffled.
    """
    skin = min(crops, key=lambda person: (skins[person], -crops[person].age))
    others = [person for person in crops if person != skin]
    rng.shuffle(others)
    moves = tuple(float(rng.choice([-1.0, 1.0]) * rng.uniform(*limits)) for limits in MOVES)
    return Recipe((skin, *others), moves)


def compose_one(pool: DonorPool, crops: dict[str, Donor], recipe: Recipe) -> tuple[np.ndarray, np.ndarray, str, Donor]:
    """One composed face (CROP_SIZE² RGB) from the crops of one expression, its planned 68 landmarks, which people
    gave which part, and the skin's crop."""
    donors = {role: crops[person] for role, person in recipe.by_role().items()}
    points = {role: np.asarray(donor.landmarks, dtype=np.float64) for role, donor in donors.items()}
    layout = points["skin"].copy()
    for role, indices in (("jaw", JAW), ("eyes", EYES), ("nose", NOSE), ("mouth", MOUTH)):
        source = points[role][indices]
        layout[indices] = transform_points(source, estimate_similarity(source, layout[indices]))
    layout = moved_layout(layout, recipe.moves)
    size = (CROP_SIZE, CROP_SIZE)
    image = warp_piecewise(read_rgb(pool.image_path(donors["skin"])), points["skin"], layout, size)
    for role, indices, margin in CLONE_MARGIN:
        part = warp_piecewise(read_rgb(pool.image_path(donors[role])), points[role], layout, size)
        grow = max(1, int(round(margin * CROP_SIZE)))
        mask = cv2.dilate(fill_polygon((CROP_SIZE, CROP_SIZE), layout[indices]), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        x, y, w, h = cv2.boundingRect((mask > 0).astype(np.uint8))
        image = cv2.seamlessClone(part, image, (mask * 255).astype(np.uint8), (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    parts = ",".join(f"{role}={donors[role].identity.split(':')[-1]}" for role in ROLES)
    return image, layout, parts, donors["skin"]


def moved_layout(layout: np.ndarray, moves: tuple[float, ...]) -> np.ndarray:
    """The layout with its eyes, mouth and nose tip moved by the recipe's amounts (`MOVES`)."""
    eye_spacing, eye_height, mouth_width, mouth_height, nose_length = moves
    layout = layout.copy()
    eye_distance = float(np.hypot(*(layout[RIGHT_EYE].mean(axis=0) - layout[LEFT_EYE].mean(axis=0))))
    centre = layout[EYES, 0].mean()
    layout[EYES, 0] = centre + (layout[EYES, 0] - centre) * (1 + eye_spacing)
    layout[EYES, 1] += eye_height * eye_distance
    mouth_centre = layout[MOUTH, 0].mean()
    layout[MOUTH, 0] = mouth_centre + (layout[MOUTH, 0] - mouth_centre) * (1 + mouth_width)
    layout[MOUTH, 1] += mouth_height * eye_distance
    layout[NOSE[4:], 1] += nose_length * eye_distance
    return layout
