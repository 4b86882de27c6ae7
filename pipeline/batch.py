"""Many photos in one run (DESIGN.md contract 2): `python -m pipeline process PHOTO... -o OUTDIR` or `process DIR -o OUTDIR`.

The models are loaded once. In blur mode each photo (read, decode, detect,
blur every face, encode, write) runs on a thread pool as wide as the machine's
cores; torch and OpenCV then get one thread per photo, so the cores work on
different photos instead of contending inside one. Replace and unmask mode
load their models lazily and run one photo at a time. A photo that fails is reported on one line
and skipped; the others go on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TextIO

import numpy as np

from pipeline.config import ProvenanceSettings
from pipeline.errors import PipelineError
from pipeline.models import Models
from pipeline.types import Face

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".gif", ".bmp", ".tif", ".tiff"}
"""Files taken from a folder; formats we cannot read still get their one line."""


@dataclass(frozen=True)
class Failure:
    photo: Path
    message: str


def collect_photos(arguments: Sequence[Path]) -> list[Path]:
    """Each named file, and the photos directly inside each named folder (by name).

    Raises:
        PipelineError: a named path does not exist, or nothing is left to process.
    """
    photos: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            photos.extend(sorted(p for p in argument.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in PHOTO_SUFFIXES))
        elif argument.exists():
            photos.append(argument)
        else:
            raise PipelineError(f"{argument}: no such file or folder", "not_found")
    if not photos:
        raise PipelineError(f"no photos in {', '.join(map(str, arguments))} (looked for {', '.join(sorted(PHOTO_SUFFIXES))})", "not_found")
    return photos


def output_paths(photos: Sequence[Path], folder: Path, mode: str) -> list[Path]:
    """One result path per photo in `folder`: the photo's name, or `NAME-MODE[-N]` where that would be an input or taken.

    PNG stays PNG, everything else becomes JPEG.
    """
    inputs = {photo.resolve() for photo in photos}
    taken: set[Path] = set()
    paths = []
    for photo in photos:
        suffix = ".png" if photo.suffix.lower() == ".png" else ".jpg"
        stems = (photo.stem if n == 0 else f"{photo.stem}-{mode}" if n == 1 else f"{photo.stem}-{mode}-{n}" for n in count())
        path = next(folder / f"{stem}{suffix}" for stem in stems if (folder / f"{stem}{suffix}").resolve() not in inputs | taken)
        taken.add(path.resolve())
        paths.append(path)
    return paths


def change_photo(photo: Path, output: Path, mode: str, models: Models, provenance: ProvenanceSettings) -> None:
    """Change every face of one photo and write the result, re-encoded without metadata but with its provenance marks.

    Raises:
        PipelineError: the photo cannot be read or the result cannot be written.
    """
    from pipeline.analysis import change_faces_reported, encode_result
    from pipeline.imageio import load_photo, read_photo_file

    image = load_photo(read_photo_file(photo), models.settings.max_pixels)
    changed, reports = change_faces_reported(image, faces_to_change(image, mode, models), set(), mode, models)
    try:
        output.write_bytes(encode_result(image, changed, reports, "png" if output.suffix == ".png" else "jpeg", provenance))
    except OSError as error:
        raise PipelineError(f"{output}: cannot write ({error.strerror})", "cannot_write") from None


def faces_to_change(image: np.ndarray, mode: str, models: Models) -> tuple[Face, ...]:
    """The photo's faces; blur needs only where they are, so it skips the age, gender and mask estimates."""
    from pipeline.analysis import confirmed_faces, find_faces

    if mode != "blur":
        return find_faces(image, models)[0]
    detections = confirmed_faces(image, models)
    return tuple(
        Face(number=index + 1, box=tuple(float(v) for v in box), score=float(score), landmarks=tuple((float(x), float(y)) for x, y in points))
        for index, (box, score, points) in enumerate(zip(detections.boxes, detections.scores, detections.landmarks))
    )


def process_photos(
    photos: Sequence[Path], outputs: Sequence[Path], mode: str, models: Models, provenance: ProvenanceSettings, workers: int,
    done: Callable[[int, Failure | None], None] = lambda finished, failure: None,
) -> list[Failure]:
    """Change every face of every photo on `workers` threads; `done(photos finished, failure or None)` after each."""
    failures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(change_photo, photo, output, mode, models, provenance): photo for photo, output in zip(photos, outputs)}
        for finished, future in enumerate(as_completed(futures), start=1):
            failure = None
            try:
                future.result()
            except PipelineError as error:
                failure = Failure(futures[future], str(error))
                failures.append(failure)
            done(finished, failure)
    return failures


class ProgressBar:
    """`[#####-----] 12/33 photos` redrawn in place on a terminal (stderr); failures print above it."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.draw(0)

    def draw(self, finished: int) -> None:
        filled = self.WIDTH * finished // self.total
        self.stream.write(f"\r[{'#' * filled}{'-' * (self.WIDTH - filled)}] {finished}/{self.total} photos")
        self.stream.flush()

    def __call__(self, finished: int, failure: Failure | None) -> None:
        if failure is not None:
            self.stream.write(f"\r{' ' * (self.WIDTH + 30)}\r{failure.photo}: {failure.message}\n")
        self.draw(finished)
        if finished == self.total:
            self.stream.write("\n")


def run(arguments: Sequence[Path], folder: Path, mode: str, models: Models, provenance: ProvenanceSettings) -> None:
    """The folder command: every photo's result in `folder`, a progress bar on stderr.

    Raises:
        PipelineError: bad arguments, a mode that cannot run, or at least one photo failed (after all were tried).
    """
    from pipeline.analysis import require_mode
    from pipeline.models import limit_cpu_threads

    photos = collect_photos(arguments)
    require_mode(mode, models)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PipelineError(f"{folder}: cannot create the output folder ({error.strerror})", "cannot_write") from None
    workers = min(len(photos), os.cpu_count() or 1) if mode == "blur" else 1  # replace and unmask load their models lazily, unshared
    if workers > 1:
        limit_cpu_threads(1)
    failures = process_photos(photos, output_paths(photos, folder, mode), mode, models, provenance, workers, ProgressBar(len(photos)))
    if failures:
        raise PipelineError(f"{len(failures)} of {len(photos)} photos failed; the others are in {folder}", "some_failed")
