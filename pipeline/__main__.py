"""Command-line front of the pipeline (DESIGN.md contracts 1-3).

    python -m pipeline detect IMAGE --json [--sheet OUT.jpg]
    python -m pipeline process IMAGE --keep 1,3|all|none --mode blur|replace|unmask -o OUT
    python -m pipeline weights status
    python -m pipeline pool build    (replace mode's donor pool; otherwise built on first use)

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
    process.add_argument("image", type=Path)
    process.add_argument("--keep", default="none", help="face numbers to keep: 1,3 or all or none")
    process.add_argument("--mode", default="blur", help="replace, unmask or blur")
    process.add_argument("-o", "--output", type=Path, required=True)
    weights = commands.add_parser("weights", help="model files")
    weights.add_argument("action", choices=["status"])
    pool = commands.add_parser("pool", help="replace mode's donor pool")
    pool.add_argument("action", choices=["build"])
    return parser


def read_image_bytes(path: Path) -> bytes:
    from pipeline.errors import PhotoError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file", "not_found") from None
    except IsADirectoryError:
        raise PhotoError(f"{path} is a folder, not a photo", "not_found") from None
    except OSError as error:
        raise PhotoError(f"{path}: cannot read ({error.strerror})", "not_found") from None


def run_detect(args: argparse.Namespace) -> None:
    from pipeline import analyze_photo, load_config, load_models

    data = read_image_bytes(args.image)
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
    from pipeline import load_config, load_models
    from pipeline.analysis import change_faces, find_faces
    from pipeline.imageio import encode_photo, load_photo, suggest_format
    from pipeline.selection import parse_face_numbers

    data = read_image_bytes(args.image)
    models = load_models(load_config().pipeline, "auto")
    image = load_photo(data, models.settings.max_pixels)
    faces, _ = find_faces(image, models)
    keep = parse_face_numbers(args.keep, len(faces)) if args.keep.strip() else set()
    changed = change_faces(image, faces, keep, args.mode, models)
    fmt = "png" if args.output.suffix.lower() == ".png" else "jpeg" if args.output.suffix else suggest_format(data)
    try:
        args.output.write_bytes(encode_photo(changed, fmt))
    except OSError as error:
        from pipeline.errors import PipelineError

        raise PipelineError(f"{args.output}: cannot write ({error.strerror})", "cannot_write") from None


def run_weights(args: argparse.Namespace) -> None:
    from pipeline.weights import weights_status

    for entry, state in weights_status():
        print(f"{entry.name:26s} {state:8s} {entry.needed_by}; license {entry.license}")
        if state == "missing":
            print(f"{'':26s} fetch: {entry.fetch_command()}")


def run_pool(args: argparse.Namespace) -> None:
    import time

    from pipeline import load_config, load_models
    from pipeline.modes.replace.pool import build_pool, openpeople_folder
    from pipeline.modes.replace.resources import ReplaceUnavailable

    models = load_models(load_config().pipeline, "auto")
    reason = models.replace.unavailable_reason()
    source = openpeople_folder()
    if reason is not None or source is None:
        raise ReplaceUnavailable(f"cannot build the donor pool: {reason or 'the openpeople package is not installed'}")
    import dlib

    from pipeline.weights import locate

    started = time.monotonic()
    build_pool(models.replace.pool_folder, source, models.detector, dlib.shape_predictor(str(locate("dlib_landmarks68"))))
    print(f"donor pool written to {models.replace.pool_folder} in {time.monotonic() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from pipeline.errors import PipelineError

    try:
        {"detect": run_detect, "process": run_process, "weights": run_weights, "pool": run_pool}[args.command](args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
