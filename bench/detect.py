"""Detector benchmark: our default detector, alone and with its second opinion, against the reference (CenterFace), in one run.

Prints, for each, the median milliseconds per photo over the test
photos and its recall on each part: ground-truth faces of 20 px or more in the
masked-face photos, the 29 faces of the 1927 Solvay photo, the portraits'
faces, the two faces of about 16 px (searched at twice the size); the faces
reported on the photos without one (animals, objects, textures: none expected);
and detections that match no face (false faces), in all and per 20 photos.

    .venv/bin/python bench/detect.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from pipeline.config import load_config  # noqa: E402
from pipeline.detection import detect_faces  # noqa: E402
from pipeline.detection.boxes import box_iou  # noqa: E402
from pipeline.models import load_detector  # noqa: E402
from pipeline.detection.types import Detections  # noqa: E402
from pipeline.detection.verify import SecondOpinion  # noqa: E402
from tests.helpers import DATA, PHOTOS_WITHOUT_FACES, ground_truth, photo_rgb  # noqa: E402

REFERENCE = "centerface"
SMALL_FACES = "two people at 160x94"
PARTS = ("masked", "solvay", "portraits", "small")
PORTRAIT_FACES = {
    "fr_obama-1080p.jpg": 1, "fr_obama_small.jpg": 1, "fr_two_people.jpg": 2,
    "mpl_grace_hopper.jpg": 1, "skimage_astronaut.png": 1, "skimage_camera.png": 1,
    "scrfd_solvay_1927.png": 29,
    "two people at 160x94": 2,
    **dict.fromkeys(PHOTOS_WITHOUT_FACES, 0),
}


def detector_alone(name: str) -> Callable[[np.ndarray], Detections]:
    settings = load_config().pipeline
    detector = load_detector(name, settings.weights_path)
    return lambda image: detect_faces(image, detector, settings.detection_max_side, settings.detection_score)


def with_second_opinion(name: str) -> Callable[[np.ndarray], Detections]:
    detect = detector_alone(name)
    second_opinion = SecondOpinion(load_detector(REFERENCE, load_config().pipeline.weights_path))
    return lambda image: second_opinion.confirm(image, detect(image))


def part_of(photo_name: str) -> str:
    if photo_name in ground_truth():
        return "masked"
    if photo_name == "scrfd_solvay_1927.png":
        return "solvay"
    if photo_name == SMALL_FACES:
        return "small"
    return "portraits" if PORTRAIT_FACES[photo_name] else "no face"


def measure(detect: Callable[[np.ndarray], Detections], photos: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    """Median ms per photo, faces found and expected per part of the ground truth, and false faces (those on photos without one apart)."""
    truth = ground_truth()
    timings, false_faces = [], 0
    found, total = dict.fromkeys((*PARTS, "no face"), 0), dict.fromkeys((*PARTS, "no face"), 0)
    for photo_name, image in photos.items():
        detect(image)  # warm-up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            detections = detect(image)
            runs.append(time.perf_counter() - start)
        timings.append(statistics.median(runs))
        part = part_of(photo_name)
        if photo_name in truth:
            boxes = np.asarray([b["box"] for b in truth[photo_name]["boxes"]], dtype=float)
            large = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 20]
            iou = box_iou(large, detections.boxes) if len(detections) else np.zeros((len(large), 1))
            found[part] += int((iou.max(axis=1) > 0.3).sum())
            total[part] += len(large)
            if len(detections):
                false_faces += int((box_iou(boxes, detections.boxes).max(axis=0) <= 0.1).sum())
        else:
            expected = PORTRAIT_FACES[photo_name]
            found[part] += min(expected, len(detections))
            total[part] += expected
            false_faces += max(0, len(detections) - expected)
            if not expected:
                found[part] += len(detections)
                total[part] += 1
    return {"median_ms": 1000 * statistics.median(timings), "found": found, "total": total, "false": false_faces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    photos = {path.name: photo_rgb(path.name) for path in sorted(DATA.iterdir()) if path.suffix in (".jpg", ".png")}
    two_people = photos["fr_two_people.jpg"]
    photos[SMALL_FACES] = cv2.resize(two_people, (160, 94), interpolation=cv2.INTER_AREA)  # two faces of about 16 px
    default = load_config().pipeline.detector
    print(f"{len(photos)} photos, {args.repeats} timed runs each, median of per-photo medians")
    print(f"faces found of those expected: masked = ground-truth faces of 20 px or more; small = {SMALL_FACES}")
    print("no face: faces reported / photos without a face; false faces: in all, and per 20 photos")
    header = " ".join(f"{part:>9s}" for part in (*PARTS, "no face"))
    print(f"{'detector':32s} {'median ms':>9s} {header} {'false faces':>11s} {'per 20':>6s}")
    results = {}
    candidates = {default: detector_alone(default), f"{default} + 2nd": with_second_opinion(default), REFERENCE: detector_alone(REFERENCE)}
    for name, detect in candidates.items():
        results[name] = r = measure(detect, photos, args.repeats)
        recall = " ".join(f"{r['found'][part]:>4d}/{r['total'][part]:<4d}" for part in (*PARTS, "no face"))
        print(f"{name:32s} {r['median_ms']:9.1f} {recall} {r['false']:11d} {20 * r['false'] / len(photos):6.2f}")
    for name in (default, f"{default} + 2nd"):
        print(f"time ratio {name}/reference: {results[name]['median_ms'] / results[REFERENCE]['median_ms']:.2f}")


if __name__ == "__main__":
    main()
