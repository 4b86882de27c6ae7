"""Drop-in torch modules for published checkpoints (DESIGN.md contract 8).

One file per model. Each module carries the original project's parameter names,
so the published file loads with `load_state_dict(strict=True)`, and its
`forward` takes and returns what the original's does. `pipeline.weights.load`
is the way in; `safe_pickle` reads the checkpoints that are whole pickled
modules without running anything from the file.
"""
