"""Centring: a region's masked pixels placed in the middle of a codec canvas, and the inverse for the station."""

from __future__ import annotations

import math

import cv2
import numpy as np

from surveil.config import CropConfig
from surveil.types import Box, Placement

STATION_MARGIN_PX = 2  # pixels a decoded object's mask reaches past its edge once the station resamples it


def plan_placement(box: Box, settings: CropConfig) -> Placement:
    """Scale (down only) so the longer side fits ``max_side``; pad to a multiple of the codec stride, centred."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    scale = min(1.0, settings.max_side / max(width, height))
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas_w = math.ceil(scaled_w / settings.multiple) * settings.multiple
    canvas_h = math.ceil(scaled_h / settings.multiple) * settings.multiple
    return Placement(
        box=box,
        scale=scale,
        canvas=(canvas_w, canvas_h),
        offset=((canvas_w - scaled_w) // 2, (canvas_h - scaled_h) // 2),
    )


def centre_region(image: np.ndarray, box: Box, mask: np.ndarray, settings: CropConfig) -> tuple[np.ndarray, Placement]:
    """The canvas the codec sees: the object's pixels, ``fill`` elsewhere, centred."""
    placement = plan_placement(box, settings)
    x0, y0, x1, y1 = box
    pixels = image[y0:y1, x0:x1].copy()
    pixels[~mask] = settings.fill
    scaled_w, scaled_h = placement.scaled_size
    if placement.scale != 1.0:
        pixels = cv2.resize(pixels, (scaled_w, scaled_h), interpolation=cv2.INTER_AREA)
    canvas_w, canvas_h = placement.canvas
    canvas = np.full((canvas_h, canvas_w, 3), settings.fill, dtype=np.uint8)
    off_x, off_y = placement.offset
    canvas[off_y : off_y + scaled_h, off_x : off_x + scaled_w] = pixels
    return canvas, placement


def uncentre_region(canvas: np.ndarray, placement: Placement) -> np.ndarray:
    """Box-sized pixels recovered from a (decoded) canvas."""
    x0, y0, x1, y1 = placement.box
    scaled_w, scaled_h = placement.scaled_size
    off_x, off_y = placement.offset
    pixels = canvas[off_y : off_y + scaled_h, off_x : off_x + scaled_w]
    if placement.scale != 1.0:
        pixels = cv2.resize(pixels, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return pixels


def paste_region(image: np.ndarray, box: Box, mask: np.ndarray, pixels: np.ndarray) -> None:
    """Write ``pixels`` into ``image`` where ``mask`` is set (in place)."""
    x0, y0, x1, y1 = box
    target = image[y0:y1, x0:x1]
    target[mask] = pixels[mask]


def canvas_mask(mask: np.ndarray, placement: Placement) -> np.ndarray:
    """Where the object's pixels sit on the canvas (bool, canvas-sized): the pixels a decoder's output is judged on."""
    canvas_w, canvas_h = placement.canvas
    scaled_w, scaled_h = placement.scaled_size
    off_x, off_y = placement.offset
    scaled = mask
    if placement.scale != 1.0:
        scaled = cv2.resize(mask.astype(np.uint8), (scaled_w, scaled_h), interpolation=cv2.INTER_NEAREST) > 0
    out = np.zeros((canvas_h, canvas_w), dtype=bool)
    out[off_y : off_y + scaled_h, off_x : off_x + scaled_w] = scaled
    return out


def grow_mask(mask: np.ndarray, margin: int = STATION_MARGIN_PX) -> np.ndarray:
    """``mask`` (bool or 0/1) grown by ``margin`` pixels with an elliptical kernel, as uint8 0/1: the pixels a codec
    is judged on in training and in encoder-side refinement."""
    grown = mask.astype(np.uint8)
    if margin:
        grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    return grown
