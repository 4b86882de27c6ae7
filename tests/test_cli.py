"""The command-line contract (DESIGN.md 1-3), run as a user runs it: a subprocess."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import DATA, PROJECT_ROOT, assert_one_line_error, run_pipeline


def test_detect_prints_the_contract_json_and_writes_the_sheet(tmp_path):
    sheet = tmp_path / "sheet.jpg"
    result = run_pipeline("detect", DATA / "fr_two_people.jpg", "--json", "--sheet", sheet)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["image"] == {"width": 1126, "height": 661}
    assert [face["number"] for face in document["faces"]] == [1, 2]
    for face in document["faces"]:
        assert set(face) == {"number", "box", "score", "landmarks", "gender", "gender_score", "age", "mask"}
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= 1126 and 0 <= y1 < y2 <= 661
        assert len(face["landmarks"]) == 5 and all(len(point) == 2 for point in face["landmarks"])
        assert face["gender"] in ("female", "male") and 0.5 <= face["gender_score"] <= 1
        assert 0 < face["score"] <= 1 and 0 < face["age"] < 100
    with Image.open(sheet) as image:
        assert image.format == "JPEG"


def test_detect_reports_coordinates_after_exif_orientation(tmp_path):
    """A photo stored sideways with EXIF orientation 6 is measured as the user sees it."""
    upright = Image.open(DATA / "fr_two_people.jpg")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera stores for orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    document = json.loads(run_pipeline("detect", path, "--json").stdout)
    assert document["image"] == {"width": 1126, "height": 661}
    assert len(document["faces"]) == 2


def test_process_blurs_the_faces_not_kept_and_leaves_kept_ones(tmp_path):
    source = DATA / "skimage_astronaut.png"
    kept, changed = tmp_path / "kept.png", tmp_path / "changed.png"
    assert run_pipeline("process", source, "--keep", "all", "--mode", "blur", "-o", kept).returncode == 0
    assert run_pipeline("process", source, "--keep", "none", "--mode", "blur", "-o", changed).returncode == 0
    original = np.asarray(Image.open(source).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(kept)), original)
    assert not np.array_equal(np.asarray(Image.open(changed)), original)


@pytest.mark.parametrize(
    "name, content",
    [
        ("corrupt.jpg", b"\xff\xd8\xff\xe0" + b"\x13" * 500),
        ("truncated.jpg", (DATA / "mpl_grace_hopper.jpg").read_bytes()[:5000]),
        ("empty.png", b""),
        ("notes.txt", "사진이 아닙니다 — not a photo\n".encode()),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    for args in (("detect", path, "--json"), ("process", path, "--keep", "all", "-o", tmp_path / "out.jpg")):
        assert_one_line_error(run_pipeline(*args))


def test_huge_dimensions_exit_2_with_one_line(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(path)
    result = run_pipeline("detect", path, "--json")
    assert_one_line_error(result)
    assert "too large" in result.stderr.lower() or "megapixel" in result.stderr.lower()


def test_animated_gif_is_refused_with_one_line(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (64, 64), color) for color in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    result = run_pipeline("detect", path, "--json")
    assert_one_line_error(result)
    assert "JPEG" in result.stderr


def test_animated_webp_uses_the_first_frame(tmp_path):
    path = tmp_path / "anim.webp"
    first = Image.open(DATA / "fr_two_people.jpg").convert("RGB")
    first.save(path, save_all=True, append_images=[Image.new("RGB", first.size, "black")], lossless=True)
    document = json.loads(run_pipeline("detect", path, "--json").stdout)
    assert len(document["faces"]) == 2


@pytest.mark.parametrize(
    "args, words",
    [
        (("--keep", "9", "--mode", "blur"), "no face 9"),
        (("--keep", "1", "--mode", "sparkle"), "unknown mode"),
        (("--keep", "one", "--mode", "blur"), "not a face number"),
    ],
)
def test_bad_choices_exit_2_with_one_line(tmp_path, args, words):
    result = run_pipeline("process", DATA / "fr_two_people.jpg", *args, "-o", tmp_path / "out.jpg")
    assert_one_line_error(result)
    assert words in result.stderr


def test_missing_photo_file_exits_2(tmp_path):
    assert_one_line_error(run_pipeline("detect", tmp_path / "nope.jpg", "--json"))


def test_missing_weights_exit_2_naming_the_file_and_the_fetch_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "detect", str(DATA / "fr_obama_small.jpg"), "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PIPELINE_WEIGHTS_DIR": str(tmp_path)},
    )
    assert_one_line_error(result)
    assert "retinaface_mobilenet0.25.pth" in result.stderr
    assert "git checkout" in result.stderr


def test_result_carries_no_exif(tmp_path):
    source = tmp_path / "with_exif.jpg"
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (37.0, 33.0, 0.0)}  # GPS
    Image.open(DATA / "fr_obama_small.jpg").save(source, exif=exif)
    out = tmp_path / "out.jpg"
    assert run_pipeline("process", source, "--keep", "none", "--mode", "blur", "-o", out).returncode == 0
    data = out.read_bytes()
    assert b"Exif" not in data and b"SecretCam" not in data
    assert len(Image.open(io.BytesIO(data)).getexif()) == 0
