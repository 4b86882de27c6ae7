"""Replace mode on the CPU: milliseconds per face for each stage, and per photo with 1 and 10 faces.

    .venv/bin/python bench/replace.py
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path


sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from pipeline.analysis import change_faces_reported, find_faces  # noqa: E402
from pipeline.modes import replace as replace_mode  # noqa: E402
from pipeline.modes.replace import colour, identity, warp  # noqa: E402
from pipeline.modes.replace import donors as donors_module  # noqa: E402
from tests.helpers import cached_models, photo_rgb  # noqa: E402

STAGES = {
    "donor choice": (donors_module, "rank_donors", replace_mode),
    "landmarks": (replace_mode, "prepare_face", None),
    "warp": (warp, "warp_piecewise", replace_mode),
    "colour": (colour, "transfer_colour", replace_mode),
    "blend (sharpness, grain, masks)": (colour, "match_sharpness", replace_mode),
    "identity check": (identity, "describe_face", replace_mode),
}


def instrument(totals: dict) -> None:
    """Wrap each stage's function where replace mode calls it, adding its time to `totals`."""
    for stage, (module, name, caller) in STAGES.items():
        original = getattr(module, name)

        def timed(*args, _original=original, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_stage] += time.perf_counter() - started

        setattr(caller or module, name, timed)
        if caller is None:
            setattr(replace_mode, name, timed)


def main() -> None:
    models = cached_models()
    started = time.perf_counter()
    models.replace.get()
    print(f"load replace models + donor pool index: {1000 * (time.perf_counter() - started):.0f} ms")
    totals: dict = defaultdict(float)
    instrument(totals)
    for name, keep_largest in (("fr_two_people.jpg", True), ("kagglemask_maksssksksss389.jpg", False)):
        image = photo_rgb(name)
        faces, _ = find_faces(image, models)
        keep = set()
        if keep_largest:  # one face changed
            keep = {max(faces, key=lambda f: f.width).number}
        elif len(faces) > 10:  # ten faces changed
            keep = {f.number for f in sorted(faces, key=lambda f: f.width)[: len(faces) - 10]}
        totals.clear()
        started = time.perf_counter()
        _, reports = change_faces_reported(image, faces, keep, "replace", models)
        elapsed = time.perf_counter() - started
        changed = len(faces) - len(keep)
        replaced = sum(r.mode == "replace" for r in reports)
        print(f"\n{name}: {changed} face(s) changed ({replaced} replaced, {changed - replaced} blurred): {1000 * elapsed:.0f} ms, "
              f"{1000 * elapsed / changed:.0f} ms per face")
        for stage in STAGES:
            print(f"  {stage:34s} {1000 * totals[stage] / changed:7.1f} ms per face")
        print("  distances:", [None if r.distance is None else round(r.distance, 3) for r in reports])


if __name__ == "__main__":
    main()
