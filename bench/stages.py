"""Per-stage timing for the bench scripts: wrap the functions a mode calls and add up their time."""

from __future__ import annotations

import time


def instrument(stages: dict, totals: dict) -> None:
    """Wrap each stage's function, adding its time to `totals[stage]`.

    Args:
        stages: stage name -> (the module or class that defines the function, its name,
            the module that imported it under its own name, or None).
        totals: stage name -> seconds, usually a `defaultdict(float)`.
    """
    for stage, (owner, name, caller) in stages.items():
        original = getattr(owner, name)

        def timed(*args, _original=original, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_stage] += time.perf_counter() - started

        setattr(owner, name, timed)
        if caller is not None:
            setattr(caller, name, timed)
