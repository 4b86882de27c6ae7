"""Unmask mode's networks: metrics, training, checkpoints, resume, evaluation and the `unmask` commands.

Networks are tiny (width 8) and faces small (64 px) so that everything runs in
seconds on a CPU; the faces are real ones from the test photos.
"""

from __future__ import annotations

import io
import math
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.errors import CorruptWeights, MissingWeights, PipelineError
from pipeline.modes.unmask.checkpoint import FORMAT, build_networks, read_checkpoint, save_checkpoint
from pipeline.modes.unmask.inpaint import inpaint_face, inpaint_faces, load_unmask_networks
from pipeline.offline.metrics import image_metrics, mask_iou, ssim
from pipeline.offline.training import (
    IdentityEncoder, TrainOptions, Trainer, collect_folder, evaluate, train,
)
from tests.helpers import DATA, PROJECT_ROOT, assert_one_line_error, cached_models, run_pipeline

SIZE = 64
PORTRAITS = ("fr_two_people.jpg", "skimage_astronaut.png", "fr_obama_small.jpg")
TINY = TrainOptions(steps=1, batch=2, size=SIZE, lr=1e-3, seed=3, segmenter_width=8, inpainter_width=8, save_every=100)
TINY_FLAGS = ("--size", SIZE, "--batch", 2, "--segmenter-width", 8, "--inpainter-width", 8, "--device", "cpu")
DATA_INFO = {"folder": "test portraits", "faces": 0}


@pytest.fixture(scope="module")
def portraits(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("portraits")
    for name in PORTRAITS:
        shutil.copy(DATA / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def samples(portraits):
    return collect_folder(portraits, cached_models(), SIZE)


def trained(samples, out: Path, steps: int, options: TrainOptions = TINY) -> Trainer:
    return train(samples, out, Trainer.start(replace(options, steps=steps), "cpu"), DATA_INFO, progress=io.StringIO())


def resumed(samples, out: Path, steps: int) -> Trainer:
    trainer = Trainer.resume(read_checkpoint(out), steps, TINY.save_every, "cpu")
    return train(samples, out, trainer, DATA_INFO, progress=io.StringIO())


def adam_steps(optimizer) -> set[int]:
    return {int(state["step"]) for state in optimizer.state_dict()["state"].values()}


# --- metrics ---


def test_identical_images_score_perfectly_and_noise_lowers_the_scores():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    same = image_metrics(image, image)
    assert same.psnr == math.inf and same.ssim == pytest.approx(1.0) and same.l1 == 0.0
    scores = []
    for sigma in (4, 16, 48):
        noisy = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)
        scores.append(image_metrics(noisy, image))
    assert scores[0].ssim > scores[1].ssim > scores[2].ssim
    assert scores[0].psnr > scores[1].psnr > scores[2].psnr
    assert scores[0].l1 < scores[1].l1 < scores[2].l1


def test_ssim_of_two_flat_images_is_the_closed_form_luminance_term():
    x, y = torch.full((1, 3, 20, 20), 0.5, dtype=torch.float64), torch.full((1, 3, 20, 20), 0.6, dtype=torch.float64)
    c1 = 0.01**2
    assert float(ssim(x, y)[0]) == pytest.approx((2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1), rel=1e-5)


def test_region_metrics_see_only_the_region():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    changed = image.copy()
    changed[:, 40:] = 255 - changed[:, 40:]
    region = np.zeros((64, 64), bool)
    region[10:50, 5:25] = True  # more than the SSIM window's half-width away from the change
    inside = image_metrics(changed, image, region)
    assert inside.psnr == math.inf and inside.ssim == pytest.approx(1.0) and inside.l1 == 0.0
    assert image_metrics(changed, image).ssim < 0.8
    assert mask_iou(region, region) == 1.0 and mask_iou(region, ~region) == 0.0


# --- training and checkpoints ---


def test_the_test_portraits_give_training_faces(samples):
    assert len(samples) >= 3
    assert all(sample.face.shape == (SIZE, SIZE, 3) for sample in samples)


def test_a_training_step_writes_a_checkpoint_that_reloads_with_the_same_weights(samples, tmp_path):
    out = tmp_path / "unmask.pt"
    trainer = trained(samples, out, steps=1)
    document = read_checkpoint(out)
    assert document["format"] == FORMAT and document["train"]["step"] == 1
    assert document["train"]["data"] == DATA_INFO and set(document["train"]["metrics"]) >= {"mask_loss", "inpaint_loss"}
    segmenter, inpainter = build_networks(document)
    for loaded, original in ((segmenter, trainer.segmenter), (inpainter, trainer.inpainter)):
        for name, tensor in original.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor), name
    networks = load_unmask_networks(out, "cpu")
    assert networks.size == SIZE and networks.step == 1 and not networks.inpainter.training


def test_resume_continues_from_the_saved_step_with_the_optimiser_state(samples, tmp_path):
    out = tmp_path / "unmask.pt"
    trained(samples, out, steps=2)
    trainer = Trainer.resume(read_checkpoint(out), 4, TINY.save_every, "cpu")
    assert trainer.step == 2
    assert adam_steps(trainer.optimizer_segmenter) == adam_steps(trainer.optimizer_inpainter) == {2}
    train(samples, out, trainer, DATA_INFO, progress=io.StringIO())
    assert read_checkpoint(out)["train"]["step"] == 4 and adam_steps(trainer.optimizer_inpainter) == {4}


def test_a_run_stopped_and_resumed_ends_like_an_uninterrupted_one(samples, tmp_path):
    whole = trained(samples, tmp_path / "whole.pt", steps=4)
    trained(samples, tmp_path / "split.pt", steps=2)
    split = resumed(samples, tmp_path / "split.pt", steps=4)
    assert split.step == whole.step == 4
    assert split.rng.bit_generator.state == whole.rng.bit_generator.state  # the same data was drawn
    for a, b in ((split.segmenter, whole.segmenter), (split.inpainter, whole.inpainter)):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(x, y, atol=1e-5), name


def test_wrong_truncated_and_foreign_checkpoints_are_refused_plainly(samples, tmp_path):
    good = tmp_path / "good.pt"
    trained(samples, good, steps=1)
    with pytest.raises(MissingWeights, match="unmask train"):
        read_checkpoint(tmp_path / "absent.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptWeights, match="not a readable unmask checkpoint"):
        read_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"format": "something else", "version": 1}, other)
    with pytest.raises(CorruptWeights, match="not an unmask checkpoint"):
        read_checkpoint(other)
    document = read_checkpoint(good)
    save_checkpoint(tmp_path / "v2.pt", {**document, "version": 2})
    with pytest.raises(CorruptWeights, match="version 2"):
        read_checkpoint(tmp_path / "v2.pt")
    # A pickled object of any class is never unpickled: weights_only refuses it.
    save_checkpoint(tmp_path / "foreign.pt", {**document, "train": {**document["train"], "data": Path("/etc")}})
    with pytest.raises(CorruptWeights, match="refused"):
        read_checkpoint(tmp_path / "foreign.pt")
    wider = {**document, "inpainter": {**document["inpainter"], "config": {"width": 16}}}
    save_checkpoint(tmp_path / "wider.pt", wider)
    with pytest.raises(CorruptWeights, match="does not fit"):
        load_unmask_networks(tmp_path / "wider.pt")


def test_unusable_options_are_refused():
    for bad in (replace(TINY, size=70), replace(TINY, steps=0), replace(TINY, segmenter_width=6), replace(TINY, lr=0.0)):
        with pytest.raises(PipelineError):
            Trainer.start(bad, "cpu")


# --- inference and evaluation ---


def test_inpainting_changes_only_the_hole_at_any_crop_side(samples, tmp_path):
    out = tmp_path / "unmask.pt"
    trained(samples, out, steps=1)
    networks = load_unmask_networks(out)
    face = np.asarray(Image.fromarray(samples[0].face).resize((96, 96)))
    hole = np.zeros((96, 96), np.float32)
    hole[50:80, 25:70] = 1.0
    painted, used = inpaint_face(networks, face, hole)
    assert painted.shape == face.shape and painted.dtype == np.uint8
    assert np.array_equal(used, hole)
    assert np.array_equal(painted[hole == 0], face[hole == 0])
    assert not np.array_equal(painted[hole == 1], face[hole == 1])
    batch, holes = inpaint_faces(networks, np.stack([face, face]))  # the segmenter finds the holes
    assert batch.shape == (2, 96, 96, 3) and holes.shape == (2, 96, 96)
    assert set(np.unique(holes)) <= {0.0, 1.0}
    assert np.array_equal(batch[0][holes[0] == 0], face[holes[0] == 0])


def test_evaluation_measures_the_network_against_the_baselines(samples, tmp_path):
    from pipeline.networks.arcface import ArcFaceResNet

    out = tmp_path / "unmask.pt"
    trained(samples, out, steps=2)
    networks = load_unmask_networks(out)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        arcface = ArcFaceResNet((1, 1, 1, 1)).eval()  # random weights: only the plumbing is checked
    report = evaluate(networks, samples, count=4, seed=5, identity=IdentityEncoder(arcface, "cpu"))
    again = evaluate(networks, samples, count=4, seed=5)
    names = [method.name for method in report.methods]
    assert names == ["masked input", "Telea (true mask)", "network (true mask)", "network (predicted mask)"]
    assert [(m.hole, m.whole) for m in report.methods] == [(m.hole, m.whole) for m in again.methods]  # deterministic
    telea = report.methods[1]
    masked_input = report.methods[0]
    assert telea.hole.psnr > masked_input.hole.psnr  # a meaningful baseline: better than leaving the mask
    assert all(0 <= m.hole.ssim <= 1 and m.whole.psnr > m.hole.psnr for m in report.methods)
    assert 0 <= report.mask_iou <= 1
    assert all(-1 <= m.identity <= 1 for m in report.methods)
    text = report.format()
    assert "PSNR" in text and "Telea (true mask)" in text and "identity (ArcFace" in text
    assert "identity: n/a (not here)" in replace(again, identity_note="not here").format()


# --- the command line ---


def test_train_and_eval_commands(portraits, tmp_path):
    out = tmp_path / "unmask.pt"
    result = run_pipeline("unmask", "train", "--data", portraits, "--out", out, "--steps", 2, *TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "step 1/2" in result.stderr and "step 2/2" in result.stderr and "images/s" in result.stderr
    assert read_checkpoint(out)["train"]["step"] == 2
    again = run_pipeline("unmask", "train", "--data", portraits, "--out", out, "--resume", "--batch", 4)
    assert_one_line_error(again)
    assert "--resume" in again.stderr
    result = run_pipeline("unmask", "eval", "--data", portraits, "--checkpoint", out, "--count", 3, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("network (true mask)", "network (predicted mask)", "Telea (true mask)"):
        assert result.stdout.count(name) == 2  # hole and whole crop
    assert "PSNR" in result.stdout and "SSIM" in result.stdout and "L1" in result.stdout and "IoU" in result.stdout
    assert "identity" in result.stdout


def test_commands_refuse_a_bad_checkpoint_and_a_folder_without_faces(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really a checkpoint")
    empty = tmp_path / "no-faces"
    empty.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(empty / "noise.png")
    result = run_pipeline("unmask", "eval", "--data", DATA, "--checkpoint", broken, "--device", "cpu")
    assert_one_line_error(result)
    assert "broken.pt" in result.stderr
    result = run_pipeline("unmask", "train", "--data", empty, "--out", tmp_path / "u.pt", "--steps", 1, *TINY_FLAGS)
    assert_one_line_error(result)
    assert "no usable face" in result.stderr and not (tmp_path / "u.pt").exists()


def test_ctrl_c_during_training_saves_a_checkpoint_to_resume_from(portraits, tmp_path):
    out = tmp_path / "unmask.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "unmask", "train", "--data", str(portraits), "--out", str(out),
         "--steps", "100000", *map(str, TINY_FLAGS)],
        cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    for line in process.stderr:  # wait until training runs
        lines.append(line)
        if line.startswith("step 1/"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 0, "".join(lines) + rest
    assert "interrupted at step" in rest and "Traceback" not in rest
    step = read_checkpoint(out)["train"]["step"]
    assert 1 <= step < 100000


# --- the trained networks inside unmask mode (path (a)) ---


def test_unmask_mode_paints_with_a_trained_checkpoint_and_leaves_bare_faces_alone(samples, tmp_path):
    from pipeline.analysis import change_faces_reported, find_faces
    from pipeline.types import MASKED_THRESHOLD
    from pipeline.modes.unmask.inpaint import TrainedUnmask
    from tests.helpers import photo_rgb

    trained(samples, tmp_path / "unmask.pt", steps=1)
    models = replace(cached_models(), unmask=TrainedUnmask(tmp_path / "unmask.pt"))
    image = photo_rgb("kagglemask_maksssksksss148.jpg")
    faces, _ = find_faces(image, models)
    result, reports = change_faces_reported(image, faces, set(), "unmask", models)
    reports = {report.number: report for report in reports}
    painted = [face for face in faces if reports[face.number].mode == "unmask"]
    assert painted and all("painted by the trained networks (1 steps)" in reports[f.number].reason for f in painted)
    for face in painted:
        points = np.asarray(face.landmarks)
        lower = (slice(int(points[2, 1]), int(points[3:, 1].max()) + 1), slice(int(points[:, 0].min()), int(points[:, 0].max()) + 1))
        assert np.abs(image[lower].astype(int) - result[lower].astype(int)).mean() > 3
        eyes_top = int(points[:2, 1].min() - 0.1 * (points[3:, 1].mean() - points[:2, 1].mean()))
        above = (slice(max(0, int(face.box[1])), eyes_top), slice(max(0, int(face.box[0])), int(face.box[2])))
        assert np.array_equal(image[above], result[above])
    for face in faces:
        if face.mask < MASKED_THRESHOLD:
            x1, y1, x2, y2 = (int(round(v)) for v in face.box)
            assert np.array_equal(image[max(0, y1):y2, max(0, x1):x2], result[max(0, y1):y2, max(0, x1):x2])


def test_an_unreadable_checkpoint_leaves_unmask_mode_on_the_donor_transplant(tmp_path):
    from pipeline.modes.unmask.inpaint import TrainedUnmask

    (tmp_path / "unmask.pt").write_bytes(b"not a checkpoint")
    assert TrainedUnmask(tmp_path / "unmask.pt").get() is None
    assert TrainedUnmask(tmp_path / "nowhere.pt").get() is None
