"""Reading checkpoints that are whole pickled modules, without running code from them.

Some published checkpoints are not state_dicts but pickled objects: SimSwap's
`arcface_checkpoint.tar` is a pickled `models.arcface_models.ResNet` (older
copies: a dict whose `model` is a DataParallel around it). A normal
`torch.load` would import the classes named in the file and call whatever the
file asks for. Here the unpickler resolves names from an allowlist only:

- torch's own tensor-rebuilding functions and plain containers (the globals
  that `torch.load(weights_only=True)` allows);
- classes in the module prefixes the caller names (e.g. `models.arcface_models`,
  `torch.nn.modules`), which become inert `PickledObject` records: nothing of
  the original class is imported, no `__init__`/`__setstate__` of it runs;
- a few harmless metadata types (numpy scalars, argparse.Namespace), also inert.

Any other global (`os.system`, `builtins.open`, `builtins.eval`, ...) makes the
load fail with `UnsafePickle` before it can be called. `module_state_dict`
then walks the records (`_parameters`, `_buffers`, `_modules`) into a plain
state_dict that our own module loads strictly.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import types
import warnings
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import torch

INERT_METADATA = ("argparse.Namespace", "torch.optim")
PLAIN_GLOBALS = {
    "builtins.dict": dict, "builtins.list": list, "builtins.tuple": tuple, "builtins.set": set,
    "builtins.frozenset": frozenset, "builtins.object": object, "builtins.int": int, "builtins.float": float,
    "builtins.bool": bool, "builtins.str": str, "builtins.bytes": bytes, "builtins.slice": slice,
    "collections.OrderedDict": OrderedDict, "collections.defaultdict": defaultdict,
}  # fmt: skip


class UnsafePickle(pickle.UnpicklingError):
    """The file names a global outside the allowlist; nothing from it was called."""


class PickledObject:
    """An inert record of a pickled object: its original class name and its state."""

    pickled_class = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        """Pickle may call the class with the original's arguments; nothing reads them, so they are not kept."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<pickled {self.pickled_class}>"


def _reconstructor(cls, base, state):
    """Stands in for copyreg._reconstructor (protocol 0/1 objects)."""
    return cls.__new__(cls) if isinstance(cls, type) and issubclass(cls, PickledObject) else base.__new__(base)


def _torch_safe_globals() -> dict[str, Any]:
    from torch import _weights_only_unpickler

    return dict(_weights_only_unpickler._get_allowed_globals())


def _numpy_globals() -> dict[str, Any]:
    """numpy scalars, dtypes and plain arrays: data only (object arrays still resolve through the allowlist)."""
    try:
        import numpy
    except ImportError:
        return {}
    multiarray = getattr(getattr(numpy, "_core", None), "multiarray", None) or numpy.core.multiarray
    values = {"scalar": multiarray.scalar, "_reconstruct": multiarray._reconstruct}
    found = {f"{prefix}.multiarray.{name}": value for prefix in ("numpy.core", "numpy._core") for name, value in values.items()}
    return {**found, "numpy.dtype": numpy.dtype, "numpy.ndarray": numpy.ndarray}


def restricted_pickle_module(class_prefixes: tuple[str, ...], extra_globals: dict | None = None) -> types.SimpleNamespace:
    """A `pickle_module` for `torch.load` whose unpickler only resolves allowlisted names.

    Args:
        class_prefixes: modules whose classes become inert `PickledObject` records.
        extra_globals: further "module.name" -> stand-in object pairs.
    """
    allowed = {**_torch_safe_globals(), **_numpy_globals(), **PLAIN_GLOBALS, "copyreg._reconstructor": _reconstructor}
    allowed.update(extra_globals or {})
    records: dict[str, type] = {}

    def record_class(qualified: str) -> type:
        if qualified not in records:
            records[qualified] = type(qualified.rsplit(".", 1)[-1], (PickledObject,), {"pickled_class": qualified})
        return records[qualified]

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names in protocol 0-2 pickles
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            qualified = f"{module}.{name}"
            if qualified in allowed:
                return allowed[qualified]
            if any(module == p or module.startswith(p + ".") for p in class_prefixes + INERT_METADATA) or (
                qualified in INERT_METADATA
            ):
                return record_class(qualified)
            raise UnsafePickle(f"the file asks for {qualified}, which is not allowed")

    def load(file, **kwargs):
        return Unpickler(file, **kwargs).load()

    return types.SimpleNamespace(__name__="restricted_pickle", Unpickler=Unpickler, load=load)


def load_restricted(path: Path, class_prefixes: tuple[str, ...]) -> Any:
    """`torch.load` of a pickled checkpoint through the restricted unpickler (tensors on the CPU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(
            path, map_location="cpu", pickle_module=restricted_pickle_module(class_prefixes), weights_only=False
        )


def is_module_record(value: Any) -> bool:
    return isinstance(value, PickledObject) and isinstance(getattr(value, "state", None), dict) and (
        "_modules" in value.state or "_parameters" in value.state
    )


def module_state_dict(record: PickledObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The parameters and persistent buffers of a pickled nn.Module record, by their dotted names."""
    state = record.state
    tensors: dict[str, torch.Tensor] = {}
    for name, value in (state.get("_parameters") or {}).items():
        if isinstance(value, torch.Tensor):
            tensors[prefix + name] = value.detach()
    skipped = state.get("_non_persistent_buffers_set") or set()
    for name, value in (state.get("_buffers") or {}).items():
        if isinstance(value, torch.Tensor) and name not in skipped:
            tensors[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if is_module_record(child):
            tensors.update(module_state_dict(child, f"{prefix}{name}."))
    return tensors


def unwrap_data_parallel(record: PickledObject) -> PickledObject:
    """The wrapped module of a (Distributed)DataParallel record; other records unchanged."""
    while record.pickled_class.endswith("DataParallel") and is_module_record(record.state["_modules"].get("module")):
        record = record.state["_modules"]["module"]
    return record


# --- NVIDIA's persistent pickles (stylegan2-ada-pytorch `.pkl`) ----------------------------------


class PersistentRecord(PickledObject):
    """What `torch_utils.persistence._reconstruct_persistent_obj(meta)` would have built, as a record.

    The original exec()s `meta['module_src']` and instantiates `meta['class_name']`
    from it; here the source is dropped unread and only the class name and state kept.
    """


class EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict: a plain dict (attribute access only for reading)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _reconstruct_persistent_obj(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UnsafePickle("a persistent object without a class name")
    record = PersistentRecord()
    record.pickled_class = meta["class_name"]
    record.state = meta.get("state") or {}
    return record


def _load_storage_from_bytes(data: bytes):
    """Stands in for torch.storage._load_from_bytes: the nested file may hold tensors only."""
    import io

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


NVIDIA_GLOBALS = {
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "dnnlib.util.EasyDict": EasyDict,
    "torch.storage._load_from_bytes": _load_storage_from_bytes,
}


def load_nvidia_pickle(path: Path) -> Any:
    """A stylegan2-ada-pytorch `.pkl` (a plain pickle: dict of G, D, G_ema, ...) as records and tensors."""
    module = restricted_pickle_module(("torch.nn", "training", "torch_utils"), NVIDIA_GLOBALS)
    with open(path, "rb") as handle:
        return module.load(handle)
