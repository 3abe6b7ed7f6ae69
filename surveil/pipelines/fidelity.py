"""Picture fidelity of a decoded crop, judged on the object's pixels only (the station never shows the fill).

PSNR averages the squared error over the mask. MS-SSIM is a structural measure over windows, so it cannot skip
pixels; it compares the original canvas with the decoded object pasted into it (outside the mask both are the
original), which is what a station shows. Crops are as small as 64 pixels a side, too small for MS-SSIM's usual 5
scales of 11-pixel windows: here 4 scales of 7-pixel Gaussian windows (sigma 1.5), with the first four of the
standard scale weights renormalised. Its decibel form ``-10 log10(1 - MS-SSIM)`` is the one BD-rates use.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch's own convention

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363)
MS_SSIM_WINDOW = 7
MS_SSIM_SIGMA = 1.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def masked_psnr(original: np.ndarray, decoded: np.ndarray, mask: np.ndarray) -> float:
    diff = original[mask].astype(np.float64) - decoded[mask].astype(np.float64)
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return 100.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@functools.cache
def _window() -> torch.Tensor:
    coords = torch.arange(MS_SSIM_WINDOW, dtype=torch.float64) - MS_SSIM_WINDOW // 2
    gauss = torch.exp(-(coords**2) / (2 * MS_SSIM_SIGMA**2))
    return (gauss / gauss.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    window = _window()
    x = F.conv2d(x, window, groups=3)
    return F.conv2d(x, window.transpose(2, 3), groups=3)


def _ssim_and_cs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu_a, mu_b = _blur(a), _blur(b)
    var_a = _blur(a * a) - mu_a**2
    var_b = _blur(b * b) - mu_b**2
    cov = _blur(a * b) - mu_a * mu_b
    cs = (2 * cov + _C2) / (var_a + var_b + _C2)
    luminance = (2 * mu_a * mu_b + _C1) / (mu_a**2 + mu_b**2 + _C1)
    return (luminance * cs).mean(), cs.mean()


def ms_ssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """MS-SSIM of two RGB uint8 pictures at least ``7 * 2**3`` pixels a side (averaged over the colour channels)."""
    a = torch.from_numpy(np.array(original, dtype=np.float64)).permute(2, 0, 1)[None]
    b = torch.from_numpy(np.array(decoded, dtype=np.float64)).permute(2, 0, 1)[None]
    if min(a.shape[-2:]) < MS_SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1):
        raise ValueError(f"picture of {tuple(a.shape[-2:])} too small for {len(MS_SSIM_WEIGHTS)}-scale MS-SSIM")
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64)
    weights = weights / weights.sum()
    factors = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        ssim, cs = _ssim_and_cs(a, b)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            factors.append(torch.relu(cs))
            a, b = F.avg_pool2d(a, 2, ceil_mode=True), F.avg_pool2d(b, 2, ceil_mode=True)
    factors.append(torch.relu(ssim))
    return float(torch.prod(torch.stack(factors) ** weights))


def masked_ms_ssim(original: np.ndarray, decoded: np.ndarray, mask: np.ndarray) -> float:
    """MS-SSIM of the original canvas against the decoded object pasted into it."""
    return ms_ssim(original, np.where(mask[..., None], decoded, original))


def ms_ssim_db(value: float) -> float:
    return 100.0 if value >= 1.0 else -10.0 * float(np.log10(1.0 - value))
