"""Reading a checkpoint's tensors without running code from it, and loading them strictly into a module."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import CorruptWeights


def read_state_dict(path: Path) -> dict:
    """A checkpoint's tensors, loaded without executing code; a `module.` prefix is dropped."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{Path(path).name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CorruptWeights(f"{Path(path).name} does not hold a state_dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_strictly(model, state: dict, name: str):
    """`model` with `state` loaded strictly; a mismatch is a CorruptWeights naming the first problem."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        detail = "; ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise CorruptWeights(f"checkpoint does not fit {name}: {first_line} {detail}"[:400]) from None
    return model
