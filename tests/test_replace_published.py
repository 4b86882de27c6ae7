"""Replace mode with the published networks (SimSwap, ArcFace, BiSeNet), proven without their weights.

The real checkpoints cannot be downloaded here, so the networks are stand-ins
with the originals' forward signatures: ArcFace is the real architecture with
random weights (it calls every pair of faces the same person), the generator
is an identity, a painter or a tiny random network, and BiSeNet's stand-in
calls grey pixels background and everything else skin. What is tested is ours:
backend choice, alignment, batching, masks, the anonymity decision, paste-back
and unmask's harmonisation.
"""

import dataclasses
import logging
from functools import lru_cache

import numpy as np
import pytest
import torch
from torch import nn

from pipeline import weights
from pipeline.align import template_points, warp_face
from pipeline.analysis import change_faces_reported, find_faces
from pipeline.errors import CorruptWeights, MissingWeights
from pipeline.modes.replace import MAX_DONORS_TRIED, identity
from pipeline.modes.replace.published import PublishedSwap, choose_backend, load_swap
from pipeline.modes.replace.resources import ReplaceResources
from pipeline.types import MASKED_THRESHOLD
from pipeline.networks import arcface
from pipeline.networks.bisenet import IMAGENET_MEAN, IMAGENET_STD
from pipeline.regions import face_bounds, face_scale
from tests.helpers import cached_models, photo_rgb
from tests.networks import SMALL_LAYERS, randomise


class IdentityGenerator(nn.Module):
    """SimSwap's signature, returning the target crop unchanged: a swap that changes nothing."""

    def forward(self, image, latent):
        return image


class PaintingGenerator(nn.Module):
    """SimSwap's signature, painting the whole crop green: a swap that would put face pixels anywhere."""

    def forward(self, image, latent):
        return torch.ones_like(image) * torch.tensor([0.2, 0.7, 0.3]).view(1, 3, 1, 1)


class TinyGenerator(nn.Module):
    """A tiny random network with SimSwap's signature: the identity latent modulates one convolution."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.style = nn.Linear(512, 6)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)

    def forward(self, image, latent):
        scale, shift = self.style(latent).view(-1, 2, 3, 1, 1).unbind(1)
        return torch.sigmoid(4 * (self.conv(image) * (1 + scale) + shift - 0.5))


class GreyIsBackgroundParser(nn.Module):
    """BiSeNet's signature (ImageNet-normalised in, three 19-class logit maps out): grey is background, the rest skin."""

    def forward(self, x):
        rgb = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        grey = (rgb.amax(dim=1) - rgb.amin(dim=1)) < 0.08
        logits = torch.zeros(x.shape[0], 19, *x.shape[2:])
        logits[:, 1] = 1.0
        logits[:, 0] = 2.0 * grey
        return logits, logits, logits


class Recording(nn.Module):
    """A network that remembers the batch size of every call."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.batches: list[int] = []

    def forward(self, *inputs):
        self.batches.append(len(inputs[0]))
        return self.network(*inputs)


def random_arcface() -> nn.Module:
    return randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=True), seed=3)


def models_with(swap: PublishedSwap | None):
    """The test models, with replace mode using `swap` (None: the classical warp)."""
    models = cached_models()
    resources = ReplaceResources(models.settings.weights_path, models.detector, swap_loader=lambda *_: swap)
    return dataclasses.replace(models, replace=resources)


@pytest.fixture
def any_swap_passes(monkeypatch):
    """Anonymity limits every result meets: for tests about geometry and masks, not about the check."""
    for name, value in (("MIN_DISTANCE", 0.0), ("MIN_KEPT_DISTANCE", 0.0), ("MIN_POOL_DISTANCE", 0.0), ("MAX_SIMILARITY", 2.0), ("MAX_KEPT_SIMILARITY", 2.0)):
        monkeypatch.setattr(identity, name, value)


@lru_cache(maxsize=4)
def photo_faces(name: str):
    image = photo_rgb(name)
    return image, find_faces(image, cached_models())[0]


def outside_faces(image: np.ndarray, faces) -> np.ndarray:
    """Bool mask of the photo away from the faces (their regions plus half a face of margin)."""
    outside = np.ones(image.shape[:2], dtype=bool)
    for face in faces:
        x1, y1, x2, y2 = face_bounds(face, (image.shape[1], image.shape[0]), margin=0.5 * face_scale(face))
        outside[y1:y2, x1:x2] = False
    return outside


def box_pixels(face) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    return slice(max(0, y1), y2), slice(max(0, x1), x2)


# --- which backend runs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "present, corrupt, generator, parser",
    [
        (set(), set(), None, False),
        ({"simswap_224"}, set(), None, False),  # no ArcFace, no identity to give
        ({"simswap_224", "arcface_simswap"}, set(), "simswap_224", False),
        ({"simswap_224", "simswap_512", "arcface_simswap", "bisenet_faceparsing"}, set(), "simswap_224", True),
        ({"simswap_512", "arcface_simswap"}, {"simswap_224"}, "simswap_512", False),
        ({"simswap_224", "bisenet_faceparsing"}, {"arcface_simswap"}, None, True),
    ],
)
def test_the_backend_is_chosen_from_the_files_that_verify(monkeypatch, tmp_path, present, corrupt, generator, parser):
    def locate(name, weights_dir):
        if name in corrupt:
            raise CorruptWeights(f"{name} has the wrong size")
        if name not in present:
            raise MissingWeights(name, "fetch it")
        return tmp_path / name

    monkeypatch.setattr(weights, "locate", locate)
    choice = choose_backend(tmp_path)
    assert (choice.generator, choice.parser) == (generator, parser)
    assert [problem.split(":")[0] for problem in choice.problems] == sorted(corrupt)


def test_wrong_weight_files_are_reported_and_replace_mode_stays_classical(tmp_path, caplog):
    """A file of the wrong size is not used; one that verifies but does not load is not either. Neither raises."""
    (tmp_path / weights.entry_for("simswap_224").file).write_bytes(b"not a checkpoint")
    (tmp_path / weights.entry_for("arcface_simswap").file).write_bytes(b"not a checkpoint either")
    with caplog.at_level(logging.WARNING, logger="pipeline.modes.replace.published"):
        assert load_swap(tmp_path) is None
    assert "simswap_224" in caplog.text and "16 bytes" in caplog.text
    caplog.clear()
    (tmp_path / weights.entry_for("simswap_224").file).unlink()
    (tmp_path / weights.entry_for("simswap_512").file).write_bytes(b"not a checkpoint")  # the manifest knows no size for it
    with caplog.at_level(logging.WARNING, logger="pipeline.modes.replace.published"):
        assert choose_backend(tmp_path).generator == "simswap_512"
        assert load_swap(tmp_path) is None
    assert "cannot load" in caplog.text and "not a readable checkpoint" in caplog.text


# --- alignment ----------------------------------------------------------------------------------------


def test_a_face_is_aligned_to_the_simswap_pose_it_has():
    poses = template_points("simswap_newarc", 224)
    rotation = np.array([[0.8, -0.6], [0.6, 0.8]]) * 1.7  # a face turned, 1.7 times the template's size
    image = np.zeros((600, 600, 3), np.uint8)
    for pose in range(5):
        landmarks = poses[pose] @ rotation.T + (150.0, 90.0)
        _, matrix = warp_face(image, landmarks, "simswap_newarc", 224)
        aligned = np.hstack([landmarks, np.ones((5, 1))]) @ matrix.T
        assert np.abs(aligned - poses[pose]).max() < 1e-6, f"pose {pose}"


# --- replace mode -------------------------------------------------------------------------------------


@pytest.mark.parametrize("parser", [None, GreyIsBackgroundParser()], ids=["classical mask", "parse mask"])
def test_an_identity_swap_gives_back_the_photo(any_swap_passes, parser):
    """Geometry: alignment, masks and paste-back undo each other when the generator changes nothing."""
    image, faces = photo_faces("fr_two_people.jpg")
    swap = PublishedSwap(IdentityGenerator(), random_arcface(), parser, size=224)
    result, reports = change_faces_reported(image, faces, set(), "replace", models_with(swap))
    assert [report.mode for report in reports] == ["replace"] * len(faces)
    assert all(report.reason.startswith(swap.backend) for report in reports)
    difference = np.abs(result.astype(int) - image.astype(int))
    changed = difference.max(axis=2) > 0
    assert changed.sum() > 0.5 * sum(face.width * face.height for face in faces)  # the faces were pasted back ...
    assert difference[changed].mean() < 3 and np.percentile(difference[changed], 99) < 16  # ... as they were


def test_nothing_in_front_of_the_face_is_painted_over(any_swap_passes):
    """A grey card over the mouth is background in the target's parse: the swap leaves it alone, though its output
    (green everywhere, which the parser calls skin) would cover it."""
    photo, faces = photo_faces("fr_two_people.jpg")
    face = faces[0]
    points = np.asarray(face.landmarks)
    mouth = points[3:].mean(axis=0)
    eye_to_mouth = float(np.hypot(*(mouth - points[:2].mean(axis=0))))
    x1, y1 = (mouth - (0.5 * eye_to_mouth, 0.3 * eye_to_mouth)).astype(int)
    x2, y2 = (mouth + (0.5 * eye_to_mouth, 0.5 * eye_to_mouth)).astype(int)
    image = photo.copy()
    image[y1:y2, x1:x2] = 128
    swap = PublishedSwap(PaintingGenerator(), random_arcface(), GreyIsBackgroundParser(), size=224)
    result, reports = change_faces_reported(image, [face], set(), "replace", models_with(swap))
    assert reports[0].mode == "replace", reports[0]
    difference = np.abs(result.astype(int) - image.astype(int)).max(axis=2)
    assert difference[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].max() == 0  # the card (less the pixels paste-back interpolates at its edge)
    assert (difference[box_pixels(face)] > 30).mean() > 0.4  # the rest of the face was swapped


def test_each_network_runs_once_per_round_on_all_faces_and_kept_faces_stay(any_swap_passes):
    image, faces = photo_faces("fr_two_people.jpg")
    generator, parser = Recording(TinyGenerator()), Recording(GreyIsBackgroundParser())
    swap = PublishedSwap(generator, random_arcface(), parser, size=224)
    result, reports = change_faces_reported(image, faces, set(), "replace", models_with(swap))
    assert [report.mode for report in reports] == ["replace", "replace"]
    assert generator.batches == [2] and parser.batches == [2, 2]  # targets, then swapped faces
    donors = {report.donor.removesuffix(" (mirrored)").split("-")[1] for report in reports}
    assert len(donors) == 2  # two different synthetic people
    assert np.array_equal(image[outside_faces(image, faces)], result[outside_faces(image, faces)])

    kept = faces[0].number
    result, reports = change_faces_reported(image, faces, {kept}, "replace", models_with(swap))
    assert [report.number for report in reports] == [faces[1].number] and reports[0].mode == "replace"
    assert np.array_equal(image[box_pixels(faces[0])], result[box_pixels(faces[0])])
    assert np.array_equal(image[outside_faces(image, faces[1:])], result[outside_faces(image, faces[1:])])


def test_faces_the_identity_network_still_recognises_are_blurred_and_reported():
    """Random ArcFace weights call every face the original: each face tries its distinct donors, then is blurred."""
    image, faces = photo_faces("fr_two_people.jpg")
    generator = Recording(TinyGenerator())
    swap = PublishedSwap(generator, random_arcface(), size=224)
    result, reports = change_faces_reported(image, faces, {faces[0].number}, "replace", models_with(swap))
    face, report = faces[1], reports[0]
    assert report.mode == "blur" and report.passed is False and "ArcFace similarity" in report.reason
    assert 1 < len(generator.batches) <= MAX_DONORS_TRIED and set(generator.batches) == {1}
    assert np.abs(image[box_pixels(face)].astype(int) - result[box_pixels(face)].astype(int)).mean() > 1
    assert np.array_equal(image[box_pixels(faces[0])], result[box_pixels(faces[0])])


# --- unmask mode's harmonisation ----------------------------------------------------------------------


def test_harmonising_with_an_identity_generator_changes_nothing_but_resampling():
    image, faces = photo_faces("fr_two_people.jpg")
    x1, y1, x2, y2 = face_bounds(faces[0], (image.shape[1], image.shape[0]), margin=20)
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    five = np.asarray(faces[0].landmarks) - (x1, y1)
    harmonised = PublishedSwap(IdentityGenerator(), random_arcface(), size=224).harmonise(crop, crop, five)
    difference = np.abs(harmonised.astype(int) - crop.astype(int))
    assert difference.mean() < 2 and np.percentile(difference, 99) < 16


def test_unmask_harmonisation_runs_end_to_end_with_tiny_random_networks():
    image, faces = photo_faces("kagglemask_maksssksksss389.jpg")
    masked = sorted((face for face in faces if face.mask >= MASKED_THRESHOLD), key=lambda face: -face.width)[:2]
    bare = [face for face in faces if face.mask < MASKED_THRESHOLD][:1]
    changed = masked + bare
    keep = {face.number for face in faces} - {face.number for face in changed}
    swap = PublishedSwap(TinyGenerator(), random_arcface(), size=224)
    harmonised, reports = change_faces_reported(image, faces, keep, "unmask", models_with(swap))
    classical, _ = change_faces_reported(image, faces, keep, "unmask", models_with(None))
    reports = {report.number: report for report in reports}
    for face in masked:
        assert reports[face.number].mode == "unmask" and "harmonised by simswap_224" in reports[face.number].reason
        points = np.asarray(face.landmarks)
        eye_y, mouth_y = points[:2, 1].min(), points[3:, 1].mean()
        lower = (slice(int(points[2, 1]), int(np.ceil(mouth_y)) + 1), slice(int(points[:, 0].min()), int(np.ceil(points[:, 0].max())) + 1))
        assert np.abs(harmonised[lower].astype(int) - classical[lower].astype(int)).mean() > 5, f"face {face.number} not harmonised"
        rows, columns = box_pixels(face)
        above = (slice(rows.start, max(rows.start, int(eye_y - 0.1 * (mouth_y - eye_y)))), columns)
        assert np.array_equal(image[above], harmonised[above]), f"face {face.number} changed above the eyes"
    for face in bare:
        assert reports[face.number].mode == "none"
    for face in bare + [face for face in faces if face.number in keep]:
        assert np.array_equal(image[box_pixels(face)], harmonised[box_pixels(face)]), f"face {face.number} changed"
    outside = outside_faces(image, masked)
    assert np.array_equal(image[outside], harmonised[outside])
