"""Detector benchmark: our default detector against the reference (CenterFace), in one run.

Prints, for each detector, the median milliseconds per photo over the test
photos and its recall: the 29 faces of the 1927 Solvay photo, ground-truth
faces of 20 px or more in the masked-face photos, and the portraits' faces,
plus detections that match no face (false faces).

    .venv/bin/python bench/detect.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from pipeline.config import load_config  # noqa: E402
from pipeline.detection import detect_faces  # noqa: E402
from pipeline.detection.boxes import box_iou  # noqa: E402
from pipeline.models import load_detector  # noqa: E402
from tests.helpers import DATA, ground_truth, photo_rgb  # noqa: E402

REFERENCE = "centerface"
PORTRAIT_FACES = {
    "fr_obama-1080p.jpg": 1, "fr_obama_small.jpg": 1, "fr_two_people.jpg": 2,
    "mpl_grace_hopper.jpg": 1, "skimage_astronaut.png": 1, "skimage_camera.png": 1,
    "scrfd_solvay_1927.png": 29,
}


def measure(name: str, photos: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    settings = load_config().pipeline
    detector = load_detector(name, settings.weights_path)
    truth = ground_truth()
    timings, found, total, false_faces = [], 0, 0, 0
    for photo_name, image in photos.items():
        detect_faces(image, detector, settings.detection_max_side, settings.detection_score)  # warm-up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            detections = detect_faces(image, detector, settings.detection_max_side, settings.detection_score)
            runs.append(time.perf_counter() - start)
        timings.append(statistics.median(runs))
        if photo_name in truth:
            boxes = np.asarray([b["box"] for b in truth[photo_name]["boxes"]], dtype=float)
            large = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 20]
            iou = box_iou(large, detections.boxes) if len(detections) else np.zeros((len(large), 1))
            found += int((iou.max(axis=1) > 0.3).sum())
            total += len(large)
            if len(detections):
                false_faces += int((box_iou(boxes, detections.boxes).max(axis=0) <= 0.1).sum())
        else:
            expected = PORTRAIT_FACES[photo_name]
            found += min(expected, len(detections))
            total += expected
            false_faces += max(0, len(detections) - expected)
    return {"median_ms": 1000 * statistics.median(timings), "found": found, "total": total, "false": false_faces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    photos = {path.name: photo_rgb(path.name) for path in sorted(DATA.iterdir()) if path.suffix in (".jpg", ".png")}
    default = load_config().pipeline.detector
    print(f"{len(photos)} photos, {args.repeats} timed runs each, median of per-photo medians")
    print(f"{'detector':28s} {'median ms':>10s} {'recall':>12s} {'false faces':>12s}")
    results = {}
    for name in (default, REFERENCE):
        results[name] = r = measure(name, photos, args.repeats)
        print(f"{name:28s} {r['median_ms']:10.1f} {r['found']:>5d}/{r['total']:<3d}({100 * r['found'] / r['total']:3.0f}%) {r['false']:12d}")
    ratio = results[default]["median_ms"] / results[REFERENCE]["median_ms"]
    print(f"time ratio default/reference: {ratio:.2f}")


if __name__ == "__main__":
    main()
