"""Weights: the manifest checks, safe loading, and the RetinaFace drop-in modules."""

import pickle

import pytest
import torch

from pipeline import weights
from pipeline.networks.retinaface import MOBILENET_CONFIG, RESNET50_CONFIG, RetinaFace
from pipeline.errors import CorruptWeights, MissingWeights, WeightsError
from tests.helpers import PROJECT_ROOT


def test_shipped_checkpoint_matches_the_manifest_and_loads_strictly():
    model = weights.load("retinaface_mobilenet0.25")
    assert not model.training
    boxes, scores, landmarks = model(torch.zeros(1, 3, 64, 64))
    anchors = 2 * (8 * 8 + 4 * 4 + 2 * 2)
    assert boxes.shape == (1, anchors, 4) and scores.shape == (1, anchors, 2) and landmarks.shape == (1, anchors, 10)
    assert torch.allclose(scores.sum(-1), torch.ones(1, anchors))


def test_resnet50_checkpoint_with_module_prefix_loads(tmp_path):
    """A random-initialised network saved in the published layout (DataParallel `module.` keys)."""
    original = RetinaFace(RESNET50_CONFIG).eval()
    path = tmp_path / "Resnet50_Final.pth"
    torch.save({f"module.{key}": value for key, value in original.state_dict().items()}, path)
    loaded = weights.load("retinaface_resnet50", path)
    image = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for ours, theirs in zip(loaded(image), original(image)):
            assert torch.allclose(ours, theirs, atol=1e-6)


def test_plain_state_dict_of_the_wrong_backbone_is_refused(tmp_path):
    path = tmp_path / "mobilenet.pth"
    torch.save(RetinaFace(MOBILENET_CONFIG).state_dict(), path)
    with pytest.raises(CorruptWeights):
        weights.load("retinaface_resnet50", path)


def test_loading_a_pickle_that_runs_code_does_not_run_it(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"body.stage1.0.0.weight": Exploit()}, handle)
    with pytest.raises(CorruptWeights):
        weights.load("retinaface_mobilenet0.25", path)
    assert not marker.exists()


def test_wrong_size_or_hash_is_caught(tmp_path):
    entry = weights.entry_for("retinaface_mobilenet0.25")
    good = (PROJECT_ROOT / "weights" / entry.file).read_bytes()
    (tmp_path / entry.file).write_bytes(good[:-1])
    with pytest.raises(CorruptWeights, match="bytes"):
        weights.locate(entry.name, tmp_path)
    (tmp_path / entry.file).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(CorruptWeights, match="sha256"):
        weights.locate(entry.name, tmp_path)


def test_missing_file_names_itself_and_its_fetch_command(tmp_path):
    with pytest.raises(MissingWeights) as caught:
        weights.locate("retinaface_resnet50", tmp_path)
    assert caught.value.file.endswith("Resnet50_Final.pth")
    assert "Pytorch_Retinaface" in str(caught.value)


def test_unknown_model_name_is_an_error():
    with pytest.raises(WeightsError):
        weights.load("no_such_model")
