"""Training and evaluation of unmask mode's networks (`python -m pipeline unmask train|eval`).

Training data are unmasked face photos (by default our own synthetic donor
faces, `weights/donor_pool/faces`): every face is found, fitted with dlib's 68
points and aligned once (`dataset.collect_faces`); each step then draws a batch
of faces with the run's numpy generator and gives each a synthetic mask with
augmentation (`dataset.make_triple`). The segmenter learns masked face -> mask
(BCE + Dice), the inpainter learns masked face and true mask -> clean face
(hole-weighted L1 + 1 - SSIM over the hole, as Mask2Face used L1 + SSIM).

A run is reproducible: the networks start from `seed`, and every random choice
of the data comes from one numpy generator whose state the checkpoint keeps, so
a run stopped at step k and resumed to step n ends like an uninterrupted one.

Evaluation masks faces deterministically (fixed seed, no augmentation) and
compares each result with the clean face: PSNR, SSIM and L1 over the masked
region and over the whole crop, for the network (with the true mask and with
the segmenter's), OpenCV's Telea inpainting of the same hole and the masked
input itself; plus the segmenter's IoU and, when `arcface_simswap` is present,
ArcFace identity similarity to the clean face.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from pipeline.errors import CorruptWeights, MissingWeights, PipelineError, WeightsError
from pipeline.face.landmarks import five_from_68, landmark_predictor
from pipeline.modes.replace.published import PublishedSwap
from pipeline.modes.unmask.checkpoint import build_networks, checkpoint_document, save_checkpoint
from pipeline.offline.dataset import TRAIN_SIZE, FaceSample, collect_faces, make_triple
from pipeline.modes.unmask.inpaint import (
    MASK_THRESHOLD, UnmaskNetworks, holes_from_masks, holes_from_probabilities, inpaint_faces, load_unmask_networks,
    predict_masks, to_network,
)
from pipeline.offline.metrics import ImageMetrics, image_metrics, mask_iou, ssim
from pipeline.modes.unmask.networks import (
    SIZE_MULTIPLE, InpainterConfig, LowerFaceInpainter, MaskSegmenter, SegmenterConfig, composite,
)

HOLE_L1_WEIGHT = 6.0  # L1 inside the hole counts this much more than outside it (Liu et al.'s partial-convolution ratio)
SSIM_WEIGHT = 1.0  # weight of 1 - SSIM (over the hole) in the inpainter's loss
DICE_WEIGHT = 1.0  # weight of 1 - Dice in the segmenter's loss
PROGRESS_SECONDS = 10.0  # a progress line at least this often (and after the first and last step)
TELEA_RADIUS = 3  # pixels, OpenCV's inpainting radius for the baseline
SWAP_SIZE = 224  # identity crops are aligned as for SimSwap 224, whose ArcFace this is


class NoTrainingFaces(PipelineError):
    """The data folder holds no face that can be used."""

    code = "no_faces"


@dataclass(frozen=True)
class TrainOptions:
    """Settings of a run, kept in the checkpoint; a resume keeps them all but `steps` and `save_every`."""

    steps: int = 2000  # total optimisation steps of the run (a resumed run continues to this count)
    batch: int = 8
    size: int = TRAIN_SIZE
    lr: float = 5e-4
    seed: int = 0
    segmenter_width: int = 16
    inpainter_width: int = 32
    save_every: int = 250  # steps between checkpoints

    def check(self) -> None:
        """Raises PipelineError for a setting no run can use."""
        if self.steps < 1 or self.batch < 1 or self.save_every < 1:
            raise PipelineError("--steps, --batch and --save-every must be at least 1", "bad_option")
        if self.size < 2 * SIZE_MULTIPLE or self.size % SIZE_MULTIPLE:
            raise PipelineError(f"--size must be a multiple of {SIZE_MULTIPLE} of at least {2 * SIZE_MULTIPLE}", "bad_option")
        if not self.lr > 0:
            raise PipelineError("--lr must be positive", "bad_option")
        try:
            SegmenterConfig(self.segmenter_width).check()
            InpainterConfig(self.inpainter_width).check()
        except ValueError as error:
            raise PipelineError(str(error), "bad_option") from None


@dataclass
class Trainer:
    """Both networks, their optimisers, the data generator and the step counter of one run."""

    segmenter: MaskSegmenter
    inpainter: LowerFaceInpainter
    options: TrainOptions
    device: str
    rng: np.random.Generator
    step: int = 0
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.segmenter.to(self.device).train()
        self.inpainter.to(self.device).train()
        self.optimizer_segmenter = torch.optim.Adam(self.segmenter.parameters(), lr=self.options.lr)
        self.optimizer_inpainter = torch.optim.Adam(self.inpainter.parameters(), lr=self.options.lr)

    @classmethod
    def start(cls, options: TrainOptions, device: str) -> Trainer:
        """A new run: networks initialised from `options.seed` (without touching torch's global generator).

        Raises:
            PipelineError: an option no run can use.
        """
        options.check()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            segmenter = MaskSegmenter(SegmenterConfig(options.segmenter_width))
            inpainter = LowerFaceInpainter(InpainterConfig(options.inpainter_width))
        return cls(segmenter, inpainter, options, device, np.random.default_rng(options.seed))

    @classmethod
    def resume(cls, document: dict, steps: int | None, save_every: int, device: str) -> Trainer:
        """The run saved in a checkpoint, continued to `steps` in total (None: the run's own total).

        Raises:
            CorruptWeights: the checkpoint's training state is unusable.
        """
        segmenter, inpainter = build_networks(document)
        train = document["train"]
        try:
            saved = train["options"]
            options = TrainOptions(
                steps=int(saved["steps"]) if steps is None else steps,
                batch=int(saved["batch"]), size=int(saved["size"]), lr=float(saved["lr"]), seed=int(saved["seed"]),
                segmenter_width=segmenter.config.width, inpainter_width=inpainter.config.width, save_every=save_every,
            )
            options.check()
            rng = np.random.default_rng()
            rng.bit_generator.state = train["rng"]
            trainer = cls(segmenter, inpainter, options, device, rng, int(train["step"]), dict(train["metrics"]))
            trainer.optimizer_segmenter.load_state_dict(train["optimizer_segmenter"])
            trainer.optimizer_inpainter.load_state_dict(train["optimizer_inpainter"])
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptWeights(f"the checkpoint's training state cannot be resumed ({type(error).__name__}: {error})") from None
        return trainer

    def document(self, data: dict) -> dict:
        """The checkpoint of this run as it stands (see checkpoint.py)."""
        train = {
            "step": self.step,
            "options": {
                "steps": self.options.steps, "size": self.options.size, "batch": self.options.batch,
                "lr": self.options.lr, "seed": self.options.seed,
            },
            "optimizer_segmenter": self.optimizer_segmenter.state_dict(),
            "optimizer_inpainter": self.optimizer_inpainter.state_dict(),
            "rng": self.rng.bit_generator.state,
            "data": data,
            "metrics": dict(self.metrics),
        }
        return checkpoint_document(self.segmenter, self.inpainter, train)

    def train_step(self, samples: list[FaceSample]) -> dict[str, float]:
        """One optimisation step of both networks on a fresh batch of synthetic masks."""
        chosen = self.rng.integers(0, len(samples), size=self.options.batch)
        triples = [make_triple(samples[index], self.rng, augment=True) for index in chosen]
        masked = to_network(np.stack([t.masked for t in triples]), self.device)
        clean = to_network(np.stack([t.clean for t in triples]), self.device)
        masks = np.stack([t.mask for t in triples])
        mask = torch.from_numpy(masks)[:, None].to(self.device)
        hole = torch.from_numpy(holes_from_masks(masks))[:, None].to(self.device)

        mask_loss, dice = segmenter_loss(self.segmenter(masked), mask)
        self.optimizer_segmenter.zero_grad(set_to_none=True)
        mask_loss.backward()
        self.optimizer_segmenter.step()

        inpaint_loss, l1, structure = inpainter_loss(self.inpainter(masked, hole), masked, clean, hole)
        self.optimizer_inpainter.zero_grad(set_to_none=True)
        inpaint_loss.backward()
        self.optimizer_inpainter.step()

        self.step += 1
        self.metrics = {
            name: float(value.detach())
            for name, value in (("mask_loss", mask_loss), ("mask_dice", dice), ("inpaint_loss", inpaint_loss),
                                ("inpaint_l1", l1), ("inpaint_ssim", structure))
        }
        return self.metrics


def segmenter_loss(logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE + DICE_WEIGHT·(1 - soft Dice), soft Dice) of N×1×S×S logits against the true mask."""
    probability = torch.sigmoid(logits)
    overlap = (probability * mask).flatten(1).sum(dim=1)
    dice = ((2 * overlap + 1) / (probability.flatten(1).sum(dim=1) + mask.flatten(1).sum(dim=1) + 1)).mean()
    return F.binary_cross_entropy_with_logits(logits, mask) + DICE_WEIGHT * (1 - dice), dice


def inpainter_loss(
    prediction: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor, hole: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, L1, SSIM over the hole) for a prediction in [-1, 1]; L1 and SSIM are on [0, 1] values.

    L1 is the mean over the hole (N×1×S×S, 0 or 1) plus 1/HOLE_L1_WEIGHT of the
    mean over the rest; SSIM compares the composite with the clean face, over the hole.
    """
    error = (prediction - clean).abs().mean(dim=1, keepdim=True) / 2
    hole_l1 = (error * hole).sum() / hole.sum().clamp(min=1.0)
    rest_l1 = (error * (1 - hole)).sum() / (1 - hole).sum().clamp(min=1.0)
    l1 = hole_l1 + rest_l1 / HOLE_L1_WEIGHT
    structure = ssim((composite(masked, prediction, hole) + 1) / 2, (clean + 1) / 2, hole).nanmean()
    return l1 + SSIM_WEIGHT * (1 - structure), l1, structure


class StopOnInterrupt:
    """Ctrl-C during training finishes the current step instead of breaking it; a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def request(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.request)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def train(
    samples: list[FaceSample], out: Path, trainer: Trainer, data: dict, progress: TextIO = sys.stderr
) -> Trainer:
    """Train until `trainer.options.steps`, saving to `out` every `save_every` steps, at the end and on Ctrl-C."""
    options = trainer.options
    first_step = trainer.step
    started = last_print = time.monotonic()
    printed_step = trainer.step
    with StopOnInterrupt() as interrupt:
        while trainer.step < options.steps and not interrupt.requested:
            metrics = trainer.train_step(samples)
            now = time.monotonic()
            if trainer.step in (first_step + 1, options.steps) or now - last_print >= PROGRESS_SECONDS:
                rate = (trainer.step - printed_step) * options.batch / max(now - last_print, 1e-9)
                eta = (options.steps - trainer.step) * options.batch / rate
                print(
                    f"step {trainer.step}/{options.steps}  mask {metrics['mask_loss']:.3f} (dice {metrics['mask_dice']:.3f})  "
                    f"inpaint {metrics['inpaint_loss']:.3f} (L1 {metrics['inpaint_l1']:.3f}, SSIM {metrics['inpaint_ssim']:.3f})  "
                    f"{rate:.1f} images/s  ETA {duration(eta)}",
                    file=progress, flush=True,
                )
                last_print, printed_step = now, trainer.step
            if trainer.step % options.save_every == 0 and trainer.step < options.steps:
                save_checkpoint(out, trainer.document(data))
    save_checkpoint(out, trainer.document(data))
    elapsed = duration(time.monotonic() - started)
    if interrupt.requested:
        print(f"interrupted at step {trainer.step}/{options.steps} after {elapsed}; saved {out}; continue with --resume",
              file=progress)
    else:
        print(f"done: step {trainer.step} after {elapsed}; saved {out}", file=progress)
    return trainer


def pool_faces_folder(models) -> Path:
    """The default training data: the donor pool's aligned synthetic faces.

    Raises:
        NoTrainingFaces: the pool is not built.
    """
    folder = models.replace.pool_folder / "faces"
    if not folder.is_dir():
        raise NoTrainingFaces(f"no donor pool faces in {folder}; build them with: .venv/bin/python -m pipeline pool build")
    return folder


def collect_folder(folder: Path, models, size: int, limit: int | None = None) -> list[FaceSample]:
    """The usable faces of a folder of photos, aligned at `size`.

    Raises:
        NoTrainingFaces: the folder is missing or holds no usable face.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NoTrainingFaces(f"{folder}: no such folder")
    samples = collect_faces(folder, models, landmark_predictor(models.settings.weights_path), size=size, limit=limit)
    if not samples:
        raise NoTrainingFaces(f"no usable face in {folder} (JPEG, PNG or WebP photos of frontal, unmasked faces are needed)")
    return samples


def train_on_folder(folder: Path, out: Path, trainer: Trainer, models, progress: TextIO = sys.stderr) -> Trainer:
    """`unmask train`: collect the folder's faces once, then train a new or resumed run to its total steps."""
    if trainer.step >= trainer.options.steps:
        print(f"{out} is already at step {trainer.step} of {trainer.options.steps}; nothing to do", file=progress)
        return trainer
    samples = collect_folder(folder, models, trainer.options.size)
    print(f"{len(samples)} faces from {folder}; training on {trainer.device} from step {trainer.step}", file=progress, flush=True)
    return train(samples, out, trainer, {"folder": str(folder), "faces": len(samples)}, progress)


# --- evaluation ---


@dataclass(frozen=True)
class MethodScores:
    """One way of filling the hole, measured against the clean faces (means over the pairs)."""

    name: str
    hole: ImageMetrics  # over the hole: every pixel the synthetic mask changed
    whole: ImageMetrics  # over the whole aligned crop
    identity: float | None  # mean ArcFace cosine similarity to the clean face; None without ArcFace


@dataclass(frozen=True)
class EvaluationReport:
    pairs: int
    size: int
    step: int
    mask_iou: float  # mean IoU of the segmenter's mask (probability >= MASK_THRESHOLD) with the true mask (> 0.5)
    methods: tuple[MethodScores, ...]
    identity_note: str | None  # why identity is missing, when it is

    def format(self) -> str:
        lines = [
            f"{self.pairs} faces with a synthetic mask, {self.size} px aligned crops, checkpoint step {self.step}",
            "region 'hole': every pixel the mask changed; 'whole crop': the whole aligned crop; means over the faces",
            f"{'method':26s} {'region':10s} {'PSNR dB':>8s} {'SSIM':>6s} {'L1':>7s}",
        ]
        for method in self.methods:
            for region, scores in (("hole", method.hole), ("whole crop", method.whole)):
                lines.append(f"{method.name:26s} {region:10s} {scores.psnr:8.2f} {scores.ssim:6.3f} {scores.l1:7.4f}")
        lines.append(f"segmenter IoU with the true mask: {self.mask_iou:.3f}")
        if self.identity_note:
            lines.append(f"identity: n/a ({self.identity_note})")
        else:
            scores = ", ".join(f"{m.name} {m.identity:.3f}" for m in self.methods)
            lines.append(f"identity (ArcFace cosine to the clean face): {scores}")
        return "\n".join(lines)


def mean_metrics(scores: list[ImageMetrics]) -> ImageMetrics:
    return ImageMetrics(*(float(np.nanmean([getattr(s, name) for s in scores])) for name in ("psnr", "ssim", "l1")))


def telea_inpaint(masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The baseline: OpenCV's Telea inpainting of a bool hole (the pixels outside it are kept)."""
    return cv2.inpaint(np.ascontiguousarray(masked), hole.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)


class IdentityEncoder:
    """ArcFace (SimSwap's `arcface_simswap`) embeddings of faces, by replace mode's own alignment and embedding."""

    def __init__(self, model, device: str):
        self.swap = PublishedSwap(None, model, device=device, size=SWAP_SIZE)  # no generator: only align and embed are used

    def embed(self, faces: np.ndarray, points68: list[np.ndarray]) -> np.ndarray:
        """N×512 unit-length embeddings of N×S×S×3 uint8 faces with their 68 landmarks."""
        return self.swap.embed([self.swap.align(face, five_from_68(points))[0] for face, points in zip(faces, points68)])


def load_identity_encoder(weights_dir: Path, device: str) -> tuple[IdentityEncoder | None, str | None]:
    """(ArcFace encoder, None) when `arcface_simswap` is present in `weights_dir`, else (None, why not)."""
    from pipeline import weights

    try:
        return IdentityEncoder(weights.load("arcface_simswap", weights.locate("arcface_simswap", weights_dir), device), device), None
    except MissingWeights:
        return None, "arcface_simswap not present"
    except WeightsError as error:
        return None, f"arcface_simswap unusable: {error}"


def evaluate(
    networks: UnmaskNetworks, samples: list[FaceSample], count: int, seed: int = 0, identity: IdentityEncoder | None = None,
    identity_note: str | None = None,
) -> EvaluationReport:
    """Measure the networks on `count` deterministic synthetic masks of `samples` (cycled), against the baselines."""
    rng = np.random.default_rng(seed)
    chosen = [samples[index % len(samples)] for index in range(count)]
    triples = [make_triple(sample, rng, augment=False) for sample in chosen]
    masked = np.stack([t.masked for t in triples])
    clean = np.stack([t.clean for t in triples])
    masks = np.stack([t.mask for t in triples])
    holes = holes_from_masks(masks) > 0
    probabilities = predict_masks(networks, masked)
    results = {
        "masked input": masked,
        "Telea (true mask)": np.stack([telea_inpaint(m, h) for m, h in zip(masked, holes)]),
        "network (true mask)": inpaint_faces(networks, masked, masks)[0],
        "network (predicted mask)": inpaint_faces(networks, masked, holes_from_probabilities(probabilities))[0],
    }
    iou = float(np.mean([mask_iou(p >= MASK_THRESHOLD, m > 0.5) for p, m in zip(probabilities, masks)]))
    points = [sample.points68 for sample in chosen]
    clean_identity = identity.embed(clean, points) if identity else None
    methods = []
    for name, images in results.items():
        similarity = float(np.mean((identity.embed(images, points) * clean_identity).sum(axis=1))) if identity else None
        methods.append(MethodScores(
            name,
            mean_metrics([image_metrics(r, c, h) for r, c, h in zip(images, clean, holes)]),
            mean_metrics([image_metrics(r, c) for r, c in zip(images, clean)]),
            similarity,
        ))
    return EvaluationReport(count, networks.size, networks.step, iou, tuple(methods), None if identity else identity_note)


def evaluate_folder(folder: Path, checkpoint: Path, models, count: int | None = None, seed: int = 0) -> EvaluationReport:
    """`unmask eval`: the checkpoint's networks on the folder's faces (one synthetic mask each unless `count`)."""
    if count is not None and count < 1:
        raise PipelineError("--count must be at least 1", "bad_option")
    networks = load_unmask_networks(checkpoint, models.device)
    samples = collect_folder(folder, models, networks.size)
    identity, note = load_identity_encoder(models.settings.weights_path, models.device)
    return evaluate(networks, samples, count or len(samples), seed, identity, note)
