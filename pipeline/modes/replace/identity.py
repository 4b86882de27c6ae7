"""The anonymity check: how far a replaced face is from the original and from the kept faces.

Two recognisers, each with a published same-person threshold:

- dlib's 128-D descriptors (always): dlib publishes 0.6 as its same-person
  distance (99.38% on LFW). A replaced face must be at least `MIN_DISTANCE` from
  the original; the margin above 0.6 is measured in bench/replace.py (see the README).
- ArcFace (`arcface_simswap`, when SimSwap runs): cosine similarity of
  L2-normalised 512-D embeddings. SimSwap's ArcFace comes from
  foamliu/InsightFace-v2, whose LFW evaluation puts the same-person boundary at
  an angle of 70.36° (cosine 0.336, `lfw_eval.py`); deepface uses the same
  boundary for insightface's ArcFace (cosine distance 0.68, similarity 0.32). A
  replaced face must stay below `MAX_SIMILARITY`, 0.08 (about 5°) under it. That
  margin is not measured: these machines have no real ArcFace weights. It plays
  the role of dlib's measured 0.1 (the drift of one face under re-encoding,
  downscaling and recolouring); bench/replace.py prints the similarities, so it
  can be measured once the weights are present.

Both run when SimSwap does: SimSwap is trained to move ArcFace's embedding
towards the donor, so ArcFace alone is the recogniser a swap most easily
satisfies; dlib is an independent second opinion (and what the tests measure).
Kept faces only must not be matched (no privacy risk, so no margin), and
neither may any person of the donor pool (`MIN_POOL_DISTANCE`, dlib only): a
replaced face must not pass as someone whose face the pool was made from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAME_PERSON_THRESHOLD = 0.6  # dlib's published distance threshold
MIN_DISTANCE = 0.7  # from the original: the threshold plus a measured margin (re-identification risk)
# A face mask is shared by the original and the result (replace mode keeps it), so it pulls their distance down
# whoever is above it. The line for a masked face: where dlib separates 99% of pairs of different masked people in
# the test photos (0.41; 40% of them fall below 0.6) plus the same measured margin (bench/masked_strangers.py).
# Not separately validated: bare strangers in the same small, old photos measure as close (1%: 0.42, 51% below 0.6).
MASKED_MIN_DISTANCE = 0.51
MIN_KEPT_DISTANCE = SAME_PERSON_THRESHOLD  # from kept faces: only must not pass as them
MIN_POOL_DISTANCE = SAME_PERSON_THRESHOLD  # from every person of the donor pool: the result must not pass as one
SAME_PERSON_SIMILARITY = 0.33  # ArcFace cosine similarity at LFW's same-person boundary (70.4°: 0.336; deepface: 0.32)
MAX_SIMILARITY = 0.25  # to the original: the boundary less a margin of 0.08 (about 5°), not measured
MAX_KEPT_SIMILARITY = SAME_PERSON_SIMILARITY  # to kept faces: only must not pass as them


@dataclass(frozen=True)
class IdentityCheck:
    """A replaced face's distances from the original and the nearest kept face, by each recogniser that ran."""

    distance: float  # dlib descriptor distance to the original
    kept_distance: float  # ... to the nearest kept face (infinity when none)
    similarity: float | None = None  # ArcFace cosine similarity to the original; None when ArcFace did not run
    kept_similarity: float | None = None  # ... to the most similar kept face (-1 when none)
    pool_distance: float = float("inf")  # dlib distance to the nearest crop of a pool person (infinity when unchecked)
    masked: bool = False  # the face wears a face mask, which the result keeps: held to `MASKED_MIN_DISTANCE`

    @property
    def min_distance(self) -> float:
        """The dlib distance needed from the original."""
        return MASKED_MIN_DISTANCE if self.masked else MIN_DISTANCE

    @property
    def passed(self) -> bool:
        passed = (
            self.distance >= self.min_distance
            and self.kept_distance >= MIN_KEPT_DISTANCE
            and self.pool_distance >= MIN_POOL_DISTANCE
        )
        if self.similarity is not None:
            passed = passed and self.similarity < MAX_SIMILARITY and self.kept_similarity < MAX_KEPT_SIMILARITY
        return passed

    def describe(self) -> str:
        """The numbers and the limits they are held to, for reports and logs."""
        text = f"dlib distance {self.distance:.2f} (needs ≥ {self.min_distance})"
        if self.kept_distance != float("inf"):
            text += f", to kept faces {self.kept_distance:.2f} (≥ {MIN_KEPT_DISTANCE})"
        if self.pool_distance != float("inf"):
            text += f", to the pool's people {self.pool_distance:.2f} (≥ {MIN_POOL_DISTANCE})"
        if self.similarity is not None:
            text += f"; ArcFace similarity {self.similarity:.2f} (needs < {MAX_SIMILARITY})"
            if self.kept_similarity > -1:
                text += f", to kept faces {self.kept_similarity:.2f} (< {MAX_KEPT_SIMILARITY})"
        return text


def shape_from_points(points: np.ndarray):
    """A dlib full_object_detection from 68×2 landmarks."""
    import dlib

    points = np.asarray(points)
    xs, ys = points[:, 0], points[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])


def describe_face(recognizer, image: np.ndarray, points68: np.ndarray) -> np.ndarray:
    """The 128-D dlib descriptor of the face with these landmarks in an RGB image."""
    descriptor = recognizer.compute_face_descriptor(np.ascontiguousarray(image), shape_from_points(points68))
    return np.asarray(descriptor, dtype=np.float64)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def closest_distance(descriptor: np.ndarray, others: list[np.ndarray]) -> float:
    """Distance to the nearest of `others` (infinity when there are none)."""
    return min((descriptor_distance(descriptor, other) for other in others), default=float("inf"))


def closest_similarity(embedding: np.ndarray, others: np.ndarray) -> float:
    """Cosine similarity of an L2-normalised embedding to the most similar row of `others` (-1 when there are none)."""
    return float(np.max(np.asarray(others) @ embedding)) if len(others) else -1.0
