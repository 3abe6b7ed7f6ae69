"""Stationary background estimate that ignores moving objects.

Pixels covered by a detected object do not update the estimate while they move. A pixel that has not changed for
``still_frames`` frames is background whatever the detector says: a parked car or a left bag joins the background
(and so the next key picture) instead of being sent as a region in every frame. A pixel seen as background for the
first time takes that value outright; after that it follows an exponential running average. Pixels never yet seen as
background are filled from their surroundings when a key picture is made.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)


class BackgroundModel:
    def __init__(self, learning_rate: float, still_frames: int = 0, still_level: float = 10.0) -> None:
        self.learning_rate = learning_rate
        self.still_frames = still_frames  # 0: detected objects never join the background
        self.still_level = still_level
        self._estimate: np.ndarray | None = None  # float32 HxWx3
        self._observed: np.ndarray | None = None  # bool HxW
        self._previous: np.ndarray | None = None  # last frame, uint8
        self._still: np.ndarray | None = None  # frames each pixel has not changed, uint16

    def update(self, image: np.ndarray, foreground: np.ndarray) -> None:
        """Learn from the pixels of ``image`` where ``foreground`` is False or the pixel has long been still."""
        if self.still_frames > 0:
            foreground = foreground & ~self._count_still(image)
        if self._estimate is None:
            self._estimate = image.astype(np.float32)
            self._observed = ~foreground
            return
        assert self._observed is not None
        background = ~foreground
        first_seen = background & ~self._observed
        self._estimate[first_seen] = image[first_seen]
        seen_again = background & self._observed
        if self.learning_rate >= 1.0:
            self._estimate[seen_again] = image[seen_again]
        else:
            est = self._estimate[seen_again]
            est += self.learning_rate * (image[seen_again].astype(np.float32) - est)
            self._estimate[seen_again] = est
        self._observed |= background

    def _count_still(self, image: np.ndarray) -> np.ndarray:
        """Update the per-pixel still counters; returns where a pixel has been still for ``still_frames`` frames."""
        if self._previous is None or self._still is None:
            self._still = np.zeros(image.shape[:2], np.uint16)
        else:
            diff = cv2.absdiff(image, self._previous).max(axis=2)
            self._still = np.where(diff <= self.still_level, np.minimum(self._still + 1, 60000), 0).astype(np.uint16)
        self._previous = image.copy()
        return self._still >= self.still_frames

    @property
    def observed_fraction(self) -> float:
        return 0.0 if self._observed is None else float(self._observed.mean())

    def picture(self) -> np.ndarray:
        """The current background as uint8 RGB, holes filled from their surroundings."""
        if self._estimate is None or self._observed is None:
            raise RuntimeError("background model has seen no frame")
        picture = np.clip(self._estimate + 0.5, 0, 255).astype(np.uint8)
        holes = ~self._observed
        if holes.any():
            picture = _fill_holes(picture, holes)
        return picture


def _fill_holes(picture: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Inpaint ``holes`` at quarter resolution (fast on 1080p) and paste the result into them."""
    h, w = holes.shape
    small = cv2.resize(picture, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small_holes = cv2.resize(holes.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    small_holes = cv2.dilate(small_holes, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_holes, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = picture.copy()
    out[holes] = filled[holes]
    return out
