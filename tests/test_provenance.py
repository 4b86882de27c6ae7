"""Honest results (pipeline/provenance): every result says how it was made, and nothing about its owner."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import c2pa
import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.analysis import process_photo
from pipeline.config import ProvenanceSettings
from pipeline.provenance import AI_SOURCE_TYPE, watermark
from pipeline.provenance.check import check_file, status_lines
from pipeline.provenance.signing import make_local_ca
from helpers import DATA, PROJECT_ROOT, cached_models, run_pipeline

PLANTED_MAKER_NOTE = b"PLANTED-MAKER-NOTE-7f3a"
PLANTED_GPS_METHOD = b"PLANTED-GPS-METHOD-91c2"
PLANTED_CAMERA = "PlantedCameraModel"
PLANTED = (PLANTED_MAKER_NOTE, PLANTED_GPS_METHOD, PLANTED_CAMERA.encode())
SECRET_FILE_NAME = "jiyoung-holiday-busan"


def with_gps_and_maker_note(name: str) -> bytes:
    """A test photo carrying an EXIF GPS position, a camera model and a maker note."""
    exif = Image.Exif()
    exif[0x0110] = PLANTED_CAMERA  # Model
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0), 27: b"ASCII\x00\x00\x00" + PLANTED_GPS_METHOD})
    exif.get_ifd(0x8769)[0x927C] = PLANTED_MAKER_NOTE  # MakerNote
    buffer = io.BytesIO()
    Image.open(DATA / name).convert("RGB").save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    data = buffer.getvalue()
    assert all(planted in data for planted in PLANTED)  # planted for real, so their absence below means something
    return data


def jpeg_pixels(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def telegram_photo(image: np.ndarray, quality: int = 70) -> np.ndarray:
    """What Telegram's sendPhoto does to a picture: long side at most 1280 px, then JPEG."""
    height, width = image.shape[:2]
    scale = 1280 / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return jpeg_pixels(image, quality)


@pytest.fixture(scope="module")
def replaced(tmp_path_factory) -> tuple[bytes, dict]:
    """A 1920×1080 photo with GPS and a maker note, replaced by `python -m pipeline process`, and its `provenance check --json`."""
    folder = tmp_path_factory.mktemp("replaced")
    source, output = folder / f"{SECRET_FILE_NAME}.jpg", folder / "result.jpg"
    source.write_bytes(with_gps_and_maker_note("fr_obama-1080p.jpg"))
    processed = run_pipeline("process", source, "--keep", "none", "--mode", "replace", "-o", output)
    assert processed.returncode == 0, processed.stderr
    checked = run_pipeline("provenance", "check", output, "--json")
    assert checked.returncode == 0, checked.stderr
    return output.read_bytes(), json.loads(checked.stdout)


def test_replace_result_says_ai_edited_in_xmp_c2pa_and_watermark(replaced):
    data, report = replaced
    assert report == {
        "xmp_digital_source_type": AI_SOURCE_TYPE,
        "c2pa": {"present": True, "valid": True, "actions": ["c2pa.opened", "c2pa.edited"], "digital_source_type": AI_SOURCE_TYPE, "problems": []},
        "watermark": True,
    }


def test_c2pa_reader_validates_the_replace_result_and_finds_the_ai_edit(replaced):
    data, _ = replaced
    with c2pa.Reader("image/jpeg", io.BytesIO(data)) as reader:
        assert reader.get_validation_state() in ("Valid", "Trusted")
        manifest = reader.get_active_manifest()
        everything = reader.json()
    actions = [action for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
               for action in assertion["data"]["actions"]]
    assert actions[0]["action"] == "c2pa.opened"
    [edited] = [action for action in actions if action["action"] == "c2pa.edited"]
    assert edited["digitalSourceType"] == AI_SOURCE_TYPE and "synthetic" in edited["description"]
    assert "thumbnail" not in everything  # neither of the original (an ingredient's) nor of the result
    assert all(set(ingredient) <= {"title", "format", "instance_id", "relationship", "label"} for ingredient in manifest["ingredients"])


def test_replace_result_carries_no_gps_camera_maker_note_or_file_name(replaced):
    data, _ = replaced
    for planted in PLANTED + (SECRET_FILE_NAME.encode(), b"Exif\x00\x00"):
        assert planted not in data, planted


def test_blur_result_says_edited_and_never_ai(tmp_path):
    settings = ProvenanceSettings(state_dir=str(tmp_path))
    data = with_gps_and_maker_note("fr_two_people.jpg")
    result = process_photo(data, *faces_of(data), "blur", cached_models(), settings)
    report = check_file(result.data, settings)
    assert report["xmp_digital_source_type"] is None and report["watermark"] is False
    assert report["c2pa"]["valid"] and report["c2pa"]["actions"][-1] == "c2pa.edited"
    assert report["c2pa"]["digital_source_type"] is None and report["c2pa"]["problems"] == []
    assert b"trainedAlgorithmic" not in result.data and b"AlgorithmicMedia" not in result.data
    for planted in PLANTED + (b"Exif\x00\x00",):
        assert planted not in result.data, planted


def faces_of(data: bytes):
    """(faces, keep none) of a photo, for `process_photo`."""
    from pipeline.analysis import find_faces
    from pipeline.imageio import load_photo

    faces, _ = find_faces(load_photo(data), cached_models())
    return faces, set()


def test_marks_turned_off_leave_a_plain_result(tmp_path):
    data = (DATA / "fr_two_people.jpg").read_bytes()
    result = process_photo(data, *faces_of(data), "blur", cached_models(), ProvenanceSettings(enabled=False, state_dir=str(tmp_path)))
    report = check_file(result.data, ProvenanceSettings(state_dir=str(tmp_path)))
    assert report["c2pa"]["present"] is False and report["xmp_digital_source_type"] is None
    assert not any(tmp_path.iterdir())  # no signing CA made either


def test_replace_watermark_survives_jpeg_70_and_a_telegram_resize(replaced):
    data, _ = replaced
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert pixels.shape[1] == 1920
    assert watermark.detect(jpeg_pixels(pixels, 70))
    assert watermark.detect(telegram_photo(pixels, 70))


def test_watermark_stays_in_the_changed_pixels_and_survives_recompression():
    original = np.asarray(Image.open(DATA / "fr_obama-1080p.jpg").convert("RGB"))
    changed = original.copy()
    cv2.circle(changed, (960, 450), 200, (190, 150, 130), -1)  # a face-sized region that a mode repainted
    inside = np.any(changed != original, axis=2)
    marked = changed.copy()
    watermark.embed(marked, original)
    difference = np.abs(marked.astype(int) - changed.astype(int)).max(axis=2)
    assert difference[~inside].max() == 0 and 0 < difference.max() <= 12  # nothing outside; faint inside
    assert watermark.detect(jpeg_pixels(marked, 70)) and watermark.detect(telegram_photo(marked, 70))


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.suffix in (".jpg", ".png")))
def test_photos_never_marked_do_not_read_as_marked(name):
    image = np.asarray(Image.open(DATA / name).convert("RGB"))
    assert not watermark.detect(image)
    assert not watermark.detect(telegram_photo(image, 70))


def test_status_says_the_local_ca_is_not_publicly_trusted(tmp_path):
    result = run_status({"PROVENANCE_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0 and "local CA" in result.stdout and "not publicly trusted" in result.stdout
    assert (tmp_path / "local-signing.pem").stat().st_mode & 0o077 == 0  # the key is the owner's alone
    assert "off" in run_status({"PROVENANCE_ENABLED": "false"}).stdout


def run_status(environment: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "provenance", "status"], cwd=PROJECT_ROOT,
                          env={**os.environ, **environment}, capture_output=True, text=True, timeout=120)


def test_results_are_signed_with_the_deployers_certificate_when_given(tmp_path):
    make_local_ca(tmp_path / "theirs.pem")  # stands in for a deployer's chain and key
    pem = (tmp_path / "theirs.pem").read_bytes()
    key_start = pem.index(b"-----BEGIN PRIVATE KEY-----")
    (tmp_path / "chain.pem").write_bytes(pem[:key_start])
    (tmp_path / "key.pem").write_bytes(pem[key_start:])
    settings = ProvenanceSettings(state_dir=str(tmp_path / "state"), cert_file=str(tmp_path / "chain.pem"), key_file=str(tmp_path / "key.pem"))
    data = (DATA / "fr_two_people.jpg").read_bytes()
    result = process_photo(data, *faces_of(data), "blur", cached_models(), settings)
    assert check_file(result.data, settings)["c2pa"]["valid"]
    assert not check_file(result.data, ProvenanceSettings(state_dir=str(tmp_path / "elsewhere")))["c2pa"]["valid"]  # nobody else trusts it
    assert "deployer's certificate" in "\n".join(status_lines(settings))
    assert not (tmp_path / "state").exists()  # no local CA made


def test_check_refuses_a_file_that_is_not_a_picture(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list")
    result = run_pipeline("provenance", "check", path, "--json")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_damaged_signing_key_is_one_plain_line_naming_the_file(tmp_path):
    make_local_ca(tmp_path / "local-signing.pem")
    with open(tmp_path / "local-signing.pem", "ab") as file:
        file.write(b"xyz\n")  # junk after the key, as a careless edit leaves it
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "process", str(DATA / "fr_two_people.jpg"), "--mode", "blur", "-o", str(tmp_path / "out.jpg")],
        cwd=PROJECT_ROOT, env={**os.environ, "PROVENANCE_STATE_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "local-signing.pem" in result.stderr
