"""An invisible "AI-edited" watermark in the AI-made pixels, meant to survive chat recompression.

Telegram's photo drops XMP and C2PA and recompresses: a resize to 1280 px and a
JPEG of about quality 70-85. The mark therefore lives on a grid fixed relative to
the picture, not to its pixels: every photo is seen through a "canonical" copy
whose long side is 1024 px (or the photo's own, when smaller), cut into 8×8
blocks. Each block carries one bit of a fixed pseudo-random pattern, written
by invisible-watermark's DWT-DCT-SVD coder (quantisation of the block's largest
singular value in the chroma U channel). The mark is added only where the mode
changed pixels, so kept faces and the rest of the photo stay exactly as they
were; its strength is about ±3 grey levels of chroma.

A file counts as marked when some window of 8×8 blocks (≈ 6 % of the long side)
agrees with the pattern in at least `WINDOW_THRESHOLD` of its 64 blocks. Chance
agreement in a window is Binomial(64, ½), so an unmarked photo passes that bar
with probability about 1e-8 per window; faces smaller than a window are not
detectable after recompression.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pywt

CANONICAL_LONG_SIDE = 1024
BLOCK = 8  # canonical pixels per block side: a 4×4 block of the Haar DWT's LL band
WINDOW = 8  # blocks per side of a detection window
WINDOW_THRESHOLD = 54  # of WINDOW² blocks that must agree with the pattern
QUANTISATION_STEP = 36  # of the block's largest singular value: the coder's default strength
CHROMA_OFFSET = 127.5  # OpenCV centres float U at 0.5; the coder expects 8-bit U, centred at 128
PATTERN_SEED = 0xA1ED17ED  # the "AI-edited" code: which bit each block of the grid carries
_MAX_BLOCKS = 256  # pattern side; canonical images have at most 128 blocks per side


def embed(image: np.ndarray, original: np.ndarray) -> None:
    """Add the mark, in place, to the pixels of the RGB `image` that differ from `original`.

    Only the box around the changed pixels is resampled, and only blocks holding
    a changed pixel are coded, so past one pass over the photo to find them the
    cost follows the changed faces, not the photo.
    """
    height, width = image.shape[:2]
    difference = cv2.absdiff(image, original).reshape(height, width * 3)
    rows = np.flatnonzero(difference.max(axis=1))  # NumPy's max: several times faster here than cv2.reduce
    if rows.size == 0:
        return
    columns = np.flatnonzero(difference.max(axis=0)) // 3
    x, y, w, h = int(columns[0]), int(rows[0]), int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1)
    canonical_width, canonical_height = canonical_size(width, height)
    scale_x, scale_y = width / canonical_width, height / canonical_height
    # The box in whole canonical blocks, and the photo pixels those blocks cover.
    bx1, by1 = int(x / scale_x / BLOCK), int(y / scale_y / BLOCK)
    bx2 = min(canonical_width // BLOCK, int(np.ceil((x + w) / scale_x / BLOCK)))
    by2 = min(canonical_height // BLOCK, int(np.ceil((y + h) / scale_y / BLOCK)))
    if bx2 <= bx1 or by2 <= by1:
        return
    px1, py1 = int(round(bx1 * BLOCK * scale_x)), int(round(by1 * BLOCK * scale_y))
    px2, py2 = int(round(bx2 * BLOCK * scale_x)), int(round(by2 * BLOCK * scale_y))
    region = image[py1:py2, px1:px2]
    inside = difference[py1:py2, px1 * 3 : px2 * 3].reshape(py2 - py1, px2 - px1, 3).max(axis=2) > 0
    canonical = cv2.resize(region, ((bx2 - bx1) * BLOCK, (by2 - by1) * BLOCK), interpolation=cv2.INTER_AREA).astype(np.float32)
    touched = cv2.resize(inside.astype(np.float32), (bx2 - bx1, by2 - by1), interpolation=cv2.INTER_AREA) > 0
    yuv = cv2.cvtColor(canonical, cv2.COLOR_RGB2YUV)
    low, details = pywt.dwt2(yuv[:, :, 1] + CHROMA_OFFSET, "haar")
    coder, bits = _coder(), pattern()[by1:by2, bx1:bx2]
    for row, col in zip(*np.nonzero(touched)):
        block = low[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4]
        block[:] = coder.diffuse_dct_svd(np.ascontiguousarray(block), int(bits[row, col]), QUANTISATION_STEP)
    marked = yuv.copy()
    marked[:, :, 1] = pywt.idwt2((low, details), "haar") - CHROMA_OFFSET
    delta = cv2.resize(cv2.cvtColor(marked, cv2.COLOR_YUV2RGB) - canonical, (px2 - px1, py2 - py1), interpolation=cv2.INTER_LINEAR)
    np.copyto(region, np.clip(np.rint(region + delta), 0, 255).astype(np.uint8), where=inside[:, :, None])


def detect(image: np.ndarray) -> bool:
    """Whether the RGB `image` carries the mark somewhere."""
    return best_window_agreement(image) >= WINDOW_THRESHOLD


def best_window_agreement(image: np.ndarray) -> int:
    """The most blocks, of any WINDOW×WINDOW window, whose bit agrees with the pattern (chance: about half)."""
    height, width = image.shape[:2]
    canonical_width, canonical_height = canonical_size(width, height)
    rows, cols = canonical_height // BLOCK, canonical_width // BLOCK
    if rows < WINDOW or cols < WINDOW:
        return 0
    canonical = cv2.resize(image, (canonical_width, canonical_height), interpolation=cv2.INTER_AREA)
    chroma = cv2.cvtColor(canonical[: rows * BLOCK, : cols * BLOCK].astype(np.float32), cv2.COLOR_RGB2YUV)[:, :, 1]
    low, _ = pywt.dwt2(chroma + CHROMA_OFFSET, "haar")
    coder = _coder()
    bits = np.array([
        [coder.infer_dct_svd(np.ascontiguousarray(low[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4]), QUANTISATION_STEP) for col in range(cols)]
        for row in range(rows)
    ])
    total = cv2.integral((bits == pattern()[:rows, :cols]).astype(np.uint8))  # (rows+1)×(cols+1) running sums
    windows = total[WINDOW:, WINDOW:] - total[:-WINDOW, WINDOW:] - total[WINDOW:, :-WINDOW] + total[:-WINDOW, :-WINDOW]
    return int(windows.max())


def canonical_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the canonical copy: long side 1024 px, or the photo's own when smaller."""
    scale = min(CANONICAL_LONG_SIDE, max(width, height)) / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@lru_cache(maxsize=1)
def pattern() -> np.ndarray:
    """The bit each block of the canonical grid carries, rows × columns."""
    return np.random.default_rng(PATTERN_SEED).integers(0, 2, size=(_MAX_BLOCKS, _MAX_BLOCKS), dtype=np.uint8)


@lru_cache(maxsize=1)
def _coder():
    """invisible-watermark's DWT-DCT-SVD block coder (4×4 blocks of the LL band).

    Only its per-block methods are used: its whole-image `encode` swaps the
    horizontal and vertical detail bands on the way back, which smears colour
    edges, and it expects 8-bit YUV, so the transform is done here.
    """
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd

    return EmbedDwtDctSvd(block=4)
