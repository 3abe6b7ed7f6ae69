"""Encoder-side latent refinement: each region's latents optimised for its own rate-distortion cost before coding.

The analysis transform ``g_a`` is one amortised guess of the best latents for any picture; a few gradient steps on
the latents of one picture, at the lambda the codec was trained for, find better ones (Campos et al. 2019, "Content
adaptive optimization for neural image compression"; Yang et al. 2020, "Improving inference for neural image
compression"). The edge also knows which canvas pixels the station will show (the object's mask), so the distortion
is taken there only and no bit is spent on the fill. Only the encoder changes: the bitstream is the codec's own and
any station decodes it as before.

The cost is the coded one: latents rounded around the entropy model's means and the likelihoods of the rounded values.
Rounding has no useful gradient; two ways round it (``ROUNDINGS``):

- ``"sga"`` (the default): stochastic Gumbel annealing (Yang et al. 2020). Each latent is a relaxed random draw
  between its floor and its ceiling, the nearer one likelier, and the relaxation's temperature anneals towards hard
  rounding over the steps, so the latents can cross rounding boundaries that a straight-through gradient never sees.
  The draws come from a fixed seed: the same region gives the same stream in every run.
- ``"ste"``: hard rounding with straight-through gradients (the refinement before SGA; kept to reproduce reports
  measured with it, and as the baseline SGA is measured against).

The best iterate by the true (hard-rounded) cost is kept, so a refined region never costs more than the unrefined one
at the codec's lambda (up to the entropy coder's table quantisation).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from compressai.ops import quantize_ste
from compressai.ops.bound_ops import LowerBoundFunction

from surveil.codecs.mixture import MixtureCodecModel
from surveil.codecs.model import RegionCodecModel
from surveil.errors import SurveilError
from surveil.regions.centring import STATION_MARGIN_PX, grow_mask

logger = logging.getLogger(__name__)

ROUNDINGS = {"sga": "stochastic Gumbel annealing", "ste": "straight-through rounding"}  # name: how reports say it
# Adam's peak step on the latents for each rounding, decayed to zero along a half cosine. Straight-through: on 40
# held-out person crops at q2 (x265 intra bits at equal PSNR: +58.7% unrefined), 50 steps gave +41.8% with this
# schedule, +42.4% at a constant 0.005, +45.1% at a constant 0.01; 100 or 400 steps gave no more. SGA: on 30 held-out
# face crops, high tier q2, 50 steps (x265 bits at equal PSNR: -32.5% unrefined, -34.2% straight-through at 0.01,
# -33.2% at 0.02), SGA gave -36.0% at 0.01, -36.8% at 0.02, -37.2% at 0.03 and -37.0% at 0.04 (temperature 0.5 to
# 0.1); at q0 and q4 SGA at 0.03 gave -53.4% and -18.5% where straight-through gave -51.4% and -14.4%.
PEAK_LR = {"sga": 0.03, "ste": 0.01}
# Unlike straight-through, SGA keeps gaining past 50 steps at this schedule: on 30 held-out person crops (one
# thread), x265 bits at equal PSNR, high tier q2 +21.1% / +16.4% / +12.7% / +10.1% at 50 / 100 / 200 / 400 steps, q4
# +34.2% / +28.3% / +23.7% at 50 / 100 / 200, fast tier q2 +32.6% / +22.1% at 50 / 200; the time grows with the steps.
# SGA's temperature, annealed geometrically from the first to the second over the steps (0.5 to 0.05 gave -36.8% and
# 1.0 to 0.05 -36.9% where 0.5 to 0.1 gave -37.2%, at 0.02).
SGA_TEMPERATURE = (0.5, 0.1)
# SGA's iterates are soft, so the true cost of each is one more forward pass: it is taken every this many steps and at
# the last (every step gave the same result on the 30 face crops, at 1.4 times the time).
TRUE_COST_EVERY = 10
SGA_SEED = 0
_EPS = 1e-4

Quantize = Callable[[torch.Tensor], torch.Tensor]  # values relative to their rounding centres -> values sent


def object_weights(masks: list[np.ndarray], margin: int = STATION_MARGIN_PX) -> torch.Tensor:
    """(N,1,H,W) float weights, 1 on each canvas's object pixels grown by ``margin`` (as in training), 0 on the fill."""
    grown = [grow_mask(m, margin) for m in masks]
    return torch.from_numpy(np.stack(grown).astype(np.float32)).unsqueeze(1)


def _annealed_round(values: torch.Tensor, temperature: float, generators: list[torch.Generator]) -> torch.Tensor:
    """SGA's relaxed rounding: a Gumbel-softmax draw between floor and ceiling, weighted by the distance to each
    (Yang et al. 2020, eq. 5); it tends to rounding as ``temperature`` tends to 0. ``values`` are (N, ...), one
    generator a region, so that a region draws the same noise whatever else shares its batch."""
    floor = torch.floor(values)
    up = values - floor
    logits = torch.stack([-torch.atanh(up.clamp(_EPS, 1 - _EPS)), -torch.atanh((1 - up).clamp(_EPS, 1 - _EPS))], -1)
    # drawn in float32 whatever the latents' precision, so that a float64 refinement draws the same noise
    uniform = torch.stack([torch.rand(logits.shape[1:], generator=g, device=values.device) for g in generators])
    uniform = uniform.to(values.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
    return floor + torch.softmax((logits / temperature + gumbel) / temperature, -1)[..., 1]


def _hyper_latent_bits(
    model: RegionCodecModel | MixtureCodecModel, z: torch.Tensor, quantize: Quantize
) -> tuple[torch.Tensor, torch.Tensor]:
    """``z`` rounded around the factorized prior's medians, as the coder rounds it, and its bits per region."""
    eb = model.entropy_bottleneck
    n, c = z.shape[:2]
    medians = eb.quantiles[:, 0, 1].view(1, -1, 1, 1)
    z_hat = quantize(z - medians) + medians
    z_likelihoods, _, _ = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(c, 1, -1))
    z_likelihoods = eb.likelihood_lower_bound(z_likelihoods).reshape(c, n, -1).permute(1, 0, 2)
    return z_hat, -torch.log2(z_likelihoods).flatten(1).sum(1)


def _gaussian_latent_bits(
    model: RegionCodecModel, y: torch.Tensor, z_hat: torch.Tensor, quantize: Quantize
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fast tier: ``y`` rounded around the hyperprior's means, and its bits per region under its Gaussians."""
    gc = model.gaussian_conditional
    scales, means = model.h_s(z_hat).chunk(2, 1)
    residual = quantize(y - means)
    # GaussianConditional._likelihood, with its bounds brought to the latents' device (the coding copy stays on the CPU)
    scales = LowerBoundFunction.apply(scales, gc.lower_bound_scale.bound.to(scales.device))
    upper = gc._standardized_cumulative((0.5 - residual.abs()) / scales)
    lower = gc._standardized_cumulative((-0.5 - residual.abs()) / scales)
    y_likelihoods = LowerBoundFunction.apply(upper - lower, gc.likelihood_lower_bound.bound.to(scales.device))
    return residual + means, -torch.log2(y_likelihoods).flatten(1).sum(1)


def _mixture_latent_bits(
    model: MixtureCodecModel, y: torch.Tensor, z_hat: torch.Tensor, quantize: Quantize
) -> tuple[torch.Tensor, torch.Tensor]:
    """The high tier: ``y`` as its coder sends it, and its bits per region under the mixtures and the checkerboard
    context."""
    y_hat, y_likelihoods = model.coded_latents(y, model.h_s(z_hat), quantize)
    return y_hat, -torch.log2(y_likelihoods).flatten(1).sum(1)


def _coded_cost(
    model: RegionCodecModel | MixtureCodecModel,
    y: torch.Tensor,
    z: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    lmbda: float,
    quantize: Quantize,
) -> torch.Tensor:
    """Per-region ``lambda * 255^2 * MSE(object) + bits / canvas pixels`` of the latents rounded by ``quantize``."""
    z_hat, z_bits = _hyper_latent_bits(model, z, quantize)
    if isinstance(model, MixtureCodecModel):
        y_hat, y_bits = _mixture_latent_bits(model, y, z_hat, quantize)
    else:
        y_hat, y_bits = _gaussian_latent_bits(model, y, z_hat, quantize)
    x_hat = model.g_s(y_hat).clamp(0, 1)
    squared = ((x_hat - x) ** 2 * weight).flatten(1).sum(1)
    mse = squared / (weight.flatten(1).sum(1) * x.shape[1]).clamp(min=1.0)
    return lmbda * 255**2 * mse + (y_bits + z_bits) / (x.shape[-2] * x.shape[-1])


def refine_latents(
    model: RegionCodecModel | MixtureCodecModel,
    x: torch.Tensor,
    weight: torch.Tensor,
    lmbda: float,
    steps: int,
    rounding: str = "sga",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``(y, z)`` of the canvases ``x`` (N,3,H,W) after ``steps`` Adam steps on their coded cost
    (``weight``: (N,1,H,W), where the distortion counts; ``lmbda``: the codec's training lambda; ``rounding``: one
    of ``ROUNDINGS``).

    Each region keeps its own best iterate (Adam's update is per element, so a batch refines its regions
    independently). The model's parameters are not touched.
    """
    if not isinstance(model, RegionCodecModel | MixtureCodecModel):
        raise SurveilError(f"latent refinement is not implemented for {type(model).__name__}")
    if rounding not in ROUNDINGS:
        raise SurveilError(f"unknown latent rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")
    weight = weight.to(x.device)
    with torch.no_grad():
        y = model.g_a(x)
        z = model.h_a(y)
    best_cost = torch.full((x.shape[0],), float("inf"), device=x.device)
    best_y, best_z = y.clone(), z.clone()
    y.requires_grad_(True)
    z.requires_grad_(True)
    peak_lr = PEAK_LR[rounding]
    optimiser = torch.optim.Adam([y, z], lr=peak_lr)
    generators = [torch.Generator(device=x.device).manual_seed(SGA_SEED) for _ in range(x.shape[0])]
    first, last = SGA_TEMPERATURE
    with torch.enable_grad():
        for step in range(steps + 1):
            progress = step / max(steps, 1)
            optimiser.param_groups[0]["lr"] = peak_lr * 0.5 * (1 + math.cos(math.pi * progress))
            true_cost: torch.Tensor | None = None
            if rounding == "ste":
                cost = _coded_cost(model, y, z, x, weight, lmbda, quantize_ste)
                true_cost = cost.detach()
            elif step % TRUE_COST_EVERY == 0 or step == steps:
                with torch.no_grad():
                    true_cost = _coded_cost(model, y, z, x, weight, lmbda, torch.round)
            if true_cost is not None:
                better = true_cost < best_cost
                best_cost = torch.where(better, true_cost, best_cost)
                best_y[better] = y.detach()[better]
                best_z[better] = z.detach()[better]
            if step == steps:
                break
            if rounding == "sga":
                soft_round = functools.partial(
                    _annealed_round, temperature=first * (last / first) ** progress, generators=generators
                )
                cost = _coded_cost(model, y, z, x, weight, lmbda, soft_round)
            # gradients for the latents only: the model's parameters are shared with every other caller
            y.grad, z.grad = torch.autograd.grad(cost.sum(), [y, z])
            optimiser.step()
    logger.debug("refined %d regions for %d steps: mean coded cost %.4f", x.shape[0], steps, best_cost.mean().item())
    return best_y, best_z
