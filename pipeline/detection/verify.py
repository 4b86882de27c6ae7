"""A second opinion on every face the main detector reports: CenterFace on a small crop around it, and its eyes.

RetinaFace alone calls some cartoons and dark blobs faces with scores of 0.7-0.9.
CenterFace, asked about a 96-pixel crop around such a box, gives them 0.2 or
less, while it gives real faces (masked ones included) 0.2-0.9. Neither score
alone separates the two, their sum does: a face is kept when the main score
plus CenterFace's is at least `MIN_COMBINED_SCORE`, and CenterFace sees it at
all (`MIN_AGREEMENT`).

Some things pass even that: a phone held up in a crowd (main score 0.97), a
head seen mostly from behind another. Where their "eyes" are, the grey level
is no darker than on the bridge of the nose and the cheeks, as a real face's
eyes are, masked or not (`eye_contrast`). Such a face is kept only when the two
detectors are sure of it together (`SURE_COMBINED_SCORE`). Measured on the test
photos (bench/detect.py): no ground-truth face of 20 px or more is lost.
One CenterFace crop costs about 3-6 ms on a CPU core; faces scored 0.95 or more
whose eyes look like eyes need none. The eye check costs about 0.1 ms a face.
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
# Measured on photo 52, thin margins: the hidden heads and the phone sum 1.08-1.37, a real 7 px face whose eyes
# are not darker sums 1.43. Real faces of 20 px or more measured -0.12 and up in `eye_contrast`, the phone -0.76,
# the hidden heads -0.41 and -0.79.
SURE_COMBINED_SCORE = 1.4  # the same sum, enough to keep a face whose eyes are not darker than around them
MIN_EYE_CONTRAST = -0.25  # below this, a face's eyes are not darker than around them (see `eye_contrast`)
MIN_CROP_SCORE = 0.01  # CenterFace candidates below this count as no opinion (score 0)
# A main score just under 0.95 needs almost no agreement to reach the sum: a motorcycle's headlight scored 0.947
# and CenterFace 0.06. Measured: CenterFace gave every real face 0.17 or more; the headlight, a cartoon and gravel 0.05-0.13.
MIN_AGREEMENT = 0.12  # CenterFace's own score, when asked, that a face needs whatever the sum
SAME_FACE_IOU = 0.3  # CenterFace's box must overlap the face's this much to speak of it


class SecondOpinion:
    def __init__(self, centerface: CenterFaceDetector):
        self.centerface = centerface

    def confirm(self, image: np.ndarray, detections: Detections) -> Detections:
        """The detections confirmed by CenterFace's crop score, alone and added to their own, and by their eyes unless that sum is sure."""
        crops = [face_crop(image, box) for box in detections.boxes]
        eyes_look_right = np.array(
            [eye_contrast(crop, to_crop, points) >= MIN_EYE_CONTRAST for (crop, to_crop), points in zip(crops, detections.landmarks)],
            dtype=bool,
        )
        asked = (detections.scores < MIN_COMBINED_SCORE) | ~eyes_look_right  # the others pass whatever CenterFace says
        agreement = np.zeros(len(detections), dtype=np.float32)
        agreement[asked] = [self.crop_score(*crops[i], detections.boxes[i]) for i in np.nonzero(asked)[0]]
        combined = detections.scores + agreement
        keep = (combined >= MIN_COMBINED_SCORE) & (~asked | (agreement >= MIN_AGREEMENT))
        keep &= eyes_look_right | (combined >= SURE_COMBINED_SCORE)
        return detections.subset(np.nonzero(keep)[0])

    def crop_score(self, crop: np.ndarray, to_crop: np.ndarray, box: np.ndarray) -> float:
        """CenterFace's best score for a face at `box`, seen in its `face_crop` (0 when it sees none)."""
        found = self.centerface.detect(crop, MIN_CROP_SCORE)
        if len(found) == 0:
            return 0.0
        face = (box.reshape(2, 2) * to_crop.diagonal() + to_crop[:, 2]).reshape(1, 4)
        same = box_iou(face, found.boxes)[0] > SAME_FACE_IOU
        return float(found.scores[same].max()) if same.any() else 0.0


def face_crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The square `CROP_SIDE` crop centred on `box`, the face filling half of it, and the 2×3 matrix from photo to crop pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    scale = CROP_SIDE / (max(x2 - x1, y2 - y1, 1.0) * (1 + CROP_MARGIN))
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    to_crop = np.float32([[scale, 0, CROP_SIDE / 2 - scale * centre_x], [0, scale, CROP_SIDE / 2 - scale * centre_y]])
    crop = cv2.warpAffine(image, to_crop, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, to_crop


def eye_contrast(crop: np.ndarray, to_crop: np.ndarray, landmarks: np.ndarray) -> float:
    """How much darker the two eye points are than the bridge of the nose and the cheeks below them.

    In grey levels (slightly blurred) of the `face_crop`, divided by the spread of the
    grey levels over the face: a real face's eyes score well above 0, a flat or lit-up
    thing where the detector put eyes scores below.
    """
    grey = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    left_eye, right_eye = landmarks[:2] * to_crop.diagonal() + to_crop[:, 2]
    below = np.float32([0, max(float(np.linalg.norm(right_eye - left_eye)), 3.0) / 2])  # half the distance between the eyes

    def level(point: np.ndarray) -> float:
        x, y = np.clip(np.round(point), 0, CROP_SIDE - 1).astype(int)
        return float(grey[y, x])

    eyes = (level(left_eye) + level(right_eye)) / 2
    around = (level((left_eye + right_eye) / 2) + level(left_eye + below) + level(right_eye + below)) / 3
    face = grey[CROP_SIDE // 4 : 3 * CROP_SIDE // 4, CROP_SIDE // 4 : 3 * CROP_SIDE // 4]
    return (around - eyes) / max(float(face.std()), 1.0)
