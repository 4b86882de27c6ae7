"""Drop-in modules for published checkpoints (contract 8), proven without the real weights.

Each test saves a random-initialised network in the real published format, loads
it strictly through `pipeline.weights.load(name, path)` and compares outputs.
Spatial sizes are small where the architecture allows (2 shared CPU cores).
The parameter counts are the original networks' (checked against the original
projects' own classes outside this suite).
"""

import os
import pickle
import sys
import types

import pytest
import torch
from torch import nn

from pipeline import weights
from pipeline.errors import CorruptWeights
from pipeline.networks import arcface, bisenet, simswap, stylegan2
from tests.networks import SMALL_LAYERS, SMALL_STYLEGAN, FakeNvidiaModules, TemporaryModules, randomise, small_generator


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_outputs(ours, theirs):
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6, rtol=1e-5)


# --- BiSeNet face parsing -------------------------------------------------------------------------


def test_bisenet_checkpoint_layout_loads_strictly_and_returns_three_logit_maps(tmp_path):
    original = randomise(bisenet.BiSeNet(19))
    state = original.state_dict()
    assert {"cp.resnet.conv1.weight", "cp.resnet.layer4.1.bn2.running_var", "cp.arm16.conv_atten.weight",
            "cp.arm32.bn_atten.bias", "cp.conv_head16.conv.weight", "cp.conv_avg.bn.weight", "ffm.convblk.conv.weight",
            "ffm.conv2.weight", "conv_out.conv_out.weight", "conv_out16.conv.bn.weight", "conv_out32.conv_out.weight"} <= set(state)  # fmt: skip
    assert not any(key.startswith(("cp.resnet.fc", "sp.")) for key in state)
    assert parameter_count(original) == 13_300_416  # 53.2 MB of float32, as 79999_iter.pth (53,289,463 bytes)
    path = tmp_path / "79999_iter.pth"
    torch.save(state, path)
    loaded = weights.load("bisenet_faceparsing", path)
    assert not loaded.training
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        outputs = loaded(image)
        assert_same_outputs(outputs, original(image))
    assert [tuple(out.shape) for out in outputs] == [(1, 19, 64, 96)] * 3


def test_bisenet_legacy_file_with_module_prefix_loads(tmp_path):
    original = randomise(bisenet.BiSeNet(19), seed=1)
    path = tmp_path / "parsing.pth"
    prefixed = {f"module.{key}": value for key, value in original.state_dict().items()}
    torch.save(prefixed, path, _use_new_zipfile_serialization=False)  # the 2019 file predates torch's zip format
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert_same_outputs(weights.load("bisenet_faceparsing", path)(image), original(image))


# --- SimSwap generators ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simswap_224():
    return randomise(simswap.SimSwapGenerator(224), seed=2)


def test_simswap_224_published_layout_and_parameter_count(simswap_224):
    state = simswap_224.state_dict()
    assert parameter_count(simswap_224) == 55_051_779  # 220.2 MB of float32, as latest_net_G.pth (220,243,703 bytes)
    assert {"first_layer.1.weight", "first_layer.2.running_mean", "down1.0.weight", "down3.1.bias",
            "BottleNeck.0.conv1.1.weight", "BottleNeck.8.conv2.1.bias", "BottleNeck.8.style1.linear.weight",
            "BottleNeck.0.style2.linear.bias", "up3.1.weight", "up1.2.running_var", "last_layer.1.weight"} <= set(state)  # fmt: skip
    assert state["BottleNeck.3.style1.linear.weight"].shape == (1024, 512)
    assert not any(key.startswith(("down0", "down4", "up0", "up4", "BottleNeck.9")) for key in state)


def test_simswap_224_checkpoint_loads_strictly_and_outputs_unit_range_images(tmp_path, simswap_224):
    path = tmp_path / "latest_net_G.pth"
    torch.save(simswap_224.state_dict(), path)
    loaded = weights.load("simswap_224", path)
    image, latent = torch.rand(2, 3, 32, 32), torch.nn.functional.normalize(torch.randn(2, 512), dim=1)
    with torch.no_grad():
        result = loaded(image, latent)
        assert_same_outputs(result, simswap_224(image, latent))
        other_identity = loaded(image, torch.nn.functional.normalize(torch.randn(2, 512), dim=1))
    assert result.shape == (2, 3, 32, 32) and 0 <= result.min() and result.max() <= 1
    assert not torch.allclose(result, other_identity)  # the identity latent drives the output


def test_simswap_512_layout_loads_with_module_prefix(tmp_path):
    original = randomise(simswap.SimSwapGenerator(512), seed=3)
    assert parameter_count(original) == 55_079_427
    assert {"first_layer.1.weight", "down0.0.weight", "up0.1.weight", "last_layer.1.weight"} <= set(original.state_dict())
    assert original.state_dict()["first_layer.1.weight"].shape == (32, 3, 7, 7)
    path = tmp_path / "550000_net_G.pth"
    torch.save({f"module.{key}": value for key, value in original.state_dict().items()}, path)
    loaded = weights.load("simswap_512", path)
    image, latent = torch.rand(1, 3, 32, 32), torch.randn(1, 512)
    with torch.no_grad():
        assert_same_outputs(loaded(image, latent), original(image, latent))


def test_a_224_checkpoint_is_refused_as_512(tmp_path, simswap_224):
    path = tmp_path / "latest_net_G.pth"
    torch.save(simswap_224.state_dict(), path)
    with pytest.raises(CorruptWeights, match="simswap_512"):
        weights.load("simswap_512", path)


# --- SimSwap's ArcFace ----------------------------------------------------------------------------

class FakeArcfaceModules(TemporaryModules):
    """`models.arcface_models` as SimSwap's pickles name it; registered only while a test writes a pickle."""

    def __enter__(self):
        package, module = types.ModuleType("models"), types.ModuleType("models.arcface_models")
        package.arcface_models = module
        for original in (arcface.ArcFaceResNet, arcface.IRBlock, arcface.SEBlock):
            name = {"ArcFaceResNet": "ResNet"}.get(original.__name__, original.__name__)
            fake = type(name, (original,), {"__module__": module.__name__, "__qualname__": name})
            setattr(module, name, fake)
        self.remember(("models", "models.arcface_models"))
        sys.modules.update({"models": package, "models.arcface_models": module})
        self.module = module
        return self

    def disguise(self, model: nn.Module) -> nn.Module:
        """Re-class our modules as the original's classes, so the pickle names them as SimSwap's does."""
        for sub in model.modules():
            fake = {"ArcFaceResNet": "ResNet", "IRBlock": "IRBlock", "SEBlock": "SEBlock"}.get(type(sub).__name__)
            if fake:
                sub.__class__ = getattr(self.module, fake)
        return model



def arcface_outputs(model: nn.Module, seed: int = 5) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(seed)) * 2 - 1)


def test_arcface_whole_pickled_module_loads_without_importing_its_classes(tmp_path):
    reference = randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=True), seed=4)
    expected = arcface_outputs(reference)
    path = tmp_path / "arcface_checkpoint.tar"
    with FakeArcfaceModules() as fake:
        torch.save(fake.disguise(randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=True), seed=4)), path)
    assert "models.arcface_models" not in sys.modules
    loaded = weights.load("arcface_simswap", path)
    assert type(loaded) is arcface.ArcFaceResNet and not loaded.training
    assert [len(getattr(loaded, f"layer{i}")) for i in range(1, 5)] == list(SMALL_LAYERS)
    result = arcface_outputs(loaded)
    assert result.shape == (2, 512) and torch.allclose(result, expected, atol=1e-5)
    assert not torch.allclose(result.norm(dim=1), torch.ones(2))  # raw, not L2-normalised


def test_arcface_legacy_dict_with_data_parallel_and_optimizer_loads(tmp_path):
    reference = randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=False), seed=6)
    path = tmp_path / "arcface_checkpoint.tar"
    with FakeArcfaceModules() as fake:
        model = fake.disguise(randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=False), seed=6))
        checkpoint = {"epoch": 31, "model": nn.DataParallel(model), "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    loaded = weights.load("arcface_simswap", path)
    assert not any(".se." in key for key in loaded.state_dict())
    assert torch.allclose(arcface_outputs(loaded), arcface_outputs(reference), atol=1e-5)


def test_arcface_torchscript_and_plain_state_dict_load(tmp_path):
    reference = randomise(arcface.ArcFaceResNet(SMALL_LAYERS, use_se=True), seed=7)
    expected = arcface_outputs(reference)
    scripted = tmp_path / "arcface.pt"
    torch.jit.save(torch.jit.trace(reference, torch.rand(1, 3, 112, 112)), str(scripted))
    plain = tmp_path / "arcface_state.pth"
    torch.save({f"module.{key}": value for key, value in reference.state_dict().items()}, plain)
    for path in (scripted, plain):
        assert torch.allclose(arcface_outputs(weights.load("arcface_simswap", path)), expected, atol=1e-5)


def test_arcface_resnet50_layout():
    model = arcface.ArcFaceResNet()
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 14, 3]
    assert model.fc.in_features == 512 * 7 * 7
    assert parameter_count(model) == 41_257_433
    assert parameter_count(arcface.ArcFaceResNet(use_se=True)) == 41_486_365


# --- Code in pickles never runs -------------------------------------------------------------------


class OpensAFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", [OpensAFile, RunsAShellCommand])
@pytest.mark.parametrize("name", ["arcface_simswap", "simswap_224", "bisenet_faceparsing"])
def test_a_pickle_that_runs_code_is_refused_and_does_not_run(tmp_path, payload, name):
    marker = tmp_path / "ran"
    raw = tmp_path / "raw.pth"
    with open(raw, "wb") as handle:
        pickle.dump({"model": payload(marker)}, handle)
    zipped = tmp_path / "zipped.pth"
    torch.save({"model": payload(marker), "conv_out.conv_out.weight": torch.zeros(1)}, zipped)
    for path in (raw, zipped):
        with pytest.raises(CorruptWeights):
            weights.load(name, path)
    assert not marker.exists()


def test_arcface_refusal_names_the_global(tmp_path):
    path = tmp_path / "arcface_checkpoint.tar"
    torch.save(RunsAShellCommand(tmp_path / "ran"), path)
    with pytest.raises(CorruptWeights, match="system"):
        weights.load("arcface_simswap", path)


# --- Manifest -------------------------------------------------------------------------------------


def test_bisenet_manifest_entry_catches_a_wrong_size_or_hash(tmp_path):
    entry = weights.entry_for("bisenet_faceparsing")
    assert entry.size == 53_289_463 and entry.sha256_prefix == "468e13ca13a9b43c"
    (tmp_path / entry.file).write_bytes(b"\0" * 1000)
    with pytest.raises(CorruptWeights, match="bytes"):
        weights.locate(entry.name, tmp_path)
    (tmp_path / entry.file).write_bytes(b"\0" * entry.size)
    with pytest.raises(CorruptWeights, match="sha256"):
        weights.locate(entry.name, tmp_path)


@pytest.mark.parametrize("name", ["bisenet_faceparsing", "simswap_224", "simswap_512", "arcface_simswap"])
def test_new_entries_name_their_license_and_source(name):
    entry = weights.entry_for(name)
    assert entry.license and entry.source.startswith("https://") and entry.needed_by


# --- StyleGAN2-ADA --------------------------------------------------------------------------------


def test_stylegan2_persistent_pickle_loads_without_executing_its_source(tmp_path):
    marker = tmp_path / "ran"
    source = small_generator()
    path = tmp_path / "network-snapshot.pkl"
    with FakeNvidiaModules() as fake:
        source.fake_init_kwargs = fake.EasyDict(SMALL_STYLEGAN, mapping_kwargs=fake.EasyDict(SMALL_STYLEGAN["mapping_kwargs"]))
        content = {"G": source, "D": None, "G_ema": source, "training_set_kwargs": fake.EasyDict(resolution=16), "augment_pipe": None}
        fake.dump(content, path, module_src=f"open({str(marker)!r}, 'w').close()\nclass Generator: pass\n")
        del source.fake_init_kwargs
    assert "torch_utils.persistence" not in sys.modules and "dnnlib.util" not in sys.modules
    loaded = weights.load("stylegan2_ffhq_1024", path)
    assert not marker.exists()
    assert type(loaded) is stylegan2.Generator and loaded.num_ws == source.num_ws == 6 and not loaded.training
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        image = loaded(z, None, truncation_psi=0.7, noise_mode="const")
        assert torch.equal(image, source(z, None, truncation_psi=0.7, noise_mode="const"))
        assert torch.equal(image, loaded(z, None, truncation_psi=0.7, noise_mode="const"))  # const noise: deterministic
        ws = loaded.mapping(z, None, truncation_psi=0.7)
        assert ws.shape == (2, 6, 32) and torch.equal(loaded.synthesis(ws, noise_mode="const"), image)
        assert not torch.equal(loaded(z, None, noise_mode="random"), loaded(z, None, noise_mode="random"))
        averaged = loaded(torch.randn(2, 32), None, truncation_psi=0, noise_mode="const")
    assert image.shape == (2, 3, 16, 16)
    assert torch.allclose(averaged[0], averaged[1])  # psi 0: every z maps to w_avg


def test_stylegan2_fused_and_unfused_modulated_convolution_agree():
    model = small_generator(seed=9)
    ws = model.mapping(torch.randn(2, 32), None)
    with torch.no_grad():
        fused = model.synthesis(ws, noise_mode="const", fused_modconv=True)
        unfused = model.synthesis(ws, noise_mode="const", fused_modconv=False)
    assert torch.allclose(fused, unfused, atol=1e-4)


def test_stylegan2_upsampling_convolution_matches_the_generic_reference_path():
    """The transposed-convolution fast path equals upsample-pad-filter then conv (the original's fallback)."""
    x, w, f = torch.randn(2, 4, 5, 5), torch.randn(6, 4, 3, 3), stylegan2.setup_filter()
    fast = stylegan2.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)
    generic = torch.nn.functional.conv2d(stylegan2.upfirdn2d(x, f, up=2, padding=(3, 2, 3, 2), gain=4), w.flip([2, 3]))
    assert fast.shape == (2, 6, 10, 10) and torch.allclose(fast, generic, atol=1e-5)


def test_stylegan2_plain_state_dict_infers_its_architecture(tmp_path):
    source = small_generator(seed=10)
    z = torch.randn(1, 32)
    for legacy in (False, True):
        path = tmp_path / f"G_ema_{legacy}.pth"
        torch.save(source.state_dict(), path, _use_new_zipfile_serialization=not legacy)
        loaded = weights.load("stylegan2_ffhq_1024", path)
        assert loaded.img_resolution == 16 and loaded.z_dim == 32 and loaded.mapping.num_layers == 2
        with torch.no_grad():
            ours = loaded(z, None, noise_mode="const", force_fp32=True)
            assert torch.allclose(ours, source(z, None, noise_mode="const"), atol=1e-6)


def test_stylegan2_ffhq_1024_layout():
    model = stylegan2.generator_from_kwargs(stylegan2.FFHQ_1024_KWARGS)
    assert model.num_ws == 18
    assert parameter_count(model) == 30_370_060  # NVIDIA's FFHQ 1024 G_ema
    assert {"mapping.fc7.weight", "mapping.w_avg", "synthesis.b4.const", "synthesis.b1024.conv0.noise_const",
            "synthesis.b1024.torgb.affine.bias", "synthesis.b8.resample_filter"} <= set(model.state_dict())  # fmt: skip


def test_stylegan2_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"G_ema": RunsAShellCommand(marker)}, handle)
    with pytest.raises(CorruptWeights, match="system"):
        weights.load("stylegan2_ffhq_1024", path)
    assert not marker.exists()
