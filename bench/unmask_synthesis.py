"""Synthetic face masks on the test portraits: how well they cover the lower face, whether our mask finder
sees them, and what they cost.

    .venv/bin/python bench/unmask_synthesis.py [--solvay] [--samples /tmp/synth_samples]

Coverage: the share of the region from the bottom of the nose to the chin (the hull of
landmarks 31-35 and jaw points 4-12) where the mask is over 0.5; and of the whole face below
the middle of the nose bridge (the hull of landmark 29 and jaw points 1-15). Detection: the share of
masked faces whose `mask_probability` (on the full photo, with the detector's five
points of the clean face) reaches MASKED_THRESHOLD; the clean faces' own rate is the baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.detection import detect_faces  # noqa: E402
from pipeline.face.landmarks import (  # noqa: E402
    dlib_box_from_five, eye_ratio, face_features, fill_polygon, find_landmarks68, landmark_predictor,
)
from pipeline.face.covering import mask_probability  # noqa: E402
from pipeline.types import MASKED_THRESHOLD  # noqa: E402
from pipeline.face.pool import MIN_EYE_RATIO  # noqa: E402
from pipeline.offline.dataset import MAX_YAW, TRAIN_SIZE, aligned_face, make_triple  # noqa: E402
from pipeline.offline.synthesis import MASK_COLOURS, MASK_STYLES, synthesise_mask  # noqa: E402
from tests.helpers import cached_models, photo_rgb  # noqa: E402

PORTRAITS = ("fr_obama-1080p.jpg", "fr_obama_small.jpg", "fr_two_people.jpg", "mpl_grace_hopper.jpg", "skimage_astronaut.png")
LOWER_FACE = [31, 32, 33, 34, 35] + list(range(4, 13))
BELOW_BRIDGE = [29] + list(range(1, 16))  # the whole face below the middle of the nose bridge, cheek to cheek


def frontal_faces(names, models, predictor):
    """(photo name, photo, five points, 68 points) of every frontal face."""
    faces = []
    for name in names:
        image = photo_rgb(name)
        found = detect_faces(image, models.detector, models.settings.detection_max_side, models.settings.detection_score)
        for five in found.landmarks:
            points = find_landmarks68(predictor, image, dlib_box_from_five(five))
            if eye_ratio(five) >= MIN_EYE_RATIO and abs(face_features(points).yaw) <= MAX_YAW:  # as training collects them
                faces.append((name, image, five, points))
    return faces


def measure(faces, label: str, samples: Path | None) -> None:
    coverage = defaultdict(list)
    wider = defaultdict(list)
    detected = defaultdict(list)
    baseline = [mask_probability(image, five) >= MASKED_THRESHOLD for _, image, five, _ in faces]
    started = time.perf_counter()
    count = 0
    for number, (name, image, five, points) in enumerate(faces):
        region = fill_polygon(image.shape[:2], points[LOWER_FACE]) > 0
        below_bridge = fill_polygon(image.shape[:2], points[BELOW_BRIDGE]) > 0
        for style in MASK_STYLES:
            for colour in MASK_COLOURS:
                result = synthesise_mask(image, points, np.random.default_rng(number), style, colour)
                count += 1
                coverage[style].append(float((result.mask[region] > 0.5).mean()))
                wider[style].append(float((result.mask[below_bridge] > 0.5).mean()))
                detected[(style, colour)].append(mask_probability(result.image, five) >= MASKED_THRESHOLD)
                if samples is not None and number < 3:
                    x1, y1 = np.maximum(points.min(axis=0) - 0.3 * np.ptp(points, axis=0), 0).astype(int)
                    x2, y2 = (points.max(axis=0) + 0.3 * np.ptp(points, axis=0)).astype(int)
                    crop = result.image[y1:y2, x1:x2]
                    cv2.imwrite(str(samples / f"{label}_{number}_{style}_{colour}.png"), crop[..., ::-1])
    elapsed = time.perf_counter() - started
    print(f"\n{label}: {len(faces)} frontal faces; the clean faces flagged as masked (baseline): {sum(baseline)}/{len(baseline)}")
    print("coverage per style (mean, min): nose bottom to chin | whole face below the nose bridge")
    for style in MASK_STYLES:
        print(f"  {style:9s} {np.mean(coverage[style]):.3f} {np.min(coverage[style]):.3f} | {np.mean(wider[style]):.3f} {np.min(wider[style]):.3f}")
    print("finder's detection rate per style × colour:")
    print("  " + " " * 9 + "".join(f"{colour:>11s}" for colour in MASK_COLOURS) + "        all")
    for style in MASK_STYLES:
        rates = [np.mean(detected[(style, colour)]) for colour in MASK_COLOURS]
        print(f"  {style:9s}" + "".join(f"{rate:11.2f}" for rate in rates) + f"{np.mean(rates):11.2f}")
    everything = [flag for flags in detected.values() for flag in flags]
    print(f"  all: {np.mean(everything):.3f} ({sum(everything)}/{len(everything)}); "
          f"{1000 * elapsed / count:.0f} ms per mask and finder run on the full photo")


def training_speed(faces) -> None:
    """Milliseconds per synthetic mask and per augmented triple on 128-pixel aligned samples."""
    samples = [aligned_face(image, points, TRAIN_SIZE) for _, image, _, points in faces]
    rng = np.random.default_rng(0)
    for what, run in (("synthesise_mask", lambda s: synthesise_mask(s.face, s.points68, rng)), ("make_triple", lambda s: make_triple(s, rng))):
        started = time.perf_counter()
        for _ in range(10):
            for sample in samples:
                run(sample)
        print(f"{what} on 128-px samples: {1000 * (time.perf_counter() - started) / (10 * len(samples)):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solvay", action="store_true", help="also the 1927 Solvay photo (greyscale, ~40 px faces)")
    parser.add_argument("--samples", type=Path, help="write sample crops here")
    args = parser.parse_args()
    if args.samples:
        args.samples.mkdir(parents=True, exist_ok=True)
    models = cached_models()
    predictor = landmark_predictor(models.settings.weights_path)
    faces = frontal_faces(PORTRAITS, models, predictor)
    measure(faces, "portraits", args.samples)
    if args.solvay:
        measure(frontal_faces(("scrfd_solvay_1927.png",), models, predictor), "solvay", args.samples)
    training_speed(faces)


if __name__ == "__main__":
    main()
