"""Centring a region into the codec canvas and back, on real picture content (Kodak) where content matters."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from surveil.config import CropConfig
from surveil.paths import find_data
from surveil.regions.centring import canvas_mask, centre_region, paste_region, plan_placement, uncentre_region
from surveil.types import Box

SETTINGS = CropConfig(max_side=256, multiple=64, fill=128)


@pytest.fixture(scope="module")
def kodak() -> np.ndarray:
    """kodim03 (768x512, hats: flat areas and detail) as RGB."""
    path = find_data("images/kodak/kodim03.png")
    if path is None:
        pytest.skip("shared data not found: images/kodak/kodim03.png")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert image.shape == (512, 768, 3)
    return image


def _ellipse(width: int, height: int) -> np.ndarray:
    """An object-like mask filling most of its box, touching each side, with corners left out."""
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return ((xx - cx) / max(cx, 0.5)) ** 2 + ((yy - cy) / max(cy, 0.5)) ** 2 <= 1.0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _crop(image: np.ndarray, box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


# --- plan_placement ---


def test_small_box_is_not_scaled_and_is_centred() -> None:
    placement = plan_placement((10, 20, 40, 70), SETTINGS)  # 30 x 50
    assert placement.box == (10, 20, 40, 70)
    assert placement.scale == 1.0
    assert placement.scaled_size == (30, 50)
    assert placement.canvas == (64, 64)
    assert placement.offset == (17, 7)


def test_box_on_the_stride_needs_no_padding() -> None:
    placement = plan_placement((0, 0, 128, 64), SETTINGS)
    assert (placement.scale, placement.canvas, placement.offset) == (1.0, (128, 64), (0, 0))


def test_large_box_is_scaled_down_to_max_side() -> None:
    placement = plan_placement((100, 50, 700, 350), SETTINGS)  # 600 x 300
    assert placement.scale == pytest.approx(256 / 600)
    assert placement.scaled_size == (256, 128)
    assert placement.canvas == (256, 128)
    assert placement.offset == (0, 0)


def test_box_of_exactly_max_side_is_not_scaled() -> None:
    placement = plan_placement((0, 0, 256, 100), SETTINGS)
    assert placement.scale == 1.0
    assert placement.canvas == (256, 128)
    assert placement.offset == (0, 14)


def test_one_pixel_box() -> None:
    placement = plan_placement((5, 5, 6, 6), SETTINGS)
    assert (placement.scale, placement.scaled_size, placement.canvas, placement.offset) == (
        1.0,
        (1, 1),
        (64, 64),
        (31, 31),
    )


def _random_boxes(n: int) -> list[Box]:
    rng = random.Random(0)
    boxes = []
    for _ in range(n):
        x0, y0 = rng.randrange(0, 2000), rng.randrange(0, 1000)
        boxes.append(
            (x0, y0, x0 + rng.choice([1, 2, 63, 64, 65]) + rng.randrange(0, 900), y0 + 1 + rng.randrange(0, 700))
        )
    return boxes


@pytest.mark.parametrize("settings", [SETTINGS, CropConfig(max_side=200, multiple=16, fill=0)])
def test_placement_properties(settings: CropConfig) -> None:
    for box in _random_boxes(300):
        x0, y0, x1, y1 = box
        width, height = x1 - x0, y1 - y0
        p = plan_placement(box, settings)
        scaled_w, scaled_h = p.scaled_size
        canvas_w, canvas_h = p.canvas
        # Scale only down, and only as far as needed for the longer side to fit.
        assert 0 < p.scale <= 1.0
        assert (p.scale == 1.0) == (max(width, height) <= settings.max_side), box
        assert max(scaled_w, scaled_h) <= settings.max_side
        if p.scale < 1.0:
            assert max(scaled_w, scaled_h) == settings.max_side, box
        # Canvas: the smallest multiple of the stride holding the scaled box.
        assert canvas_w % settings.multiple == 0 and canvas_h % settings.multiple == 0
        assert 0 <= canvas_w - scaled_w < settings.multiple and 0 <= canvas_h - scaled_h < settings.multiple
        # Centred: the padding on opposite sides differs by at most one pixel.
        off_x, off_y = p.offset
        assert 0 <= (canvas_w - scaled_w - off_x) - off_x <= 1
        assert 0 <= (canvas_h - scaled_h - off_y) - off_y <= 1
        # Where the box lies in the frame does not matter.
        assert plan_placement((0, 0, width, height), settings).canvas == p.canvas


# --- centre_region / uncentre_region ---


def test_centre_region_places_object_pixels_and_fill(kodak: np.ndarray) -> None:
    box = (300, 120, 400, 290)  # 100 x 170: not scaled
    mask = _ellipse(100, 170)
    before = kodak.copy()
    canvas, placement = centre_region(kodak, box, mask, SETTINGS)
    np.testing.assert_array_equal(kodak, before)  # the frame is not touched
    assert canvas.dtype == np.uint8
    assert canvas.shape == (192, 128, 3) == (placement.canvas[1], placement.canvas[0], 3)
    off_x, off_y = placement.offset
    assert (off_x, off_y) == (14, 11)
    inside = canvas[off_y : off_y + 170, off_x : off_x + 100]
    np.testing.assert_array_equal(inside[mask], _crop(kodak, box)[mask])
    np.testing.assert_array_equal(inside[~mask], np.full(((~mask).sum(), 3), SETTINGS.fill))
    outside = np.ones(canvas.shape[:2], bool)
    outside[off_y : off_y + 170, off_x : off_x + 100] = False
    assert (canvas[outside] == SETTINGS.fill).all()


def test_round_trip_is_exact_under_the_mask_when_not_scaled(kodak: np.ndarray) -> None:
    box = (37, 301, 230, 500)  # 193 x 199, odd offsets and sizes
    mask = _ellipse(193, 199)
    canvas, placement = centre_region(kodak, box, mask, SETTINGS)
    assert placement.scale == 1.0
    back = uncentre_region(canvas, placement)
    assert back.shape == (199, 193, 3)
    np.testing.assert_array_equal(back[mask], _crop(kodak, box)[mask])
    assert (back[~mask] == SETTINGS.fill).all()


def test_round_trip_is_close_when_scaled_down(kodak: np.ndarray) -> None:
    box = (100, 40, 520, 400)  # 420 x 360, scaled by 256 / 420
    mask = _ellipse(420, 360)
    canvas, placement = centre_region(kodak, box, mask, SETTINGS)
    assert placement.scale == pytest.approx(256 / 420)
    assert canvas.shape == (256, 256, 3)
    back = uncentre_region(canvas, placement)
    assert back.shape == (360, 420, 3)
    original = _crop(kodak, box)
    aligned = _psnr(back[mask], original[mask])
    assert 25.0 < aligned < 60.0  # close, but it did go through a resize
    # A placement off by two pixels would still look "close" on flat areas: the true one must be clearly better.
    shifted = np.roll(original, 2, axis=1)
    assert aligned > _psnr(back[mask], shifted[mask]) + 3.0


def test_canvas_mask_marks_where_the_object_landed(kodak: np.ndarray) -> None:
    box = (300, 120, 400, 290)
    mask = _ellipse(100, 170)
    mask[60:80, 30:70] = False  # a hole, as a bag held in front of a person leaves
    _, placement = centre_region(kodak, box, mask, SETTINGS)
    landed = canvas_mask(mask, placement)
    assert landed.shape == (192, 128)
    assert landed.sum() == mask.sum()
    off_x, off_y = placement.offset
    np.testing.assert_array_equal(landed[off_y : off_y + 170, off_x : off_x + 100], mask)
    # Independently: a white object on a black fill lights up exactly those canvas pixels.
    white = np.full_like(kodak, 255)
    canvas, _ = centre_region(white, box, mask, CropConfig(SETTINGS.max_side, SETTINGS.multiple, fill=0))
    np.testing.assert_array_equal(canvas.max(axis=2) > 0, landed)


def test_canvas_mask_when_scaled(kodak: np.ndarray) -> None:
    box = (50, 20, 650, 500)  # 600 x 480
    mask = _ellipse(600, 480)
    white = np.full_like(kodak, 255)
    canvas, placement = centre_region(white, box, mask, CropConfig(SETTINGS.max_side, SETTINGS.multiple, fill=0))
    landed = canvas_mask(mask, placement)
    assert landed.shape == canvas.shape[:2]
    lit = canvas.max(axis=2) >= 128
    assert (landed & lit).sum() / (landed | lit).sum() > 0.97
    scaled_w, scaled_h = placement.scaled_size
    off_x, off_y = placement.offset
    assert not landed[:off_y].any() and not landed[off_y + scaled_h :].any()
    assert not landed[:, :off_x].any() and not landed[:, off_x + scaled_w :].any()
    assert landed.sum() == pytest.approx(mask.sum() * placement.scale**2, rel=0.03)


# --- paste_region ---


def test_paste_region_writes_only_masked_pixels(kodak: np.ndarray) -> None:
    image = kodak.copy()
    box = (200, 100, 330, 260)
    mask = _ellipse(130, 160)
    mask[:, :20] = False
    pixels = np.random.default_rng(0).integers(0, 256, (160, 130, 3), dtype=np.uint8)
    paste_region(image, box, mask, pixels)
    np.testing.assert_array_equal(_crop(image, box)[mask], pixels[mask])
    changed = (image != kodak).any(axis=2)
    frame_mask = np.zeros(changed.shape, bool)
    frame_mask[100:260, 200:330] = mask
    assert not changed[~frame_mask].any()  # nothing outside the mask, inside or outside the box
    assert changed[frame_mask].mean() > 0.95  # random pixels differ from the picture almost everywhere


def test_uncentre_then_paste_rebuilds_the_frame(kodak: np.ndarray) -> None:
    """The station's path on an uncoded canvas: a frame with the object erased gets it back exactly."""
    box = (420, 200, 560, 420)
    mask = _ellipse(140, 220)
    canvas, placement = centre_region(kodak, box, mask, SETTINGS)
    erased = kodak.copy()
    _crop(erased, box)[mask] = 0
    paste_region(erased, box, mask, uncentre_region(canvas, placement))
    np.testing.assert_array_equal(erased, kodak)
