"""The folder command (DESIGN.md contract 2, many photos), run as a user runs it: a subprocess."""

import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.helpers import DATA, PROJECT_ROOT, assert_one_line_error, run_pipeline

FACES = ("fr_two_people.jpg", "skimage_astronaut.png")


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def changed_fraction(before: np.ndarray, after: np.ndarray) -> float:
    return float((np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 40).mean())


def test_a_folder_is_blurred_photo_by_photo_and_a_bad_photo_is_skipped_with_one_line(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in (*FACES, "skimage_chelsea.png"):
        shutil.copy(DATA / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x13" * 500)
    (photos / "notes.txt").write_text("not a photo, and not taken from the folder\n")
    result = run_pipeline("process", photos, "--mode", "blur", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stderr.replace("\r", "\n").splitlines() if "broken.jpg" in line]
    assert len(problems) == 1 and "damaged" in problems[0]
    assert "1 of 4 photos failed" in result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["fr_two_people.jpg", "skimage_astronaut.png", "skimage_chelsea.png"]
    for name in FACES:
        assert 0.005 < changed_fraction(pixels(DATA / name), pixels(tmp_path / "out" / name)) < 0.3
    cat = pixels(tmp_path / "out" / "skimage_chelsea.png")
    assert np.array_equal(cat, pixels(DATA / "skimage_chelsea.png")), "a cat has no face to blur"


def test_listed_photos_written_beside_themselves_never_overwrite_an_input(tmp_path):
    inputs = []
    for name in FACES:
        shutil.copy(DATA / name, tmp_path / name)
        inputs.append(tmp_path / name)
    originals = {path.name: path.read_bytes() for path in inputs}
    result = run_pipeline("process", *inputs, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert {path.name: path.read_bytes() for path in inputs} == originals
    results = sorted(path.name for path in tmp_path.iterdir() if path.name not in originals)
    assert results == ["fr_two_people-blur.jpg", "skimage_astronaut-blur.png"]
    with Image.open(tmp_path / "fr_two_people-blur.jpg") as image:
        assert not image.getexif() and "exif" not in image.info


def test_keep_is_refused_for_several_photos(tmp_path):
    result = run_pipeline("process", DATA / FACES[0], DATA / FACES[1], "--keep", "1", "-o", tmp_path)
    assert_one_line_error(result)
    assert "single photo" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_photos_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_pipeline("process", tmp_path / "empty", "-o", tmp_path / "out"))


def test_once_the_detector_export_is_cached_the_folder_command_runs_without_torch(tmp_path):
    """Blur runs RetinaFace's cached ONNX export in onnxruntime: torch is never imported, a second of start-up saved."""
    assert run_pipeline("process", DATA / FACES[0], "-o", tmp_path / "first.jpg").returncode == 0  # exports, if not yet cached
    without_torch = "import runpy, sys; sys.modules['torch'] = None; runpy.run_module('pipeline', run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", without_torch, "process", *(DATA / name for name in FACES), "--mode", "blur", "-o", tmp_path / "out"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name in FACES:
        assert 0.005 < changed_fraction(pixels(DATA / name), pixels(tmp_path / "out" / name)) < 0.3
