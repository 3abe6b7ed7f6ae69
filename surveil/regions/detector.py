"""Object regions from ultralytics YOLO segmentation: class, box and a mask that no other region shares."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from surveil.config import Config, DetectorConfig
from surveil.devices import resolve_device
from surveil.errors import SurveilError
from surveil.paths import find_in, weights_path
from surveil.regions.faces import FACE_LABEL, FaceFinder, carve_faces
from surveil.types import Frame, Region

logger = logging.getLogger(__name__)

os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or downloads on an edge box without internet


def resolve_detector_weights(name: str) -> str:
    """Weights on the search path; a bare name is handed to ultralytics (it downloads it where there is internet)."""
    found = find_in(weights_path(), name)
    if found is not None:
        return str(found)
    if Path(name).name != name or os.environ.get("YOLO_OFFLINE") == "1":
        searched = ", ".join(str(p) for p in weights_path())
        raise SurveilError(f"detector weights not found: {name} (searched {searched}; set SURVEIL_WEIGHTS_PATH)")
    return name


class RegionDetector:
    """Runs YOLO-seg on frames and turns its output into non-overlapping ``Region``s."""

    def __init__(self, config: Config) -> None:
        from ultralytics import YOLO

        self.config = config
        self.settings: DetectorConfig = config.detector
        weights = resolve_detector_weights(self.settings.weights)
        try:
            self.model = YOLO(weights, task="segment")
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise SurveilError(f"cannot load detector weights {weights}: {exc}") from exc
        self.device = resolve_device(self.settings.device)
        self.names: dict[int, str] = self.model.names
        self.faces = FaceFinder(config.faces) if config.faces.enabled else None

    def detect(self, frame: Frame) -> list[Region]:
        return self.detect_image(frame.image)

    def detect_image(self, image: np.ndarray) -> list[Region]:
        """Regions in an RGB image, highest score first, then faces; each pixel belongs to at most one region."""
        result = self.model.predict(
            np.ascontiguousarray(image[..., ::-1]),  # ultralytics takes BGR arrays
            conf=self.settings.confidence,
            iou=self.settings.iou,
            imgsz=self.settings.imgsz,
            device=self.device,
            verbose=False,
        )[0]
        if result.masks is None or len(result.boxes) == 0:
            return []
        height, width = image.shape[:2]
        boxes = result.boxes.xyxy.cpu().numpy()
        scores = result.boxes.conf.cpu().numpy()
        labels = result.boxes.cls.cpu().numpy().astype(int)
        masks = result.masks.data.cpu().numpy() > 0.5  # (n, h_in, w_in) on the letterboxed inference grid
        to_mask_grid = _letterbox_transform((height, width), masks.shape[1:])

        claimed = np.zeros((height, width), dtype=bool)
        regions: list[Region] = []
        for index in np.argsort(-scores):
            full_mask = self._mask_in_frame(masks[index], boxes[index], to_mask_grid, (height, width))
            if full_mask is None:
                continue
            (y0, y1), (x0, x1), mask = full_mask
            mask &= ~claimed[y0:y1, x0:x1]
            if int(mask.sum()) < self.settings.min_area_px:
                continue
            ys, xs = np.nonzero(mask)
            ty0, ty1, tx0, tx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            mask = mask[ty0:ty1, tx0:tx1]
            box = (int(x0 + tx0), int(y0 + ty0), int(x0 + tx1), int(y0 + ty1))
            claimed[box[1] : box[3], box[0] : box[2]] |= mask
            label = self.names[int(labels[index])]
            regions.append(
                Region(
                    region_id=len(regions),
                    label=label,
                    codec_class=self.config.codec_class_of(label),
                    score=float(scores[index]),
                    box=box,
                    mask=mask,
                )
            )
        if self.faces is not None:
            face_class = self.config.codec_class_of(FACE_LABEL)
            regions = carve_faces(image, regions, self.faces, face_class, self.settings.min_area_px)
        return regions

    def _mask_in_frame(
        self,
        grid_mask: np.ndarray,
        box: np.ndarray,
        to_mask_grid: tuple[float, float, float],
        frame_hw: tuple[int, int],
    ) -> tuple[tuple[int, int], tuple[int, int], np.ndarray] | None:
        """The detection's mask resized to frame pixels inside its (dilated) box.

        The mask is grown by ``mask_dilate_px`` pixels of the inference grid, not of the frame: a mask is only as
        sharp as that grid (one grid pixel is three frame pixels of a 1080p frame at ``imgsz`` 640), and an object
        edge the mask misses is left to the background, where a moving object is not.
        """
        height, width = frame_hw
        gain, pad_x, pad_y = to_mask_grid
        grow = int(np.ceil(self.settings.mask_dilate_px / min(gain, 1.0)))
        x0 = max(0, int(np.floor(box[0])) - grow)
        y0 = max(0, int(np.floor(box[1])) - grow)
        x1 = min(width, int(np.ceil(box[2])) + grow)
        y1 = min(height, int(np.ceil(box[3])) + grow)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        gx0 = int(np.clip(np.floor(x0 * gain + pad_x), 0, grid_mask.shape[1] - 1))
        gy0 = int(np.clip(np.floor(y0 * gain + pad_y), 0, grid_mask.shape[0] - 1))
        gx1 = int(np.clip(np.ceil(x1 * gain + pad_x), gx0 + 1, grid_mask.shape[1]))
        gy1 = int(np.clip(np.ceil(y1 * gain + pad_y), gy0 + 1, grid_mask.shape[0]))
        window = grid_mask[gy0:gy1, gx0:gx1].astype(np.uint8)
        mask = cv2.resize(window, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) > 0
        if grow > 0:
            mask = cv2.dilate(mask.astype(np.uint8), _disc(grow)) > 0
        return (y0, y1), (x0, x1), mask


@functools.cache
def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _letterbox_transform(frame_hw: tuple[int, int], grid_hw: tuple[int, int]) -> tuple[float, float, float]:
    """(gain, pad_x, pad_y) mapping frame pixels to the centred letterbox grid ultralytics infers on."""
    gain = min(grid_hw[0] / frame_hw[0], grid_hw[1] / frame_hw[1])
    pad_x = (grid_hw[1] - frame_hw[1] * gain) / 2
    pad_y = (grid_hw[0] - frame_hw[0] * gain) / 2
    return gain, pad_x, pad_y
