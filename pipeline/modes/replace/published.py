"""The published networks behind replace mode's identity swap: SimSwap, its ArcFace, and BiSeNet face parsing.

They are used when `simswap_224` (or `simswap_512`) and `arcface_simswap` are
present and verified in the weights folder (`choose_backend`); BiSeNet
(`bisenet_faceparsing`) is optional. Replace mode's screening, donor choice,
anonymity check and fallbacks stay in `replace/__init__.py`; `PublishedSwap`
holds the loaded networks and runs each on a batch of crops:

- alignment (`align`): the 224 model's crops are aligned to SimSwap's five "new
  arc" pose templates (the best-fitting one), the 512 model's to the FFHQ
  template, as neuralchen/SimSwap's face_align_ffhqandnewarc.py does;
- identity (`embed`): ArcFace on a crop aligned the same way, RGB in [0, 1]
  ImageNet-normalised, resized to 112×112 (nearest, as SimSwap does), then
  L2-normalised; the donors' embeddings are cached per process (`embed_cached`);
- swap (`generate`): the generator takes the target crop as RGB in [0, 1] and
  the donor's embedding, and returns RGB in [0, 1];
- parsing (`parse_faces`): BiSeNet at 512×512, ImageNet-normalised; the face
  classes are SimSwap's own paste-back classes (skin, brows, eyes, glasses,
  nose, mouth, lips: no ears, neck, hair or hat).

Precision: float32 on the CPU. On CUDA the networks run under bfloat16
autocast: half the memory traffic of float32 with float32's exponent range,
so SimSwap's instance norm (a mean of squares) cannot overflow as float16 can.

The 224 model is preferred when both generators are present: it is SimSwap's
main release, trained on VGGFace2 at 224; the 512 model is its "beta" (FFHQ
crops, weaker identity transfer by its authors' own account).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from pipeline import weights
from pipeline.align import alignment_matrix, warp_antialiased, warp_face
from pipeline.errors import MissingWeights, WeightsError

log = logging.getLogger(__name__)

GENERATORS = ("simswap_224", "simswap_512")  # manifest names, in order of preference
IDENTITY_NETWORK = "arcface_simswap"
PARSER = "bisenet_faceparsing"
TEMPLATES = {224: "simswap_newarc", 512: "ffhq"}  # generator size -> `align.TEMPLATES` name
ARCFACE_SIZE = 112  # ArcFace's input side
PARSE_SIZE = 512  # BiSeNet's input side (face-parsing.PyTorch's test size)
FACE_CLASSES = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "nose", "mouth", "u_lip", "l_lip")  # `bisenet.FACE_PARSING_CLASSES` names
BATCH_SIZE = 8  # crops per network call
REACH_FEATHER = 0.06  # `harmonise`: the generator's crop fades in over this fraction of its side


@dataclass(frozen=True)
class BackendChoice:
    """Which networks replace mode will use, decided from the weights folder alone (nothing is loaded)."""

    generator: str | None  # a GENERATORS name, or None for the classical warp
    parser: bool  # BiSeNet is present too
    problems: tuple[str, ...] = ()  # files that are present but do not verify

    @property
    def names(self) -> tuple[str, ...]:
        if self.generator is None:
            return ()
        return (self.generator, IDENTITY_NETWORK) + ((PARSER,) if self.parser else ())


def choose_backend(weights_dir: Path) -> BackendChoice:
    """SimSwap (224 before 512) with ArcFace when both verify, BiSeNet when it does too; else the classical warp.

    A file that is present but has the wrong size or hash is not used, and is
    named in `problems` (it is not an error: replace mode still runs).
    """
    present, problems = set(), []
    for name in GENERATORS + (IDENTITY_NETWORK, PARSER):
        try:
            weights.locate(name, weights_dir)
            present.add(name)
        except MissingWeights:
            pass
        except WeightsError as error:
            problems.append(f"{name}: {error}")
    generator = next((name for name in GENERATORS if name in present), None)
    if IDENTITY_NETWORK not in present:
        generator = None
    return BackendChoice(generator, PARSER in present, tuple(problems))


def load_swap(weights_dir: Path, device: str = "cpu") -> PublishedSwap | None:
    """The published networks on `device` when their files are there, else None.

    Files that are present but unusable are logged as warnings, never raised:
    replace mode then runs its classical warp.
    """
    choice = choose_backend(weights_dir)
    for problem in choice.problems:
        log.warning("replace mode does not use %s", problem)
    if choice.generator is None:
        return None
    try:
        networks = [weights.load(name, weights.locate(name, weights_dir), device) for name in choice.names]
    except WeightsError as error:
        log.warning("replace mode cannot load its published networks (%s); it uses the classical warp", error)
        return None
    return PublishedSwap(*networks, device=device, name=choice.generator)


def to_tensor(crops: Sequence[np.ndarray]):
    """N×H×W×3 uint8 RGB crops as an N×3×H×W float tensor in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.stack(crops))).permute(0, 3, 1, 2).float() / 255.0


def to_crops(images) -> list[np.ndarray]:
    """An N×3×H×W tensor in [0, 1] as N H×W×3 uint8 crops."""
    array = (images.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return list(array)


def arcface_identity(arcface, images):
    """L2-normalised ArcFace embeddings of N×3×S×S RGB crops in [0, 1] aligned as SimSwap aligns them:
    ImageNet-normalised and resized to 112×112 (nearest, as SimSwap does)."""
    import torch.nn.functional as F

    small = F.interpolate(imagenet_normalised(images), size=(ARCFACE_SIZE, ARCFACE_SIZE))
    return F.normalize(arcface(small).float(), dim=1)


def imagenet_normalised(images):
    """N×3×H×W RGB in [0, 1] normalised with the ImageNet mean and std (ArcFace's and BiSeNet's input)."""
    import torch

    from pipeline.networks.bisenet import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


class PublishedSwap:
    """SimSwap, ArcFace and (optionally) BiSeNet, loaded once per process, each run on batches of aligned crops.

    Args:
        generator: a SimSwap generator, `forward(image N×3×S×S in [0, 1], latent N×512) -> N×3×S×S in [0, 1]`.
        arcface: `forward(N×3×112×112 ImageNet-normalised) -> N×512`.
        parser: BiSeNet, `forward(N×3×H×W ImageNet-normalised) -> (N×19×H×W logits, ...)`, or None.
        size: the generator's crop side (224 or 512); read from the generator when omitted.
        name: the generator's manifest name, for reports.
    """

    def __init__(self, generator, arcface, parser=None, *, device: str = "cpu", size: int | None = None, name: str | None = None):
        self.generator, self.arcface, self.parser = generator, arcface, parser
        self.device = device
        self.size = size or generator.size
        self.template = TEMPLATES[self.size]
        self.name = name or f"simswap_{self.size}"
        self.identity_cache: dict[Hashable, np.ndarray] = {}

    @property
    def backend(self) -> str:
        """The networks in use, for logs and reports."""
        return " + ".join((self.name, IDENTITY_NETWORK) + ((PARSER,) if self.parser is not None else ()))

    def align(self, image: np.ndarray, five: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The S×S crop the generator expects, and the matrix from `image` pixels to it."""
        return warp_face(image, np.asarray(five, dtype=np.float64), self.template, self.size)

    def run(self, network: Callable, *inputs):
        """`network` on the inputs in batches on the models' device (no autograd; bfloat16 autocast on CUDA); float32 on the CPU back."""
        import torch

        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda") else contextlib.nullcontext()
        outputs = []
        with torch.inference_mode(), autocast:
            for start in range(0, len(inputs[0]), BATCH_SIZE):
                batch = [tensor[start : start + BATCH_SIZE].to(self.device) for tensor in inputs]
                outputs.append(network(*batch).float().cpu())
        return torch.cat(outputs)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """ArcFace identities of aligned crops: N×512 float32, L2-normalised."""
        if not len(crops):
            return np.zeros((0, 512), np.float32)
        return self.run(partial(arcface_identity, self.arcface), to_tensor(crops)).numpy()

    def embed_cached(self, items: Sequence[tuple[Hashable, Callable[[], np.ndarray]]]) -> np.ndarray:
        """Identities of (key, aligned crop maker) pairs; each key is embedded once per process, in one batch."""
        missing = {key: make for key, make in items if key not in self.identity_cache}
        if missing:
            embeddings = self.embed([make() for make in missing.values()])
            self.identity_cache.update(zip(missing, embeddings))
        return np.stack([self.identity_cache[key] for key, _ in items])

    def generate(self, crops: Sequence[np.ndarray], latents: np.ndarray) -> list[np.ndarray]:
        """Each aligned crop given the identity of the matching latent (SimSwap's forward), as uint8 crops."""
        import torch

        return to_crops(self.run(self.generator, to_tensor(crops), torch.from_numpy(np.asarray(latents, dtype=np.float32))))

    def parse_faces(self, crops: Sequence[np.ndarray]) -> np.ndarray | None:
        """N×S×S float32: 1 where BiSeNet sees the face's own skin or features, 0 elsewhere; None without BiSeNet."""
        import torch
        import torch.nn.functional as F

        from pipeline.networks.bisenet import FACE_PARSING_CLASSES

        if self.parser is None:
            return None
        face_classes = torch.tensor([FACE_PARSING_CLASSES.index(name) for name in FACE_CLASSES])

        def face_share(images):
            large = F.interpolate(imagenet_normalised(images), size=(PARSE_SIZE, PARSE_SIZE), mode="bilinear", align_corners=False)
            labels = self.parser(large)[0].argmax(dim=1)
            is_face = torch.isin(labels, face_classes.to(labels.device)).float()[:, None]
            return F.interpolate(is_face, size=images.shape[2:], mode="area")[:, 0]

        return (self.run(face_share, to_tensor(crops)).numpy() > 0.5).astype(np.float32)

    def harmonise(self, own: np.ndarray, composite: np.ndarray, five: np.ndarray) -> np.ndarray:
        """`composite` re-rendered by the generator with the identity embedded from `own`.

        Both images are in the same pixels, where the face has the five
        landmarks `five`. The generator's crop is warped back and faded in;
        outside its reach the composite's pixels stay.
        """
        matrix = alignment_matrix(np.asarray(five, dtype=np.float64), self.template, self.size)  # one alignment for both
        own_crop, crop = warp_antialiased(own, matrix, self.size), warp_antialiased(composite, matrix, self.size)
        swapped = self.generate([crop], self.embed([own_crop]))[0]
        height, width = composite.shape[:2]
        inverse = cv2.invertAffineTransform(matrix)
        back = cv2.warpAffine(swapped, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        reach = cv2.warpAffine(square_reach(self.size), inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)[..., None]
        return np.round(composite * (1 - reach) + back * reach).astype(np.uint8)


def square_reach(size: int) -> np.ndarray:
    """size×size float32: 1 inside, fading to 0 towards the edges over REACH_FEATHER of the side."""
    edge = max(1, int(round(REACH_FEATHER * size)))
    reach = np.zeros((size, size), np.float32)
    reach[edge:-edge, edge:-edge] = 1.0
    return cv2.GaussianBlur(reach, (0, 0), edge / 3)
