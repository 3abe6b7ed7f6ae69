"""Fidelity on the object's pixels: masked PSNR and MS-SSIM (checked against pytorch_msssim where it applies)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from surveil.paths import find_data
from surveil.pipelines.fidelity import MS_SSIM_WEIGHTS, masked_ms_ssim, masked_psnr, ms_ssim, ms_ssim_db


@pytest.fixture(scope="module")
def picture_and_jpeg() -> tuple[np.ndarray, np.ndarray]:
    path = find_data("images/kodak/kodim15.png")
    if path is None:
        pytest.skip("shared data not found: images/kodak/kodim15.png")
    picture = np.ascontiguousarray(cv2.imread(str(path))[:256, :256, ::-1])
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", quality=20)
    return picture, np.asarray(Image.open(buffer).convert("RGB"))


def test_masked_psnr_ignores_pixels_outside_the_mask() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255
    mask = np.ones((4, 4), bool)
    mask[0, 0] = False
    assert masked_psnr(a, b, mask) == 100.0
    b[1, 1] = 1
    assert masked_psnr(a, b, mask) == pytest.approx(10 * np.log10(255**2 / (3 / (15 * 3))))


def test_ms_ssim_matches_pytorch_msssim_on_a_large_picture(picture_and_jpeg: tuple[np.ndarray, np.ndarray]) -> None:
    from pytorch_msssim import ms_ssim as reference

    picture, jpeg = picture_and_jpeg
    weights = list(np.array(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS))
    as_tensor = [torch.from_numpy(np.array(x, dtype=np.float64)).permute(2, 0, 1)[None] for x in (picture, jpeg)]
    expected = float(reference(*as_tensor, data_range=255, win_size=7, weights=weights))
    assert ms_ssim(picture, jpeg) == pytest.approx(expected, abs=1e-4)
    assert 0.8 < ms_ssim(picture, jpeg) < 0.99
    assert ms_ssim(picture, picture) == pytest.approx(1.0)


def test_ms_ssim_takes_the_smallest_crops_and_refuses_smaller(picture_and_jpeg: tuple[np.ndarray, np.ndarray]) -> None:
    picture, jpeg = picture_and_jpeg
    assert 0.5 < ms_ssim(picture[:64, :64], jpeg[:64, :64]) < 1.0
    with pytest.raises(ValueError, match="too small"):
        ms_ssim(picture[:48, :64], jpeg[:48, :64])


def test_masked_ms_ssim_ignores_errors_outside_the_mask(picture_and_jpeg: tuple[np.ndarray, np.ndarray]) -> None:
    picture, jpeg = picture_and_jpeg
    mask = np.zeros(picture.shape[:2], bool)
    mask[64:192, 64:192] = True
    outside_damaged = np.where(mask[..., None], picture, 0).astype(np.uint8)
    assert masked_ms_ssim(picture, outside_damaged, mask) == pytest.approx(1.0)
    assert masked_ms_ssim(picture, jpeg, mask) > ms_ssim(picture, jpeg)  # less of the picture can be wrong


def test_ms_ssim_decibels() -> None:
    assert ms_ssim_db(0.9) == pytest.approx(10.0)
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(1.0) == 100.0
