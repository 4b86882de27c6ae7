"""Provenance marks benchmark: their cost on a 12 MP result, the watermark's survival, and its false alarms.

Prints:
- milliseconds per 12 MP (4000×3000) result for each mark (watermark in the
  changed faces, XMP, C2PA signing) and their total, beside the JPEG encoding
  the result needs anyway, for one and for four replaced faces;
- for faces of several sizes, the watermark's best window agreement (out of 64,
  marked at 54 or more) on the clean result, after JPEG quality 70, and after a
  Telegram-style resize to 1280 px plus JPEG quality 70 and 85;
- the best window agreement of every test photo that was never marked, before
  and after that recompression, and the chance rate of a window reaching 54.

    .venv/bin/python bench/provenance.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from pipeline.config import ProvenanceSettings  # noqa: E402
from pipeline.imageio import encode_photo  # noqa: E402
from pipeline.provenance import Edit, mark_file, watermark, watermark_result  # noqa: E402
from tests.helpers import DATA, photo_rgb  # noqa: E402

WIDTH, HEIGHT = 4000, 3000


def twelve_megapixel_result(face_sides: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(original, changed): a test photo scaled to 12 MP, with round "faces" of these sides changed."""
    original = cv2.resize(photo_rgb("fr_two_people.jpg"), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    changed = original.copy()
    for index, side in enumerate(face_sides):
        centre = (600 + index * 900, 1200)
        cv2.circle(changed, centre, side // 2, (200, 160, 140), -1)
        cv2.circle(changed, centre, side // 4, (90, 60, 50), -1)
    return original, changed


def time_marks(original: np.ndarray, changed: np.ndarray, settings: ProvenanceSettings, repeats: int) -> dict[str, float]:
    edit = Edit.from_modes({"replace"})
    timings: dict[str, list[float]] = {"watermark": [], "jpeg encode (not a mark)": [], "xmp + c2pa": []}
    for _ in range(repeats):
        result = changed.copy()  # marked in place
        started = time.perf_counter()
        marked = watermark_result(original, result, edit, settings)
        encoded_at = time.perf_counter()
        data = encode_photo(marked, "jpeg")
        signed_at = time.perf_counter()
        mark_file(data, "image/jpeg", edit, settings)
        done = time.perf_counter()
        timings["watermark"].append((encoded_at - started) * 1000)
        timings["jpeg encode (not a mark)"].append((signed_at - encoded_at) * 1000)
        timings["xmp + c2pa"].append((done - signed_at) * 1000)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    medians["all marks"] = medians["watermark"] + medians["xmp + c2pa"]
    return medians


def recompressed(image: np.ndarray, quality: int, long_side: int | None = None) -> np.ndarray:
    if long_side and max(image.shape[:2]) > long_side:
        scale = long_side / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def chance_per_window(threshold: int, blocks: int = watermark.WINDOW**2) -> float:
    return sum(math.comb(blocks, k) for k in range(threshold, blocks + 1)) / 2**blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a busy machine inflates every number)")
    with tempfile.TemporaryDirectory() as state:
        settings = ProvenanceSettings(state_dir=state)
        print(f"cost per {WIDTH}×{HEIGHT} result, median of {args.repeats} (ms):")
        for sides in ([600], [400, 400, 400, 400]):
            original, changed = twelve_megapixel_result(sides)
            timings = time_marks(original, changed, settings, args.repeats)
            print(f"  faces {sides}: " + ", ".join(f"{name} {ms:.0f}" for name, ms in timings.items()))
    threshold = watermark.WINDOW_THRESHOLD
    print(f"watermark: best window agreement of {watermark.WINDOW**2} (marked at {threshold}+), 12 MP result:")
    print("  face side px: clean / JPEG 70 / 1280 px + JPEG 70 / 1280 px + JPEG 85")
    for side in (150, 200, 250, 300, 400, 600):
        original, changed = twelve_megapixel_result([side])
        marked = watermark_result(original, changed, Edit.from_modes({"replace"}), ProvenanceSettings())
        scores = [watermark.best_window_agreement(image) for image in (
            marked, recompressed(marked, 70), recompressed(marked, 70, 1280), recompressed(marked, 85, 1280))]
        print(f"  {side:4d}: " + " / ".join(f"{score}{'' if score >= threshold else ' (missed)'}" for score in scores))
    print(f"never marked test photos (chance per window: {chance_per_window(threshold):.1e}): clean / 1280 px + JPEG 70")
    false_alarms, photos = 0, sorted(p for p in DATA.iterdir() if p.suffix in (".jpg", ".png"))
    for path in photos:
        image = photo_rgb(path.name)
        scores = [watermark.best_window_agreement(image), watermark.best_window_agreement(recompressed(image, 70, 1280))]
        false_alarms += sum(score >= threshold for score in scores)
        print(f"  {path.name:32s} {scores[0]} / {scores[1]}")
    print(f"false alarms: {false_alarms} of {2 * len(photos)} checks")


if __name__ == "__main__":
    main()
