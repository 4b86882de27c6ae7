"""`pool build --count N`: StyleGAN2-ADA donors, steered to a gender and an age, added to the donor pool.

NVIDIA's ffhq.pkl cannot be downloaded here, so two generators stand in for it:
a tiny random-initialised StyleGAN2-ADA written as NVIDIA's pickle (its pictures
are noise: the command must run end to end and add nobody), and `PortraitGenerator`,
a module with StyleGAN's interface whose pictures are real portraits from
tests/data, chosen by w: the woman when w[0] > 0, else a man, the older one when
w[1] > 0. Everything else (detector, dlib, age/gender estimator, pool) is real.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import dlib
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline import weights
from pipeline.__main__ import main
from pipeline.detection import detect_faces
from pipeline.offline import generated
from pipeline.face.donors import Donor, read_pool
from pipeline.offline.generated import FaceReaders, GenerationRequest, StyleGenerator
from pipeline.face.pool import add_donors, build_pool, fit_donor_face, save_donor
from tests.helpers import PROJECT_ROOT, cached_models, photo_rgb
from tests.networks import SMALL_STYLEGAN, FakeNvidiaModules, small_generator

SIDE = 160  # stand-in pictures, pixels
CALIBRATION_SAMPLES = 32
BATCH_SIZE = 16  # stand-in pictures are cheap; big batches mean fewer switches between torch and onnxruntime
PORTRAITS = {  # name: (test photo, face box in it)
    "woman": ("skimage_astronaut.png", (177, 56, 270, 176)),
    "man": ("fr_obama_small.jpg", (104, 37, 212, 191)),
    "older man": ("fr_two_people.jpg", (792, 45, 937, 256)),
}


def portrait_for(w: np.ndarray) -> str:
    """The stand-in's rule: gender along w[0], the men's age along w[1]."""
    return "woman" if w[0] > 0 else "older man" if w[1] > 0 else "man"


def portrait(name: str) -> np.ndarray:
    """A SIDE² crop around the face of a test photo, framed like a generated face."""
    photo, (x1, y1, x2, y2) = PORTRAITS[name]
    scale = SIDE / (1.8 * max(x2 - x1, y2 - y1))
    matrix = np.array([[scale, 0, SIDE / 2 - scale * (x1 + x2) / 2], [0, scale, SIDE / 2 - scale * (y1 + y2) / 2]])
    return cv2.warpAffine(photo_rgb(photo), matrix, (SIDE, SIDE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


class PortraitGenerator(torch.nn.Module):
    """Stands in for StyleGAN weights we cannot download: StyleGAN2-ADA's interface, real portraits as pictures.

    Each picture is shifted by up to 8 pixels along w[2] and w[3], so every seed gives a different crop.
    """

    z_dim = w_dim = 4
    num_ws = 3
    c_dim = 0
    img_resolution = SIDE

    def __init__(self):
        super().__init__()
        self.pictures = {name: portrait(name) for name in PORTRAITS}
        self.register_buffer("w_avg", torch.zeros(self.w_dim))
        self.synthesized = 0

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None):
        return self.w_avg.lerp(z.float(), truncation_psi)[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="random"):
        images = []
        for w in ws[:, 0].numpy():
            shift = np.array([[1, 0, 4 * np.clip(w[2], -2, 2)], [0, 1, 4 * np.clip(w[3], -2, 2)]])
            picture = cv2.warpAffine(self.pictures[portrait_for(w)], shift, (SIDE, SIDE), borderMode=cv2.BORDER_REPLICATE)
            images.append(torch.from_numpy(picture).permute(2, 0, 1).float() / 127.5 - 1)
        self.synthesized += len(images)
        return torch.stack(images)


@pytest.fixture(scope="module")
def readers() -> FaceReaders:
    models = cached_models()
    return FaceReaders(models.detector, models.age_gender, dlib.shape_predictor(str(weights.locate("dlib_landmarks68", models.settings.weights_path))))


@pytest.fixture(scope="module")
def stand_in() -> PortraitGenerator:
    return PortraitGenerator()


@pytest.fixture(scope="module")
def truth(readers, stand_in) -> dict:
    """What our estimator reads in each stand-in portrait: name -> (gender, age)."""
    readings = readers.read_all(list(stand_in.pictures.values()))
    return {name: (reading.gender, reading.age) for name, reading in zip(stand_in.pictures, readings)}


def make_weights_dir(folder, readers: FaceReaders):
    """A weights folder with our detector's file and a pool of one donor (Grace Hopper), like a built pool."""
    folder.mkdir(exist_ok=True)
    detector_file = "retinaface_mobilenet0.25.pth"
    os.symlink(PROJECT_ROOT / "weights" / detector_file, folder / detector_file)
    image = photo_rgb("mpl_grace_hopper.jpg")
    landmarks5 = detect_faces(image, readers.detector, score_threshold=0.8, upscale_below=0).landmarks[0]
    staging = folder / "staging"
    (staging / "faces").mkdir(parents=True)
    points = fit_donor_face(image, landmarks5, readers.predictor)
    donor = save_donor(image, points, staging, "hopper", "tests:hopper", "tests/data/mpl_grace_hopper.jpg", "male", 79.0, "")
    add_donors(folder / "donor_pool", staging, [donor], {"tests": {"license": "public domain"}})
    (folder / "standin.pkl").write_bytes(b"stands in for ffhq.pkl")
    return folder


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, readers):
    return make_weights_dir(tmp_path_factory.mktemp("weights"), readers)


@pytest.fixture(scope="module")
def first_build(weights_dir, stand_in, readers):
    """Three old men generated into the pool, learning the directions first."""
    folder = weights_dir / "donor_pool"
    before = read_pool(folder)
    generator = StyleGenerator.from_network(stand_in, weights_dir / "standin.pkl", batch_size=BATCH_SIZE)
    request = GenerationRequest(count=3, genders=("male",), age_range=(65, 80), calibration_samples=CALIBRATION_SAMPLES)
    return before, generated.add_generated_donors(folder, generator, readers, request)


def test_generated_donors_have_the_requested_gender_and_age_from_our_estimator(first_build, truth):
    _, report = first_build
    assert len(report.donors) == 3
    gender, age = truth["older man"]
    assert gender == "male" and 65 <= age <= 80
    for donor in report.donors:
        assert donor.gender == "male" and abs(donor.age - age) < 5, donor
        assert donor.source.startswith("stylegan2:standin.pkl:seed") and donor.identity.startswith("stylegan2:")
    assert len({donor.identity for donor in report.donors}) == 3


def test_steered_samples_mostly_hit_the_requested_gender_and_age_before_rejection(first_build):
    _, report = first_build
    # Unsteered, a quarter of the stand-in's pictures are the older man.
    assert report.steered_faces >= 3
    assert report.right_gender / report.steered_faces >= 0.75
    assert report.age_within_tolerance / report.steered_faces >= 0.6
    lines = "\n".join(report.summary())
    assert f"generated {report.images} images for 3 donors" in lines and "right gender" in lines and "learned from 32 images" in lines


def test_generated_donors_join_the_pool_and_existing_donors_stay(first_build, weights_dir):
    before, report = first_build
    pool = read_pool(weights_dir / "donor_pool")
    assert before.donors[0] in pool.donors
    assert {donor.id for donor in report.donors} <= {donor.id for donor in pool.donors}
    assert all(pool.image_path(donor).is_file() for donor in pool.donors)
    assert pool.sources["tests"] == {"license": "public domain"}
    assert "non-commercial" in pool.sources["stylegan2:standin.pkl"]["license"]
    assert not [path for path in weights_dir.iterdir() if ".generated." in path.name]  # no staging left behind


def test_learned_directions_follow_the_generators_gender_and_age_coordinates(first_build, weights_dir, stand_in):
    directions = first_build[1].directions
    assert directions.gender_normal[0] > 0.9  # towards the woman, along w[0]
    assert directions.age_axis[1] > 0.8  # older along w[1]
    generator = StyleGenerator.from_network(stand_in, weights_dir / "standin.pkl", batch_size=BATCH_SIZE)
    saved = generated.Directions.load(generated.directions_path(weights_dir / "donor_pool", generator.sha256))
    assert np.array_equal(saved.gender_normal, directions.gender_normal) and saved.faces == directions.faces


@pytest.mark.parametrize("gender, age, wanted", [("male", 72, "older man"), ("male", 50, "man"), ("female", 35, "woman")])
def test_steering_moves_random_latents_to_the_requested_portrait(first_build, gender, age, wanted):
    directions = first_build[1].directions
    latents = 0.7 * np.random.default_rng(3).standard_normal((50, PortraitGenerator.w_dim))
    hits = [portrait_for(directions.steer(w, gender, age)) == wanted for w in latents]
    assert np.mean(hits) >= 0.85


def test_a_second_build_reuses_the_saved_directions(first_build, weights_dir, stand_in, readers, truth):
    generator = StyleGenerator.from_network(stand_in, weights_dir / "standin.pkl", batch_size=BATCH_SIZE)
    saved = generated.directions_path(weights_dir / "donor_pool", generator.sha256)
    modified = saved.stat().st_mtime_ns
    before = read_pool(weights_dir / "donor_pool")
    synthesized = stand_in.synthesized
    request = GenerationRequest(count=1, genders=("female",), age_range=(25, 45))
    report = generated.add_generated_donors(weights_dir / "donor_pool", generator, readers, request)
    assert report.directions_note.startswith("reused") and saved.stat().st_mtime_ns == modified
    assert stand_in.synthesized - synthesized == report.images  # no calibration images
    after = read_pool(weights_dir / "donor_pool")
    assert set(before.donors) <= set(after.donors) and len(after.donors) == len(before.donors) + 1
    assert report.donors[0].gender == truth["woman"][0] == "female" and abs(report.donors[0].age - truth["woman"][1]) < 5
    assert len({donor.identity for donor in after.donors}) == len(after.donors)


def test_rebuilding_from_openpeople_keeps_the_generated_donors(first_build, weights_dir, readers, tmp_path):
    folder = tmp_path / "donor_pool"
    shutil.copytree(weights_dir / "donor_pool", folder)
    kept = [donor for donor in read_pool(folder).donors if not donor.source.startswith("openpeople")]
    person = tmp_path / "openpeople" / "P100"  # one person laid out like the openpeople package's
    (person / "assets").mkdir(parents=True)
    demographics = {"age_range": "30-40", "sex": "Female"}
    (person / "metadata.json").write_text(json.dumps({"character_details": {"demographics": demographics}}))
    Image.fromarray(photo_rgb("skimage_astronaut.png")).save(person / "assets" / "studio_portrait.jpg")
    build_pool(folder, tmp_path / "openpeople", readers.detector, readers.predictor)
    pool = read_pool(folder)
    assert set(kept) <= set(pool.donors) and all(pool.image_path(donor).is_file() for donor in pool.donors)
    added = [donor for donor in pool.donors if donor.source.startswith("openpeople")]
    assert [(donor.identity, donor.gender, donor.age) for donor in added] == [("openpeople:P100", "female", 35.0)]
    assert pool.sources["openpeople"]["people"] == 1 and "stylegan2:standin.pkl" in pool.sources
    assert folder.stat().st_mode & 0o005 == 0o005  # a container's worker user (not the builder) can read it


def donor(gender: str, age: float, identity: str) -> Donor:
    return Donor(identity, identity, "", "", gender, age, (), 0.0, 0.0, 0.0, 0.0, 0.3, 0.0, "", (60.0, 12.0, 16.0), 100.0)


def test_the_plan_fills_the_pools_empty_gender_and_decade_cells_first():
    ages = {"female": [21.5, 30, 30, 30, 40, 40, 40], "male": [30, 40, 60]}  # the openpeople pool's people
    existing = [donor(gender, age, f"{gender}{index}") for gender, values in ages.items() for index, age in enumerate(values)]
    requests = generated.plan_donors(existing, 4, generated.GENDERS, (20, 70), np.random.default_rng(0))
    cells = {(request.gender, int(request.age // 10 * 10)) for request in requests}
    assert cells == {("male", 20), ("female", 50), ("male", 50), ("female", 60)}
    only_men = generated.plan_donors(existing, 6, ("male",), (20, 40), np.random.default_rng(0))
    assert all(request.gender == "male" and 20 <= request.age <= 40 for request in only_men)
    assert sum(request.age < 30 for request in only_men) == 4  # 20s were empty, 30s had one man


def random_stylegan_pickle(path):
    """A tiny random-initialised StyleGAN2-ADA written the way NVIDIA's code pickles one."""
    network = small_generator()
    with FakeNvidiaModules() as fake:
        network.fake_init_kwargs = fake.EasyDict(SMALL_STYLEGAN, mapping_kwargs=fake.EasyDict(SMALL_STYLEGAN["mapping_kwargs"]))
        fake.dump({"G_ema": network}, path, module_src="class Generator: pass\n")
    return path


def test_a_random_stylegan_runs_end_to_end_and_leaves_the_pool_unchanged(tmp_path, readers, monkeypatch, capsys):
    weights_dir = make_weights_dir(tmp_path / "weights", readers)
    pickle_path = random_stylegan_pickle(tmp_path / "network-snapshot.pkl")
    index = (weights_dir / "donor_pool" / "index.json").read_bytes()
    monkeypatch.setenv("PIPELINE_WEIGHTS_DIR", str(weights_dir))
    code = main(["pool", "build", "--count", "2", "--calibrate", "4", "--generator", str(pickle_path), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "generated 8 images for 2 donors: 0 had a face, 0 had a usable face; accepted 0" in out
    assert "steering: off" in out and "pool unchanged: 1 faces" in out
    assert (weights_dir / "donor_pool" / "index.json").read_bytes() == index
    assert len(read_pool(weights_dir / "donor_pool").donors) == 1
    assert not list(weights_dir.glob("stylegan2_directions_*"))


def test_the_command_adds_steered_donors_with_the_stand_in(first_build, weights_dir, stand_in, monkeypatch, capsys):
    monkeypatch.setattr(generated, "load_generator", lambda path, device: StyleGenerator.from_network(stand_in, path, device, BATCH_SIZE))
    monkeypatch.setenv("PIPELINE_WEIGHTS_DIR", str(weights_dir))
    before = len(read_pool(weights_dir / "donor_pool").donors)
    options = ["--gender", "male", "--age-range", "40-60", "--generator", str(weights_dir / "standin.pkl"), "--device", "cpu"]
    code = main(["pool", "build", "--count", "1", *options])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "steering: reused the directions" in out and "accepted 1" in out and "s per image" in out
    pool = read_pool(weights_dir / "donor_pool")
    assert len(pool.donors) == before + 1 and f"pool: {before + 1} faces" in out
    assert any(d.gender == "male" and 40 <= d.age <= 60 for d in pool.donors if d.source.startswith("stylegan2:"))


@pytest.mark.parametrize("extra", [[], ["--generator", "nowhere/ffhq-copy.pkl"]])
def test_a_missing_generator_exits_2_with_the_fetch_command(tmp_path, monkeypatch, capsys, extra):
    monkeypatch.setenv("PIPELINE_WEIGHTS_DIR", str(tmp_path))
    assert main(["pool", "build", "--count", "3", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ffhq" in err and "fetch" in err and "Traceback" not in err
