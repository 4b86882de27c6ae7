"""Face detection on real photos: recall, false faces, coordinates, age and gender."""

import shutil

import numpy as np
import pytest

from pipeline.analysis import confirmed_faces, find_faces
from pipeline.detection import detect_faces
from pipeline.detection.boxes import box_iou
from tests.helpers import PHOTOS_WITHOUT_FACES, cached_models, ground_truth, photo_rgb

MIN_GT_FACE_PX = 20


def matched_ground_truth(name: str, models) -> tuple[int, int, int]:
    """(ground-truth faces of 20 px or more found, their count, detections matching no ground-truth face)."""
    image = photo_rgb(name)
    detections = confirmed_faces(image, models)
    boxes = np.asarray([b["box"] for b in ground_truth()[name]["boxes"]], dtype=float)
    large = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= MIN_GT_FACE_PX]
    if len(detections) == 0:
        return 0, len(large), 0
    found = int((box_iou(large, detections.boxes).max(axis=1) > 0.3).sum())
    unmatched = int((box_iou(boxes, detections.boxes).max(axis=0) <= 0.3).sum())
    return found, len(large), unmatched


def test_finds_at_least_28_of_29_faces_in_the_1927_solvay_photo():
    faces, _ = find_faces(photo_rgb("scrfd_solvay_1927.png"), cached_models())
    assert 28 <= len(faces) <= 30


def test_finds_masked_faces_of_20px_and_more():
    models = cached_models()
    found = total = 0
    for name in ground_truth():
        photo_found, photo_total, _ = matched_ground_truth(name, models)
        found, total = found + photo_found, total + photo_total
    # 39 of 43 measured; the 4 missed are cut by the left border or hidden behind a microphone.
    assert found / total >= 0.9, f"found {found} of {total}"


def test_finds_faces_that_the_reference_detector_finds_on_masked_photos():
    ours = sum(matched_ground_truth(name, cached_models())[0] for name in ground_truth())
    reference = sum(matched_ground_truth(name, cached_models("centerface"))[0] for name in ground_truth())
    assert ours >= reference


@pytest.mark.parametrize(
    "name, count",
    [("fr_two_people.jpg", 2), ("mpl_grace_hopper.jpg", 1), ("skimage_astronaut.png", 1), ("fr_obama-1080p.jpg", 1), ("skimage_camera.png", 1)],
)
def test_portraits_have_exactly_their_faces(name, count):
    faces, _ = find_faces(photo_rgb(name), cached_models())
    assert len(faces) == count


def test_no_face_in_a_photo_without_people():
    rng = np.random.default_rng(0)
    texture = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    sky = np.zeros((480, 640, 3), dtype=np.uint8) + np.array([120, 170, 230], dtype=np.uint8)
    for image in (texture, sky):
        faces, _ = find_faces(image, cached_models())
        assert faces == ()


@pytest.mark.parametrize("name", PHOTOS_WITHOUT_FACES)
def test_no_face_on_animals_and_objects(name):
    faces, _ = find_faces(photo_rgb(name), cached_models())
    assert faces == ()


def test_the_second_opinion_drops_a_drawn_face_and_a_dark_blob_but_no_real_face():
    """RetinaFace alone reports a cartoon (photo 106) and a dark blob (photo 389) as faces; CenterFace's crop score disagrees.

    Real faces of 20 px or more are all kept. In the crowd of photo 52 a 9 px face and a 13 px one are dropped,
    and so are a phone held up and two heads mostly hidden behind others, whose eyes are not darker than around them.
    """
    models = cached_models()
    for name in ground_truth():
        image = photo_rgb(name)
        alone = detect_faces(image, models.detector, models.settings.detection_max_side, models.settings.detection_score)
        confirmed = confirmed_faces(image, models)
        boxes = np.asarray([b["box"] for b in ground_truth()[name]["boxes"]], dtype=float)
        large = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= MIN_GT_FACE_PX]
        found_alone = (box_iou(large, alone.boxes).max(axis=1) > 0.3).sum()
        assert (box_iou(large, confirmed.boxes).max(axis=1) > 0.3).sum() == found_alone, name
        dropped = len(alone) - len(confirmed)
        expected = {"kagglemask_maksssksksss106.jpg": 1, "kagglemask_maksssksksss389.jpg": 1, "kagglemask_maksssksksss52.jpg": 5}
        assert dropped == expected.get(name, 0), name


def test_no_face_on_the_phone_held_up_in_the_crowd():
    """Photo 52: RetinaFace scores a phone screen held over a head 0.97; its "eyes" are no darker than around them."""
    phone = np.asarray([[213, 17, 225, 31]], dtype=float)
    confirmed = confirmed_faces(photo_rgb("kagglemask_maksssksksss52.jpg"), cached_models())
    assert box_iou(phone, confirmed.boxes).max() < 0.1


def test_real_eyes_are_darker_than_the_bridge_and_cheeks_and_the_phones_are_not():
    from pipeline.detection.verify import MIN_EYE_CONTRAST, eye_contrast, face_crop

    image = photo_rgb("kagglemask_maksssksksss52.jpg")
    models = cached_models()
    found = detect_faces(image, models.detector, models.settings.detection_max_side, models.settings.detection_score)
    truth = np.asarray([b["box"] for b in ground_truth()["kagglemask_maksssksksss52.jpg"]["boxes"]], dtype=float)
    phone = box_iou(np.asarray([[213, 17, 225, 31]], dtype=float), found.boxes)[0].argmax()
    real = np.nonzero((box_iou(truth, found.boxes).max(axis=0) > 0.5) & (found.boxes[:, 2] - found.boxes[:, 0] >= 20))[0]
    contrast = [eye_contrast(*face_crop(image, found.boxes[i]), found.landmarks[i]) for i in [phone, *real]]
    assert len(real) >= 10
    assert contrast[0] < MIN_EYE_CONTRAST <= min(contrast[1:])


def test_onnxruntime_finds_the_faces_the_torch_network_finds():
    """On a CPU RetinaFace runs as an ONNX export of the loaded checkpoint; it must see what the checkpoint sees."""
    from pipeline import weights
    from pipeline.detection.retinaface import RetinaFaceDetector

    exported = cached_models().detector
    assert exported.onnx_model is not None
    in_torch = RetinaFaceDetector(exported.config, weights.load("retinaface_mobilenet0.25"))
    for name in ("scrfd_solvay_1927.png", "kagglemask_maksssksksss52.jpg"):
        image = photo_rgb(name)
        ours, reference = detect_faces(image, exported), detect_faces(image, in_torch)
        assert len(ours) == len(reference) > 0, name
        assert np.allclose(ours.boxes, reference.boxes, atol=0.5) and np.allclose(ours.scores, reference.scores, atol=1e-3), name


def test_a_changed_checkpoint_is_exported_afresh_not_served_from_the_old_export(tmp_path):
    """The ONNX export is cached beside the checkpoint under a hash of its sha256, so new weights are what runs."""
    import torch

    from pipeline import weights
    from pipeline.detection import retinaface

    checkpoint = tmp_path / "retinaface_mobilenet0.25.pth"
    shutil.copy(weights.locate("retinaface_mobilenet0.25", cached_models().settings.weights_path), checkpoint)
    image = photo_rgb("fr_two_people.jpg")
    assert len(detect_faces(image, retinaface.load(checkpoint))) == 2
    network = weights.load("retinaface_mobilenet0.25", checkpoint)
    with torch.no_grad():
        for head in network.ClassHead:
            head.conv1x1.bias[1::2] -= 100  # each anchor's "face" logit: nothing is a face any more
    torch.save(network.state_dict(), checkpoint)
    assert len(detect_faces(image, retinaface.load(checkpoint))) == 0
    assert len(list(tmp_path.glob(".retinaface_mobilenet0.25.*.onnx"))) == 2


def test_large_photos_come_back_in_original_pixels():
    """The 1080p portrait is downscaled for detection; the face box must still sit on the face."""
    image = photo_rgb("fr_obama-1080p.jpg")
    faces, _ = find_faces(image, cached_models())
    small_faces, _ = find_faces(image[::2, ::2].copy(), cached_models())
    assert np.allclose(np.asarray(faces[0].box) / 2, small_faces[0].box, atol=12)
    left_eye, right_eye = faces[0].landmarks[:2]
    assert faces[0].box[0] < left_eye[0] < right_eye[0] < faces[0].box[2]


def test_faces_cut_by_the_border_are_found():
    image = photo_rgb("skimage_astronaut.png")
    faces, _ = find_faces(image, cached_models())
    x1, _, x2, _ = faces[0].box
    cut = np.ascontiguousarray(image[:, int(x1 + (x2 - x1) * 0.3) :])
    assert len(find_faces(cut, cached_models())[0]) == 1


def test_small_faces_of_16px_are_found():
    image = photo_rgb("fr_two_people.jpg")
    small = np.asarray(__import__("cv2").resize(image, (160, 94), interpolation=__import__("cv2").INTER_AREA))
    faces, _ = find_faces(small, cached_models())
    assert len(faces) == 2
    assert max(face.height for face in faces) < 32


def test_numbering_is_reading_order_and_stable():
    image = photo_rgb("fr_two_people.jpg")
    faces, _ = find_faces(image, cached_models())
    assert [face.number for face in faces] == [1, 2]
    assert faces[0].box[0] < faces[1].box[0]
    group = photo_rgb("scrfd_solvay_1927.png")
    first, _ = find_faces(group, cached_models())
    again, _ = find_faces(group.copy(), cached_models())
    assert [f.box for f in first] == [f.box for f in again]
    assert [f.number for f in first] == list(range(1, len(first) + 1))


@pytest.mark.parametrize(
    "name, genders",
    [
        ("fr_two_people.jpg", ["male", "male"]),
        ("fr_obama_small.jpg", ["male"]),
        ("skimage_astronaut.png", ["female"]),
        ("skimage_camera.png", ["male"]),
    ],
)
def test_gender_is_right_on_the_portraits(name, genders):
    faces, _ = find_faces(photo_rgb(name), cached_models())
    assert [face.gender for face in faces] == genders
    assert all(face.gender_score > 0.5 for face in faces)


@pytest.mark.xfail(strict=True, reason="the dlib gender network calls Grace Hopper (uniform, glasses, 79) male")
def test_gender_is_right_for_grace_hopper():
    faces, _ = find_faces(photo_rgb("mpl_grace_hopper.jpg"), cached_models())
    assert faces[0].gender == "female"


def test_age_is_plausible_on_the_portraits():
    astronaut, _ = find_faces(photo_rgb("skimage_astronaut.png"), cached_models())
    hopper, _ = find_faces(photo_rgb("mpl_grace_hopper.jpg"), cached_models())
    assert 25 <= astronaut[0].age <= 50
    assert hopper[0].age >= 60
