"""Command-line front of the pipeline (DESIGN.md contracts 1-3).

    python -m pipeline detect IMAGE --json [--sheet OUT.jpg]
    python -m pipeline process IMAGE --keep 1,3|all|none --mode blur|replace|unmask -o OUT
    python -m pipeline process PHOTO... | DIR --mode blur|replace|unmask -o OUTDIR   (every face changed)
    python -m pipeline weights status
    python -m pipeline weights fetch [NAME ...]   (default: every downloadable file missing or corrupt)
    python -m pipeline pool build    (replace mode's donor pool; otherwise built on first use)
    python -m pipeline pool build --count N [--gender G] [--age-range 20-60] [--truncation 0.7] [--seed S]
        [--calibrate M] [--generator PATH] [--device auto|cpu|cuda]   (add StyleGAN2-ADA donors)
    python -m pipeline unmask train [--data FOLDER] [--out weights/unmask.pt] [--steps N] [--resume] ...
    python -m pipeline unmask eval [--data FOLDER] [--checkpoint weights/unmask.pt] [--count N] [--seed S]
    python -m pipeline provenance check FILE [--json]   (XMP source type, C2PA manifest, watermark: DESIGN.md contract 9)
    python -m pipeline provenance status                (marks on or off, who signs, whether the public trusts it)

Exit 0 on success; on bad input exit 2 with one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """Bad arguments are bad input: one line, exit 2 (argparse's own code, kept to one line)."""
        self.exit(EXIT_BAD_INPUT, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m pipeline", description="Find faces in a photo and change the ones not kept.")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="list the faces of a photo")
    detect.add_argument("image", type=Path)
    detect.add_argument("--json", action="store_true", help="print the faces as one JSON object")
    detect.add_argument("--sheet", type=Path, help="also write the numbered contact sheet here")
    process = commands.add_parser("process", help="change every face that is not kept")
    process.add_argument("images", type=Path, nargs="+", metavar="PHOTO", help="a photo, several photos, or folders of photos")
    process.add_argument("--keep", help="face numbers to keep: 1,3 or all or none (default none; a single photo only)")
    process.add_argument("--mode", default="blur", help="replace, unmask or blur")
    process.add_argument("-o", "--output", type=Path, required=True, help="the result; for several photos or a folder, a folder")
    weights = commands.add_parser("weights", help="model files")
    weights_actions = weights.add_subparsers(dest="action", required=True)
    weights_actions.add_parser("status", help="list each file, whether it is present and what needs it")
    weights_fetch = weights_actions.add_parser("fetch", help="download and verify model files")
    weights_fetch.add_argument("names", nargs="*", metavar="NAME", help="manifest names (default: every missing download)")
    pool = commands.add_parser("pool", help="replace mode's donor pool")
    pool.add_argument("action", choices=["build"])
    pool.add_argument("--count", type=positive_int, help="add this many StyleGAN2-ADA donors (without it: build from openpeople)")
    pool.add_argument("--gender", choices=["female", "male"], help="generated donors' gender (default: both, filling the pool's gaps)")
    pool.add_argument("--age-range", type=age_range, help="generated donors' ages in years, e.g. 20-60 (default 20-70)")
    pool.add_argument("--truncation", type=float, help="StyleGAN truncation psi, 0-1 (default 0.7)")
    pool.add_argument("--seed", type=int, help="first seed (default: after the highest one in the pool)")
    pool.add_argument("--calibrate", type=positive_int, metavar="M", help="learn the steering directions again from M images (the first build learns them from 500)")
    pool.add_argument("--generator", type=Path, help="StyleGAN2-ADA .pkl (default: weights/ffhq.pkl)")
    pool.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_unmask_commands(commands)
    provenance = commands.add_parser("provenance", help="the marks that say how a result was made")
    provenance_actions = provenance.add_subparsers(dest="action", required=True)
    check = provenance_actions.add_parser("check", help="what a file carries: XMP, C2PA (valid or not, and why), watermark")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="print one JSON object (DESIGN.md contract 9)")
    provenance_actions.add_parser("status", help="whether marks are on, and the certificate that signs them")
    return parser


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def age_range(text: str) -> tuple[int, int]:
    """`20-60` -> (20, 60)."""
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and int(low) < int(high) <= 100):
        raise argparse.ArgumentTypeError(f"expected ages like 20-60 (youngest-oldest, at most 100), got {text!r}")
    return int(low), int(high)


def run_detect(args: argparse.Namespace) -> None:
    from pipeline.analysis import analyze_photo
    from pipeline.config import load_config
    from pipeline.models import load_models

    from pipeline.imageio import read_photo_file

    data = read_photo_file(args.image)
    models = load_models(load_config().pipeline, "auto")
    analysis = analyze_photo(data, models)
    if args.sheet:
        args.sheet.write_bytes(analysis.sheet_jpeg)
    if args.json:
        document = analysis.to_json()
        del document["default_keep"]
        print(json.dumps(document, ensure_ascii=False))
    else:
        for face in analysis.faces:
            print(f"{face.number}: {face.gender} ({face.gender_score:.2f}), about {face.age:.0f}, box {[round(v) for v in face.box]}")


def run_process(args: argparse.Namespace) -> None:
    from pipeline.config import load_config
    from pipeline.models import load_models
    from pipeline.analysis import change_faces_reported, encode_result, find_faces
    from pipeline.errors import PipelineError
    from pipeline.imageio import load_photo, read_photo_file, suggest_format
    from pipeline.selection import parse_face_numbers

    config = load_config()
    if len(args.images) > 1 or args.images[0].is_dir() or args.output.is_dir():
        from pipeline import batch

        if args.keep is not None:
            raise PipelineError("--keep applies to a single photo; with several, every face is changed")
        batch.run(args.images, args.output, args.mode, load_models(config.pipeline, "auto", modes=(args.mode,)), config.provenance)
        return
    keep_text = args.keep or "none"
    data = read_photo_file(args.images[0])
    models = load_models(config.pipeline, "auto", modes=(args.mode,))
    image = load_photo(data, models.settings.max_pixels)
    faces, _ = find_faces(image, models)
    keep = parse_face_numbers(keep_text, len(faces)) if keep_text.strip() else set()
    changed, reports = change_faces_reported(image, faces, keep, args.mode, models)
    fmt = "png" if args.output.suffix.lower() == ".png" else "jpeg" if args.output.suffix else suggest_format(data)
    try:
        args.output.write_bytes(encode_result(image, changed, reports, fmt, config.provenance))
    except OSError as error:
        raise PipelineError(f"{args.output}: cannot write ({error.strerror})", "cannot_write") from None
    for report in reports:
        print(report.describe())


def run_weights(args: argparse.Namespace) -> None:
    from pipeline import weights
    from pipeline.config import load_config

    folder = load_config().pipeline.weights_path
    if args.action == "fetch":
        run_weights_fetch(args.names, folder)
        return
    report = weights.weights_status(folder)
    print(f"weights folder: {folder}")
    for entry, state in report:
        print(f"{entry.name:26s} {state:8s} {entry.needed_by}; license {entry.license}")
        if state == "missing":
            print(f"{'':26s} fetch: {entry.fetch_command()}")


def run_weights_fetch(names: list[str], folder: Path) -> None:
    """One line per file (done on stdout, failed on stderr); any failure ends in exit 2."""
    from pipeline.errors import WeightsError
    from pipeline.fetch import fetch

    outcomes = fetch(names, folder)
    for outcome in outcomes:
        print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
    if not outcomes:
        print("nothing to fetch: every downloadable file is present and matches the manifest")
    failed = [outcome.name for outcome in outcomes if not outcome.ok]
    if failed:
        raise WeightsError(f"{len(failed)} of {len(outcomes)} files are not in place: {', '.join(failed)}")


def run_pool(args: argparse.Namespace) -> None:
    import time

    from pipeline.config import load_config
    from pipeline.models import load_models
    from pipeline.errors import PipelineError
    from pipeline.face.pool import build_pool, openpeople_folder
    from pipeline.modes.replace.resources import ReplaceUnavailable

    if args.count is not None:
        run_pool_generated(args)
        return
    for option in ("gender", "age_range", "truncation", "seed", "calibrate", "generator"):
        if getattr(args, option) is not None:
            raise PipelineError(f"--{option.replace('_', '-')} applies to generated donors: add --count N")
    models = load_models(load_config().pipeline, args.device)
    reason = models.replace.unavailable_reason()
    source = openpeople_folder()
    if reason is not None or source is None:
        raise ReplaceUnavailable(f"cannot build the donor pool: {reason or 'the openpeople package is not installed'}")
    from pipeline.face.landmarks import landmark_predictor
    from pipeline.modes.replace.identities import SOURCE as IDENTITY_SOURCE

    started = time.monotonic()
    build_pool(models.replace.pool_folder, source, models.detector, landmark_predictor(models.settings.weights_path))
    print(f"donor pool written to {models.replace.pool_folder} in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    crops = [donor for donor in models.replace.get().pool.donors if donor.source.startswith(IDENTITY_SOURCE + ":")]
    identities = len({donor.identity for donor in crops})
    print(f"{identities} new identities ({len(crops)} crops) ready in {time.monotonic() - started:.1f} s")


def run_pool_generated(args: argparse.Namespace) -> None:
    """`pool build --count N`: StyleGAN2-ADA donors, steered to gender and age, added to the pool."""
    from pipeline.config import load_config
    from pipeline.models import load_models
    from pipeline.errors import PipelineError
    from pipeline.offline import generated

    if args.truncation is not None and not 0 < args.truncation <= 1:
        raise PipelineError(f"--truncation must be above 0 and at most 1, got {args.truncation}")
    if args.seed is not None and not 0 <= args.seed < 2**31:  # NumPy seeds are below 2^32; later attempts add to it
        raise PipelineError(f"--seed must be from 0 to {2**31 - 1}, got {args.seed}")
    settings = load_config().pipeline
    generator_path = generated.locate_generator(args.generator, settings.weights_path)
    given = {"genders": (args.gender,) if args.gender else None, "age_range": args.age_range, "truncation": args.truncation}
    request = generated.GenerationRequest(
        count=args.count, first_seed=args.seed, calibration_samples=args.calibrate,
        **{option: value for option, value in given.items() if value is not None},  # the rest: the request's defaults
    )
    models = load_models(settings, args.device)
    report = generated.build_generated_donors(models, generator_path, request, progress=lambda line: print(line, flush=True))
    for line in report.summary():
        print(line)


def add_unmask_commands(commands) -> None:
    """`unmask train` and `unmask eval`: unmask mode's networks (pipeline/offline/training.py)."""
    unmask = commands.add_parser("unmask", help="train and evaluate unmask mode's networks")
    actions = unmask.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train the mask segmenter and the lower-face inpainter")
    train.add_argument("--data", type=Path, help="folder of unmasked face photos (default: the donor pool's faces)")
    train.add_argument("--out", type=Path, help="checkpoint to write (default: weights/unmask.pt)")
    train.add_argument("--steps", type=int, help="total steps of the run (default 2000; a resume keeps the run's own)")
    train.add_argument("--save-every", type=int, default=250, help="steps between checkpoints")
    train.add_argument("--resume", action="store_true", help="continue the run saved in --out, with its own settings")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    for flag, kind, what in (
        ("--batch", int, "faces per step (default 8)"), ("--size", int, "aligned crop side (default 128)"),
        ("--lr", float, "Adam learning rate (default 5e-4)"), ("--seed", int, "seed of the weights and the data (default 0)"),
        ("--segmenter-width", int, "segmenter channels (default 16)"), ("--inpainter-width", int, "inpainter channels (default 32)"),
    ):
        train.add_argument(flag, type=kind, help=what + "; fixed for a resumed run")
    evaluate = actions.add_parser("eval", help="measure a checkpoint on synthetic masks against OpenCV's Telea inpainting")
    evaluate.add_argument("--data", type=Path, help="folder of unmasked face photos (default: the donor pool's faces)")
    evaluate.add_argument("--checkpoint", type=Path, help="default: weights/unmask.pt")
    evaluate.add_argument("--count", type=int, help="masked faces to measure (default: one per face found)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def run_unmask(args: argparse.Namespace) -> None:
    from pipeline.config import load_config
    from pipeline.models import load_models
    from pipeline.errors import PipelineError
    from pipeline.offline import training
    from pipeline.modes.unmask.checkpoint import CHECKPOINT_FILE, read_checkpoint

    if args.action == "train":  # checked before the slow model loading
        fixed = {"batch", "size", "lr", "seed", "segmenter_width", "inpainter_width"}
        chosen = {name: getattr(args, name) for name in fixed if getattr(args, name) is not None}
        if args.resume and chosen:
            raise PipelineError(f"--resume keeps the run's own settings; leave out --{', --'.join(sorted(chosen)).replace('_', '-')}")
    settings = load_config().pipeline
    models = load_models(settings, args.device)
    folder = args.data or training.pool_faces_folder(models)
    if args.action == "eval":
        checkpoint = args.checkpoint or settings.weights_path / CHECKPOINT_FILE
        print(training.evaluate_folder(folder, checkpoint, models, args.count, args.seed).format())
        return
    out = args.out or settings.weights_path / CHECKPOINT_FILE
    if args.resume:
        trainer = training.Trainer.resume(read_checkpoint(out), args.steps, args.save_every, models.device)
    else:
        steps = {"steps": args.steps} if args.steps is not None else {}
        trainer = training.Trainer.start(training.TrainOptions(save_every=args.save_every, **steps, **chosen), models.device)
    try:
        training.train_on_folder(folder, out, trainer, models)
    except KeyboardInterrupt:  # while collecting faces, or a second Ctrl-C; a first one during training saves and returns
        raise PipelineError(f"interrupted; {out} holds the last checkpoint written, if any") from None


def run_provenance(args: argparse.Namespace) -> None:
    from pipeline.config import load_config
    from pipeline.errors import PhotoError
    from pipeline.imageio import read_photo_file
    from pipeline.provenance.check import check_file, status_lines

    settings = load_config().provenance
    if args.action == "status":
        print("\n".join(status_lines(settings)))
        return
    try:
        report = check_file(read_photo_file(args.file), settings)
    except ValueError as error:
        raise PhotoError(f"{args.file}: {error}") from None
    if args.json:
        print(json.dumps(report))
        return
    c2pa = report["c2pa"]
    print(f"XMP digital source type: {report['xmp_digital_source_type'] or 'none'}")
    if not c2pa["present"]:
        print("C2PA: none")
    else:
        print(f"C2PA: {'valid' if c2pa['valid'] else 'NOT valid'}; actions {', '.join(c2pa['actions']) or 'none'};"
              f" digital source type {c2pa['digital_source_type'] or 'none'}")
        for problem in c2pa["problems"]:
            print(f"  problem: {problem}")
    print(f"watermark: {'AI-edited mark found' if report['watermark'] else 'none found'}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from pipeline.errors import PipelineError

    try:
        {"detect": run_detect, "process": run_process, "weights": run_weights, "pool": run_pool, "unmask": run_unmask,
         "provenance": run_provenance}[args.command](args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
