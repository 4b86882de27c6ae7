"""dlib distances between different people of the same test photo, by whether they wear face masks.

A face mask shared by two faces pulls dlib's distance down whoever wears it; this
prints how far apart dlib puts different masked people (the basis of
`identity.MASKED_MIN_DISTANCE`), next to bare ones.

    .venv/bin/python bench/masked_strangers.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

import numpy as np  # noqa: E402

from pipeline.analysis import find_faces  # noqa: E402
from pipeline.face.crop import MIN_FACE_PX, prepare_face  # noqa: E402
from pipeline.modes.replace.identity import describe_face, descriptor_distance  # noqa: E402
from pipeline.regions import face_scale  # noqa: E402
from tests.helpers import DATA, cached_models, photo_rgb  # noqa: E402


def main() -> None:
    models = cached_models()
    resources = models.replace.get()
    pairs: dict[str, list[float]] = {"masked-masked": [], "bare-bare": [], "masked-bare": []}
    for path in sorted(p for p in DATA.iterdir() if p.suffix in (".jpg", ".png")):
        image = photo_rgb(path.name)
        faces, _ = find_faces(image, models)
        described = []
        for face in faces:
            if face_scale(face) >= MIN_FACE_PX:
                prepared = prepare_face(image, face, resources.predictor)
                described.append((face.wears_mask, describe_face(resources.recognizer, prepared.crop, prepared.points)))
        for (masked_a, a), (masked_b, b) in itertools.combinations(described, 2):
            kind = "masked-masked" if masked_a and masked_b else "bare-bare" if not (masked_a or masked_b) else "masked-bare"
            pairs[kind].append(descriptor_distance(a, b))
    for kind, distances in pairs.items():
        if distances:
            values = np.array(distances)
            low = ", ".join(f"{q}%: {v:.2f}" for q, v in zip((1, 5, 10, 50), np.percentile(values, (1, 5, 10, 50))))
            print(f"{kind:14s} {len(values):4d} pairs; percentiles {low}; below 0.6: {(values < 0.6).mean():.0%}, below 0.7: {(values < 0.7).mean():.0%}")


if __name__ == "__main__":
    main()
