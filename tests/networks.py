"""Random-initialised networks in the published formats, shared by the tests and the bench scripts.

The real checkpoints cannot be downloaded here; these stand in for them with the
same architectures (or small ones of the same layout) and random weights.
"""

import pickle
import sys
import types

import torch
from torch import nn

from pipeline.networks import stylegan2


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics, so a wrong key or a skipped layer shows in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) * 0.5 + 0.75 if name.endswith("running_var") else (
                    torch.randn(tensor.shape, generator=generator) * 0.05
                )
                tensor.copy_(values)
    return model.eval()


SMALL_LAYERS = (1, 2, 1, 1)  # a small ArcFace of the real layout


class TemporaryModules:
    """Base for stand-in modules registered in sys.modules only inside a `with` block; restores the originals."""

    def remember(self, names) -> None:
        self.saved = {name: sys.modules.get(name) for name in names}

    def __exit__(self, *exc):
        for name, module in self.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


SMALL_STYLEGAN = {
    "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 16, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 256, "channel_max": 32, "num_fp16_res": 0, "conv_clamp": 256},
}  # fmt: skip


def small_generator(seed: int = 8, **changes) -> stylegan2.Generator:
    kwargs = {**SMALL_STYLEGAN, **changes}
    model = stylegan2.Generator(**kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("noise_strength", "w_avg")) or name.endswith(".bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return model.eval()


class FakeNvidiaModules(TemporaryModules):
    """`torch_utils.persistence` and `dnnlib.util` just long enough to write a pickle the way NVIDIA's code does."""

    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")

    def __enter__(self):
        self.remember(self.names)
        modules = {name: types.ModuleType(name) for name in self.names}

        def _reconstruct_persistent_obj(meta):
            raise AssertionError("never called while writing")

        _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
        _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
        modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
        self.reconstruct = _reconstruct_persistent_obj
        self.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util", "__qualname__": "EasyDict"})
        modules["dnnlib.util"].EasyDict = self.EasyDict
        sys.modules.update(modules)
        return self

    def dump(self, content, path, module_src: str):
        """Pickle like persistence.persistent_class: each module as (_reconstruct_persistent_obj, (meta,))."""
        fake = self

        class Pickler(pickle.Pickler):
            def reducer_override(self, obj):
                if isinstance(obj, nn.Module) and type(obj).__module__ == stylegan2.__name__:
                    state = dict(obj.__dict__, _init_args=(), _init_kwargs=getattr(obj, "fake_init_kwargs", fake.EasyDict()))
                    meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": type(obj).__name__, "state": state}
                    return (fake.reconstruct, (meta,))
                return NotImplemented

        with open(path, "wb") as handle:
            Pickler(handle, protocol=4).dump(content)
