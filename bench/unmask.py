"""Unmask mode: milliseconds per unmasked face for each stage, on two crowd photos (43 and 12 faces).

Two paths:

- donor transplant (what runs out of the box): mask finder, landmarks, donor
  choice, transplant (warp, colour, inpainted edges), detail and grain, the
  membrane joining colours, paste;
- trained networks (`weights/unmask.pt`, path (a)): mask finder, landmarks,
  networks, grain, paste. Without `--checkpoint`, the networks have the
  default widths with random weights, saved in our format: they time the same
  as trained ones.

`--harmonise` adds the identity swap (SimSwap 224 + ArcFace, random weights in the
real architectures) to both paths, on `--device`. Stage times are summed over
every face of the photo (the mask finder also runs on the faces without a mask)
and divided by the faces unmasked.

    .venv/bin/python bench/unmask.py [--checkpoint weights/unmask.pt] [--harmonise --device cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

from bench.stages import instrument  # noqa: E402
from pipeline import analysis  # noqa: E402
from pipeline.analysis import change_faces_reported, find_faces  # noqa: E402
from pipeline.config import PipelineSettings  # noqa: E402
from pipeline.modes import unmask as unmask_mode  # noqa: E402
from pipeline.face import colour, crop  # noqa: E402
from pipeline.face import donors as donors_module  # noqa: E402
from pipeline.modes.replace.published import PublishedSwap  # noqa: E402
from pipeline.modes.replace.resources import ReplaceResources  # noqa: E402
from pipeline.face import covering  # noqa: E402
from pipeline.modes.unmask import inpaint, transplant  # noqa: E402
from pipeline.face import texture  # noqa: E402
from pipeline.modes.unmask.checkpoint import save_checkpoint  # noqa: E402
from pipeline.offline.training import TrainOptions, Trainer  # noqa: E402
from tests.helpers import cached_models, photo_rgb  # noqa: E402

STAGES = {
    "mask finder": (covering, "find_covering", unmask_mode),
    "landmarks": (crop, "prepare_face", unmask_mode),
    "donor choice": (donors_module, "rank_donors", unmask_mode),
    "transplant (warp, colour, edges)": (transplant, "render_lower_face", unmask_mode),
    "segmenter": (inpaint, "predict_masks", unmask_mode),
    "inpainter": (inpaint, "inpaint_face", unmask_mode),
    "harmonise (SimSwap)": (PublishedSwap, "harmonise", None),
    "grain": (colour, "match_sharpness", unmask_mode),
    "detail and grain": (texture, "matched_detail", unmask_mode),
    "membrane": (transplant, "membrane_join", unmask_mode),
    "paste": (analysis, "paste_back", None),
}
TRANSPLANT_STAGES = (
    "mask finder", "landmarks", "donor choice", "transplant (warp, colour, edges)", "harmonise (SimSwap)", "detail and grain", "membrane", "paste",
)
NETWORK_STAGES = ("mask finder", "landmarks", "segmenter", "inpainter", "harmonise (SimSwap)", "grain", "paste")
PHOTOS = ("kagglemask_maksssksksss52.jpg", "kagglemask_maksssksksss389.jpg")


def random_checkpoint(folder: Path) -> Path:
    """Default-width networks with random weights, saved as `unmask train` saves them."""
    trainer = Trainer.start(TrainOptions(), "cpu")
    path = folder / "unmask.pt"
    save_checkpoint(path, trainer.document({"folder": "none: random weights", "faces": 0}))
    return path


def models_for(checkpoint: Path | None, harmonise: bool, device: str):
    models = cached_models(identities=PipelineSettings.identities)  # the default count, not the tests' few
    swap = None
    if harmonise:
        from bench.replace import random_swap

        swap = random_swap(device)
    resources = ReplaceResources(
        models.settings.weights_path, models.detector, device, swap_loader=lambda *_: swap,
        age_gender=models.age_gender, identities=models.settings.identities,
    )
    trained = inpaint.TrainedUnmask(checkpoint, device) if checkpoint else None
    return dataclasses.replace(models, replace=resources, unmask=trained)


def run(models, stages: tuple[str, ...], totals: dict, title: str) -> None:
    print(f"\n== {title}")
    for name in PHOTOS:
        image = photo_rgb(name)
        faces, _ = find_faces(image, models)
        change_faces_reported(image, faces, set(), "unmask", models)  # warm-up (model loading, caches)
        totals.clear()
        started = time.perf_counter()
        _, reports = change_faces_reported(image, faces, set(), "unmask", models)
        elapsed = time.perf_counter() - started
        unmasked = max(1, sum(report.mode == "unmask" for report in reports))
        print(f"\n{name}: {len(faces)} faces, {unmasked} unmasked: {1000 * elapsed:.0f} ms, {1000 * elapsed / unmasked:.0f} ms per unmasked face")
        for stage in stages:
            print(f"  {stage:34s} {1000 * totals[stage] / unmasked:7.1f} ms per face")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained unmask.pt (default: random weights, default widths)")
    parser.add_argument("--harmonise", action="store_true", help="add the SimSwap identity harmonisation (random weights)")
    parser.add_argument("--device", default="cpu", help="where the networks run (cpu, cuda)")
    arguments = parser.parse_args()
    totals: dict = defaultdict(float)
    instrument(STAGES, totals)
    run(models_for(None, arguments.harmonise, arguments.device), TRANSPLANT_STAGES, totals, "donor transplant (path b)")
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = arguments.checkpoint or random_checkpoint(Path(folder))
        run(models_for(checkpoint, arguments.harmonise, arguments.device), NETWORK_STAGES, totals,
            f"trained networks (path a): {checkpoint if arguments.checkpoint else 'random weights, default widths'} on {arguments.device}")


if __name__ == "__main__":
    main()
