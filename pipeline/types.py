"""Plain data passed between the pipeline's stages, and its JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

Gender = Literal["female", "male"]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels
Landmarks5 = tuple[tuple[float, float], ...]  # left eye, right eye, nose, left mouth, right mouth
MASKED_THRESHOLD = 0.5  # a face whose mask probability (`face.covering.mask_probability`) reaches this is treated as masked


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the photo as the user sees it (EXIF applied).

    `number` is the 1-based number shown on the contact sheet, in reading order.
    """

    number: int
    box: Box
    score: float
    landmarks: Landmarks5
    gender: Gender = "female"
    gender_score: float = 0.5
    age: float = 0.0
    mask: float | None = None  # probability that the face wears a face mask; None when not measured

    @property
    def wears_mask(self) -> bool:
        """The face was measured and is likely to wear a face mask."""
        return self.mask is not None and self.mask >= MASKED_THRESHOLD

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_json(self) -> dict[str, Any]:
        """The face as DESIGN.md contract 1 writes it."""
        return {
            "number": self.number,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "gender": self.gender,
            "gender_score": round(float(self.gender_score), 4),
            "age": round(float(self.age), 1),
        } | ({} if self.mask is None else {"mask": round(float(self.mask), 3)})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Face":
        return cls(
            number=int(data["number"]),
            box=tuple(float(v) for v in data["box"]),
            score=float(data["score"]),
            landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
            gender=data["gender"],
            gender_score=float(data["gender_score"]),
            age=float(data["age"]),
            mask=None if data.get("mask") is None else float(data["mask"]),
        )


@dataclass(frozen=True)
class ModeOutput:
    crop: np.ndarray  # h×w×3 uint8: new pixels
    mask: np.ndarray  # h×w float32 in [0, 1]: where to use them
    matrix: np.ndarray  # 2×3: photo pixels -> crop pixels


@dataclass(frozen=True)
class FaceReport:
    """What a mode did to one face, for the worker and the bot to surface.

    `mode` is the mode actually applied (replace falls back to `blur` for faces it
    cannot change safely; `reason` says why). `passed` is the anonymity check:
    True or False when one ran, None when none applies (blur).
    """

    number: int
    mode: str
    passed: bool | None = None
    distance: float | None = None  # identity distance from the original face
    kept_distance: float | None = None  # identity distance to the nearest kept face
    donor: str | None = None
    reason: str = ""

    def describe(self) -> str:
        """One line for people: the face, what was done to it, and why."""
        done = {"replace": "replaced", "blur": "blurred", "unmask": "unmasked", "none": "left as it was"}.get(self.mode, self.mode)
        if self.donor:
            done += f" with {self.donor}"
        why = [self.reason] if self.reason else []
        if self.mode == "replace" and self.distance is not None:
            why.append(f"dlib distance {self.distance:.2f} from the original")
        return f"face {self.number}: {done}" + (f": {'; '.join(why)}" if why else "")


class FaceChanger(Protocol):
    reports: list[FaceReport]

    def apply(self, face: Face) -> ModeOutput: ...


@dataclass(frozen=True)
class Analysis:
    width: int
    height: int
    faces: tuple[Face, ...]
    default_keep: tuple[int, ...]
    sheet_jpeg: bytes = field(default=b"", repr=False)
    thumbnails: tuple[bytes, ...] = field(default=(), repr=False)  # one square JPEG per face, in number order

    def to_json(self) -> dict[str, Any]:
        """Everything but the sheet; `faces` follows DESIGN.md contract 1."""
        return {
            "image": {"width": self.width, "height": self.height},
            "faces": [face.to_json() for face in self.faces],
            "default_keep": list(self.default_keep),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Analysis":
        return cls(
            width=int(data["image"]["width"]),
            height=int(data["image"]["height"]),
            faces=tuple(Face.from_json(face) for face in data["faces"]),
            default_keep=tuple(int(n) for n in data.get("default_keep", ())),
        )
