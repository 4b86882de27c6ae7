"""A second opinion on every face the main detector reports: CenterFace, run on a small crop around it.

RetinaFace alone calls some cartoons and dark blobs faces with scores of 0.7-0.9.
CenterFace, asked about a 96-pixel crop around such a box, gives them 0.2 or
less, while it gives real faces (masked ones included) 0.2-0.9. Neither score
alone separates the two, their sum does: a face is kept when the main score
plus CenterFace's is at least `MIN_COMBINED_SCORE`. Measured on the test
photos (bench/detect.py): no ground-truth face of 20 px or more is lost.
One crop costs about 6 ms on a CPU core; faces scored 0.95 or more need none.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.detection.boxes import box_iou
from pipeline.detection.centerface import CenterFaceDetector
from pipeline.detection.types import Detections

CROP_SIDE = 96  # pixels of the square crop CenterFace sees
CROP_MARGIN = 1.0  # context around the face, in face sizes: the face fills half the crop
MIN_COMBINED_SCORE = 0.95  # main score + CenterFace's score on the crop
MIN_CROP_SCORE = 0.01  # CenterFace candidates below this count as no opinion (score 0)
SAME_FACE_IOU = 0.3  # CenterFace's box must overlap the face's this much to speak of it


class SecondOpinion:
    def __init__(self, centerface: CenterFaceDetector):
        self.centerface = centerface

    def confirm(self, image: np.ndarray, detections: Detections) -> Detections:
        """The detections that CenterFace's crop score, added to their own, confirms."""
        doubtful = detections.scores < MIN_COMBINED_SCORE  # the others pass whatever CenterFace says: not asked
        agreement = np.zeros(len(detections), dtype=np.float32)
        agreement[doubtful] = [self.crop_score(image, box) for box in detections.boxes[doubtful]]
        return detections.subset(np.nonzero(detections.scores + agreement >= MIN_COMBINED_SCORE)[0])

    def crop_score(self, image: np.ndarray, box: np.ndarray) -> float:
        """CenterFace's best score for a face at `box`, seen in a square crop around it (0 when it sees none)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        scale = CROP_SIDE / (max(x2 - x1, y2 - y1, 1.0) * (1 + CROP_MARGIN))
        centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
        to_crop = np.float32([[scale, 0, CROP_SIDE / 2 - scale * centre_x], [0, scale, CROP_SIDE / 2 - scale * centre_y]])
        crop = cv2.warpAffine(image, to_crop, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        found = self.centerface.detect(crop, MIN_CROP_SCORE)
        if len(found) == 0:
            return 0.0
        half_w, half_h = scale * (x2 - x1) / 2, scale * (y2 - y1) / 2
        face = np.asarray([[CROP_SIDE / 2 - half_w, CROP_SIDE / 2 - half_h, CROP_SIDE / 2 + half_w, CROP_SIDE / 2 + half_h]])
        same = box_iou(face, found.boxes)[0] > SAME_FACE_IOU
        return float(found.scores[same].max()) if same.any() else 0.0
