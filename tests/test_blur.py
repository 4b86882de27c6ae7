"""Blur mode: non-kept faces change from forehead to chin, kept faces and the rest stay."""

import numpy as np
import pytest

from pipeline.analysis import change_faces, find_faces, process_photo
from pipeline.regions import face_bounds
from tests.helpers import cached_models, ground_truth, photo_bytes, photo_rgb


def box_pixels(image, face):
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    return image[y1:y2, x1:x2]


@pytest.mark.parametrize("style", ["mosaic", "gaussian"])
def test_blur_changes_faces_not_kept_and_leaves_kept_faces_alone(style):
    from dataclasses import replace

    models = cached_models()
    models = replace(models, settings=replace(models.settings, blur_style=style))
    image = photo_rgb("kagglemask_maksssksksss389.jpg")
    faces, _ = find_faces(image, models)
    keep = {faces[0].number, faces[2].number}
    result = change_faces(image, faces, keep, "blur", models)
    for face in faces:
        before, after = box_pixels(image, face), box_pixels(result, face)
        if face.number in keep:
            assert np.array_equal(before, after), f"kept face {face.number} changed"
        else:
            assert np.abs(before.astype(int) - after.astype(int)).mean() > 2, f"face {face.number} not blurred"


def test_pixels_away_from_changed_faces_stay_the_same():
    image = photo_rgb("fr_two_people.jpg")
    faces, _ = find_faces(image, cached_models())
    result = change_faces(image, faces, set(), "blur", cached_models())
    outside = np.ones(image.shape[:2], dtype=bool)
    for face in faces:
        x1, y1, x2, y2 = face_bounds(face, (image.shape[1], image.shape[0]), margin=0.2 * face.height)
        outside[y1:y2, x1:x2] = False
    assert np.array_equal(image[outside], result[outside])


def test_blur_covers_the_chin_of_a_masked_face():
    """Masked faces' boxes stop above the chin; the region below the box must be hidden too."""
    image = photo_rgb("kagglemask_maksssksksss106.jpg")
    faces, _ = find_faces(image, cached_models())
    face = max(faces, key=lambda f: f.height)
    result = change_faces(image, faces, set(), "blur", cached_models())
    x1, _, x2, y2 = (int(round(v)) for v in face.box)
    below = slice(y2, min(image.shape[0], y2 + int(face.height * 0.08)))
    assert np.abs(image[below, x1:x2].astype(int) - result[below, x1:x2].astype(int)).mean() > 1


def test_blurred_faces_are_no_longer_recognisably_detailed():
    """The mosaic leaves no more than a few distinct blocks' worth of detail inside the face."""
    image = photo_rgb("skimage_astronaut.png")
    faces, _ = find_faces(image, cached_models())
    result = change_faces(image, faces, set(), "blur", cached_models())
    inner = box_pixels(result, faces[0])[10:-10, 10:-10].astype(float)
    original = box_pixels(image, faces[0])[10:-10, 10:-10].astype(float)
    assert np.abs(np.diff(inner, axis=1)).mean() < 0.4 * np.abs(np.diff(original, axis=1)).mean()


def test_process_keeps_png_lossless_and_jpeg_as_jpeg():
    models = cached_models()
    png = process_photo(photo_bytes("skimage_astronaut.png"), (), set(), "blur", models)
    jpeg = process_photo(photo_bytes("fr_obama_small.jpg"), (), set(), "blur", models)
    assert (png.content_type, png.extension) == ("image/png", "png")
    assert (jpeg.content_type, jpeg.extension) == ("image/jpeg", "jpg")
    from pipeline.imageio import load_photo

    assert np.array_equal(load_photo(png.data), photo_rgb("skimage_astronaut.png"))


def test_crowd_of_51_blurs_every_face():
    """Every face found is blurred, and so is the centre of all but one of the labelled faces 20 px or wider
    (the one left is a masked face cut by the photo's edge that no detector finds)."""
    name = "kagglemask_maksssksksss52.jpg"
    image = photo_rgb(name)
    faces, _ = find_faces(image, cached_models())
    result = change_faces(image, faces, set(), "blur", cached_models())
    unchanged = [f.number for f in faces if np.array_equal(box_pixels(image, f), box_pixels(result, f))]
    labelled = [b["box"] for b in ground_truth()[name]["boxes"] if b["box"][2] - b["box"][0] >= 20]
    centres = [(slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4)) for x0, y0, x1, y1 in labelled]
    left_as_they_were = [box for box, centre in zip(labelled, centres) if np.array_equal(image[centre], result[centre])]
    assert unchanged == [] and len(labelled) == 18 and len(left_as_they_were) <= 1, left_as_they_were
