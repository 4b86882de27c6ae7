"""Photo loading, validation and metadata-free encoding (pipeline.imageio)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from pipeline.errors import PhotoError
from pipeline.imageio import encode_photo, load_photo, suggest_format

DATA = Path(__file__).parent / "data"
RED, BLUE = (255, 0, 0), (0, 0, 255)


def save_image(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    checksum = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + checksum


def one_bit_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG, built row by row so it never exists in memory."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    rows_per_step = max(1, 4_000_000 // len(row))
    parts = []
    for start in range(0, height, rows_per_step):
        parts.append(compressor.compress(row * min(rows_per_step, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def load_error(data: bytes, **options) -> PhotoError:
    with pytest.raises(PhotoError) as caught:
        load_photo(data, **options)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    "name",
    [
        "mpl_grace_hopper.jpg",
        "skimage_astronaut.png",
        "skimage_camera.png",
        "scrfd_solvay_1927.png",
    ],
)
def test_real_photos_load_as_rgb_uint8(name):
    data = (DATA / name).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size

    pixels = load_photo(data)

    assert pixels.dtype == np.uint8
    assert pixels.shape == (height, width, 3)


def test_webp_loads_with_the_same_pixels():
    original = load_photo((DATA / "skimage_astronaut.png").read_bytes())
    webp = save_image(Image.fromarray(original), "WEBP", lossless=True)

    np.testing.assert_array_equal(load_photo(webp), original)


def test_exif_orientation_6_rotates_size_and_pixels():
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = save_image(stored, "JPEG", quality=95, exif=exif)

    pixels = load_photo(data)

    assert pixels.shape == (40, 20, 3)  # displayed portrait
    # Rotating clockwise brings the stored left half to the top.
    assert np.abs(pixels[5, 10].astype(int) - RED).max() < 30
    assert np.abs(pixels[35, 10].astype(int) - BLUE).max() < 30


def test_grayscale_jpeg_has_three_equal_channels():
    data = save_image(Image.new("L", (16, 16), 90), "JPEG")

    pixels = load_photo(data)

    assert pixels.shape == (16, 16, 3)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert abs(int(pixels[8, 8, 0]) - 90) <= 2


def test_cmyk_jpeg_loads_as_rgb():
    data = save_image(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)

    pixels = load_photo(data)

    assert pixels.shape == (16, 16, 3)
    assert np.abs(pixels[8, 8].astype(int) - RED).max() < 20


def test_16_bit_png_is_scaled_to_8_bit_not_clipped():
    values = np.array([[0, 1000, 32896, 65535]], dtype=np.uint16)
    data = save_image(Image.fromarray(values), "PNG")

    pixels = load_photo(data)

    assert pixels[0, :, 0].tolist() == [0, 4, 128, 255]


def test_rgba_is_composited_onto_white():
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black
    data = save_image(Image.fromarray(rgba), "PNG")

    pixels = load_photo(data)

    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[0, 1].tolist() == [255, 255, 255]
    assert all(abs(int(v) - 127) <= 1 for v in pixels[0, 2])


def test_palette_transparency_becomes_white():
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0])
    img.putpixel((1, 1), 1)
    data = save_image(img, "PNG", transparency=0)

    pixels = load_photo(data)

    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[1, 1].tolist() == [255, 0, 0]


def test_one_bit_png_loads_as_black_and_white():
    img = Image.new("1", (8, 8), 0)
    img.putpixel((3, 3), 1)

    pixels = load_photo(save_image(img, "PNG"))

    assert pixels[3, 3].tolist() == [255, 255, 255]
    assert pixels[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animation_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    data = save_image(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, lossless=True
    )
    with Image.open(io.BytesIO(data)) as img:
        assert getattr(img, "n_frames", 1) == 2  # the file really is animated

    pixels = load_photo(data)

    assert pixels[4, 4].tolist() == list(RED)


def test_broken_icc_profile_is_ignored():
    data = save_image(Image.new("RGB", (8, 8), RED), "PNG", icc_profile=b"not a profile")

    assert load_photo(data)[4, 4].tolist() == list(RED)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(save_image(Image.new("RGB", (8, 8), RED), "GIF"), id="gif"),
        pytest.param(save_image(Image.new("RGB", (8, 8), RED), "BMP"), id="bmp"),
        pytest.param(save_image(Image.new("RGB", (8, 8), RED), "TIFF"), id="tiff"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), id="heic"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", id="pdf"),
        pytest.param("Hello, here is my photo".encode(), id="text"),
    ],
)
def test_other_formats_are_refused_naming_the_accepted_ones(data):
    error = load_error(data)

    assert error.code == "unsupported_format"
    assert "JPEG, PNG or WebP" in str(error)


def test_empty_data_is_refused_as_empty():
    assert load_error(b"").code == "empty"


@pytest.mark.parametrize("name", ["mpl_grace_hopper.jpg", "skimage_astronaut.png"])
def test_truncated_file_is_corrupt(name):
    data = (DATA / name).read_bytes()

    assert load_error(data[: len(data) // 2]).code == "corrupt"


def test_garbage_after_a_png_signature_is_corrupt():
    garbage = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()

    assert load_error(b"\x89PNG\r\n\x1a\n" + garbage).code == "corrupt"


@pytest.mark.parametrize(
    "width, height",
    [
        pytest.param(20000, 20000, id="400MP-bomb"),
        pytest.param(8000, 6000, id="48MP-under-pillows-own-limit"),
    ],
)
def test_too_many_pixels_are_refused_before_decoding(monkeypatch, width, height):
    data = one_bit_png(width, height)
    assert len(data) < 200_000
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: decoded.append(1) or real_load(self)
    )

    tracemalloc.start()
    try:
        error = load_error(data)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.code == "too_large"
    assert "40 megapixels" in str(error)
    assert decoded == []
    assert peak_bytes < 50_000_000


def test_pixel_limit_is_a_parameter():
    data = save_image(Image.new("RGB", (100, 100), RED), "PNG")

    assert load_error(data, max_pixels=9_999).code == "too_large"
    assert load_photo(data, max_pixels=10_000).shape == (100, 100, 3)


def test_encoded_photo_has_no_exif_even_when_the_input_had_it():
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 1
    original = save_image(Image.new("RGB", (32, 32), RED), "JPEG", exif=exif, comment=b"hi")
    with Image.open(io.BytesIO(original)) as img:
        assert dict(img.getexif())  # the input really carries EXIF

    for fmt in ("jpeg", "png"):
        encoded = encode_photo(load_photo(original), fmt)
        with Image.open(io.BytesIO(encoded)) as img:
            assert img.format == fmt.upper()
            assert dict(img.getexif()) == {}
            assert not {"exif", "icc_profile", "comment"} & set(img.info)
        assert b"SecretCam" not in encoded


def test_encoded_png_round_trips_losslessly():
    pixels = load_photo((DATA / "skimage_astronaut.png").read_bytes())

    np.testing.assert_array_equal(load_photo(encode_photo(pixels, "png")), pixels)


def test_encode_refuses_an_unknown_format():
    with pytest.raises(ValueError):
        encode_photo(np.zeros((4, 4, 3), np.uint8), "gif")


def test_png_input_suggests_lossless_output():
    assert suggest_format((DATA / "skimage_astronaut.png").read_bytes()) == "png"
    assert suggest_format((DATA / "mpl_grace_hopper.jpg").read_bytes()) == "jpeg"
