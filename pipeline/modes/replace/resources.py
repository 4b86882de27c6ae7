"""Replace mode's models, loaded lazily and once per process: dlib's 68-point predictor,
dlib's face recogniser, the donor pool (built on first use when missing, with its new
identities when the age/gender estimator is given: `identities.ensure_identities`) and, when
their weights are present, the published swap networks (`published.load_swap`:
SimSwap, ArcFace, BiSeNet; otherwise the classical warp runs).

`Models.replace` holds one `ReplaceResources`; the blur path never touches it,
so it costs nothing until replace mode is first asked for.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import weights
from pipeline.detection import FaceDetector
from pipeline.errors import PipelineError, WeightsError
from pipeline.face.donors import DonorPool, donor_beards
from pipeline.modes.replace.published import PublishedSwap, load_swap

log = logging.getLogger(__name__)

POOL_FOLDER = "donor_pool"  # inside the weights folder (git-ignored)


class ReplaceUnavailable(PipelineError):
    """Replace mode cannot run here: dlib or its model files, or the donor pool, are missing."""

    code = "mode_unavailable"


@dataclass(frozen=True)
class ReplaceModels:
    predictor: object  # dlib.shape_predictor (68 points)
    recognizer: object  # dlib.face_recognition_model_v1
    pool: DonorPool
    swap: PublishedSwap | None = None  # SimSwap + ArcFace (+ BiSeNet) when their weights are present
    pool_people: tuple = ()  # dlib descriptors of every crop of every openpeople person: no result may pass as one
    beards: dict = field(default_factory=dict)  # each male donor's beard by id (`donors.donor_beards`)


class ReplaceResources:
    """Loads `ReplaceModels` on first `get()` and keeps them.

    Args:
        device: where the published networks run.
        swap_loader: `(weights_dir, device) -> PublishedSwap | None`; tests and
            benchmarks hand in networks built without weight files.
        age_gender: our estimator; with it, the pool's new identities are made when missing.
        identities: how many new identities to make (`identities.ensure_identities`).
    """

    def __init__(
        self, weights_dir: Path, detector: FaceDetector, device: str = "cpu",
        swap_loader: Callable[[Path, str], PublishedSwap | None] = load_swap, age_gender=None, identities: int = 0,
    ):
        self.weights_dir = Path(weights_dir)
        self.detector = detector
        self.device = device
        self.swap_loader = swap_loader
        self.age_gender = age_gender
        self.identities = identities
        self._models: ReplaceModels | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether `get` has loaded the models (and made the donors)."""
        return self._models is not None

    @property
    def pool_folder(self) -> Path:
        return self.weights_dir / POOL_FOLDER

    def unavailable_reason(self) -> str | None:
        """None when replace mode can run (files present and verified), else why not; loads nothing big."""
        if self._models is not None:
            return None
        if importlib.util.find_spec("dlib") is None:
            return "the dlib package is not installed; install it with: " + weights.MODELS_INSTALL_COMMAND
        try:
            weights.locate("dlib_landmarks68", self.weights_dir)
            weights.locate("dlib_face_recognition", self.weights_dir)
        except WeightsError as error:
            return str(error)
        from pipeline.face.pool import openpeople_folder

        if not (self.pool_folder / "index.json").is_file() and openpeople_folder() is None:
            return "no donor pool and the openpeople package is missing; install it with: " + weights.MODELS_INSTALL_COMMAND
        return None

    def get(self) -> ReplaceModels:
        """The loaded models (the first call loads them, and builds the donor pool if needed).

        Raises:
            ReplaceUnavailable: something replace mode needs is missing.
        """
        with self._lock:
            if self._models is None:
                reason = self.unavailable_reason()
                if reason is not None:
                    raise ReplaceUnavailable(f"replace: {reason}")
                import dlib

                from pipeline.face.pool import PoolUnavailable, load_or_build_pool
                from pipeline.modes.replace.identities import ensure_identities, pool_descriptors, without_identities

                predictor = dlib.shape_predictor(str(weights.locate("dlib_landmarks68", self.weights_dir)))
                recognizer = dlib.face_recognition_model_v1(str(weights.locate("dlib_face_recognition", self.weights_dir)))
                try:
                    pool = load_or_build_pool(self.pool_folder, self.detector, predictor)
                except PoolUnavailable as error:
                    raise ReplaceUnavailable(f"replace: {error}") from None
                if self.age_gender is not None and self.identities > 0:
                    pool = ensure_identities(pool, recognizer, self.detector, predictor, self.age_gender, self.identities)
                else:
                    pool = without_identities(pool)
                people = tuple(d for found in pool_descriptors(pool, recognizer).values() for d in found)
                swap = self.swap_loader(self.weights_dir, self.device)
                self._models = ReplaceModels(predictor, recognizer, pool, swap, people, donor_beards(pool))
                swap = self._models.swap
                log.info("replace mode uses %s", f"{swap.backend} on {swap.device}" if swap else "the classical warp")
            return self._models
