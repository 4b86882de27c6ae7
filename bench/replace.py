"""Replace mode: milliseconds per face for each stage, per photo with 1 and 10 faces changed.

Two backends:

- classical (the CPU warp; what runs without generative weights), with the
  anonymity distances it reaches;
- published (SimSwap 224 + ArcFace + BiSeNet), with random weights in the real
  architectures (the real checkpoints cannot be downloaded here), on `--device`.
  Random weights would fail every anonymity check and retry up to 6 donors, so
  this bench lets the first donor pass: it times one donor round, which is what
  a real swap that passes needs. The similarities it prints are meaningless
  with random weights; with real ones in weights/ (`--real`), they are the
  numbers to set `identity.MAX_SIMILARITY`'s margin from.

    .venv/bin/python bench/replace.py                      # both, CPU
    .venv/bin/python bench/replace.py --backend published --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path


sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from pipeline import analysis  # noqa: E402
from pipeline.analysis import change_faces_reported, find_faces  # noqa: E402
from pipeline.config import PipelineSettings  # noqa: E402
from pipeline.modes import replace as replace_mode  # noqa: E402
from pipeline.face import colour, crop, texture  # noqa: E402
from pipeline.modes.replace import identity, warp  # noqa: E402
from pipeline.face import donors as donors_module  # noqa: E402
from pipeline.modes.replace.published import PublishedSwap, load_swap  # noqa: E402
from pipeline.modes.replace.resources import ReplaceResources  # noqa: E402
from bench.stages import instrument  # noqa: E402
from tests.helpers import cached_models, photo_rgb  # noqa: E402

# stage -> (where the function or method lives, its name, the module that calls it by a name of its own)
STAGES = {
    "donor choice": (donors_module, "rank_donors", replace_mode),
    "landmarks": (crop, "prepare_face", replace_mode),
    "face mask finder": (replace_mode, "face_mask_cover", None),
    "warp": (warp, "warp_piecewise", replace_mode),
    "colour": (colour, "transfer_colour", replace_mode),
    "blend (detail, grain, masks)": (texture, "matched_detail", replace_mode),
    "identity check": (identity, "describe_face", replace_mode),
    "screening (landmarks, skin, dlib)": (replace_mode.ReplaceChanger, "screen", None),
    "align": (PublishedSwap, "align", None),
    "identity (ArcFace)": (PublishedSwap, "embed", None),
    "swap (SimSwap)": (PublishedSwap, "generate", None),
    "parse (BiSeNet)": (PublishedSwap, "parse_faces", None),
    "anonymity check (dlib, warps)": (replace_mode.ReplaceChanger, "judge", None),
    "paste": (analysis, "paste_back", None),
}
CLASSICAL_STAGES = ("donor choice", "landmarks", "face mask finder", "warp", "colour", "blend (detail, grain, masks)", "identity check", "paste")
PUBLISHED_STAGES = (
    "screening (landmarks, skin, dlib)", "donor choice", "align", "identity (ArcFace)", "swap (SimSwap)",
    "parse (BiSeNet)", "anonymity check (dlib, warps)", "paste",
)  # fmt: skip
PHOTOS = (("fr_two_people.jpg", 1), ("kagglemask_maksssksksss389.jpg", 10))  # (photo, faces to change)


def random_swap(device: str) -> PublishedSwap:
    """SimSwap 224, ArcFace (IR-SE-50) and BiSeNet in their real architectures, with random weights."""
    from pipeline.networks import arcface, bisenet, simswap
    from tests.networks import randomise

    networks = (simswap.SimSwapGenerator(224), arcface.ArcFaceResNet(use_se=True), bisenet.BiSeNet(19))
    return PublishedSwap(*(randomise(network).to(device) for network in networks), device=device)


def models_for(backend: str, device: str, real: bool):
    models = cached_models(identities=PipelineSettings.identities)  # the default count, not the tests' few
    if backend == "classical":
        loader = lambda *_: None  # noqa: E731
    elif real:
        loader = load_swap
    else:
        swap = random_swap(device)
        loader = lambda *_: swap  # noqa: E731
    resources = ReplaceResources(
        models.settings.weights_path, models.detector, device, swap_loader=loader,
        age_gender=models.age_gender, identities=models.settings.identities,
    )
    started = time.perf_counter()
    swap = resources.get().swap
    print(f"\n== {swap.backend + ' on ' + device if swap else 'classical warp on the CPU'}: "
          f"models + donor pool index loaded in {1000 * (time.perf_counter() - started):.0f} ms")
    return dataclasses.replace(models, replace=resources)


def run(models, stages: tuple[str, ...], totals: dict) -> None:
    for name, changed_count in PHOTOS:
        image = photo_rgb(name)
        faces, _ = find_faces(image, models)
        by_size = sorted(faces, key=lambda f: f.width)
        keep = {f.number for f in by_size[: max(0, len(faces) - changed_count)]}  # the largest faces are changed
        change_faces_reported(image, faces, keep, "replace", models)  # warm-up (CUDA kernels, donor caches)
        totals.clear()
        started = time.perf_counter()
        _, reports = change_faces_reported(image, faces, keep, "replace", models)
        elapsed = time.perf_counter() - started
        changed = len(faces) - len(keep)
        replaced = sum(r.mode == "replace" for r in reports)
        print(f"\n{name}: {changed} face(s) changed ({replaced} replaced, {changed - replaced} blurred): {1000 * elapsed:.0f} ms, "
              f"{1000 * elapsed / changed:.0f} ms per face")
        for stage in stages:
            print(f"  {stage:34s} {1000 * totals[stage] / changed:7.1f} ms per face")
        print("  dlib distances:", [None if r.distance is None else round(r.distance, 3) for r in reports])
        if models.replace.get().swap is not None:
            print("  reports:", [f"{r.number} {r.mode}: {r.reason}" for r in reports])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("classical", "published", "both"), default="both")
    parser.add_argument("--device", default="cpu", help="where the published networks run (cpu, cuda)")
    parser.add_argument("--real", action="store_true", help="published: the real weights in weights/ instead of random ones")
    arguments = parser.parse_args()
    totals: dict = defaultdict(float)
    instrument(STAGES, totals)
    if arguments.backend in ("classical", "both"):
        run(models_for("classical", "cpu", False), CLASSICAL_STAGES, totals)
    if arguments.backend in ("published", "both"):
        if not arguments.real:  # random weights fail every check: time one donor round, as a passing swap needs
            for name, value in (
                ("MIN_DISTANCE", 0.0), ("MIN_KEPT_DISTANCE", 0.0), ("MIN_POOL_DISTANCE", 0.0),
                ("MAX_SIMILARITY", 2.0), ("MAX_KEPT_SIMILARITY", 2.0),
            ):
                setattr(identity, name, value)
        run(models_for("published", arguments.device, arguments.real), PUBLISHED_STAGES, totals)


if __name__ == "__main__":
    main()
