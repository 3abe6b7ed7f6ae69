"""The high-efficiency tier: the fast tier's transforms with cheng2020's attention blocks at the latents, a
Gaussian-mixture entropy model and a checkerboard context (He et al. 2021), trained by this project (no published
weights use the mixture).

The latent ``y`` is coded in two passes. Anchors (``(row + column)`` even) are coded from the hyperprior alone;
the other half is coded from the hyperprior plus a masked convolution over the decoded anchors. Both passes are
parallel over the picture, so decoding is two network passes, not one per latent as in a serial context model.

Each latent's probability is a mixture of ``K`` discretised Gaussians. The mixture is parameterised as a
correction of the hyperprior's own Gaussian: each component's mean is the hyperprior mean plus a shift, its scale
the hyperprior scale times a gain, from the entropy-parameter network; ``y`` is quantised around the hyperprior
mean, as the fast tier quantises it. The attention blocks are gated by a per-channel gain that starts at zero. So a
model built from a trained fast codec (:meth:`from_fast`) starts as that codec, values sent and pixels decoded, and
training only adds what the context and the mixture buy:
training cheng2020 from scratch takes a GPU, fine-tuning this takes a few thousand CPU steps.

A latent's table is computed from its mixture (weights, means, scales) and quantised to the entropy coder's integer
precision. As in the fast tier, the networks that produce these parameters (``h_s``, the context convolution and
the entropy-parameter network) run in float64 on one CPU thread at both ends, one region at a time, so the encoder
and every decoder build the same integer tables (tested by golden md5s).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import replace

import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models import GaussianMixtureConditional
from compressai.layers import AttentionBlock, CheckerboardMaskedConv2d
from compressai.models import CompressionModel, MeanScaleHyperprior
from compressai.ops import LowerBound, quantize_ste
from torch import nn

from surveil.codecs.model import (
    MIXTURE_FAMILY,
    CodecArch,
    RegionCodecModel,
    rebuild_bottleneck_tables,
    single_threaded,
)
from surveil.errors import SurveilError

logger = logging.getLogger(__name__)

MIXTURES = 3  # Gaussians per latent, as in cheng2020
CDF_PRECISION = 16  # bits of the entropy coder's integer tables
MAX_SYMBOL = 255  # |round(y)| is capped here; the largest magnitude of a region travels in the y string's first byte
SCALE_MIN = 0.11  # as CompressAI's Gaussian conditional bounds its scales
INIT_SPREAD = 0.01  # weight scale of the last entropy-parameter layer: near zero, yet the components differ


def anchor_mask(height: int, width: int) -> torch.Tensor:
    """True at the latents coded first (``(row + column)`` even), shaped (1, 1, height, width)."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == 0).view(1, 1, height, width)


class GatedAttention(nn.Module):
    """cheng2020's attention block behind a per-channel gain that starts at zero (the identity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = AttentionBlock(channels)
        self.gain = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gain * (self.attention(x) - x)


class MixtureCodecModel(CompressionModel):
    """Fast-tier transforms plus attention, hyperprior, checkerboard context, Gaussian-mixture likelihoods."""

    # Buffers a weight file leaves out, as the constructor builds them: the context's fixed checkerboard mask, and
    # the mixture conditional's scale tables (this coder builds its tables per latent from the mixture instead).
    DERIVED_STATE = (
        "context_prediction.mask",
        "gaussian_conditional._quantized_cdf",
        "gaussian_conditional._offset",
        "gaussian_conditional._cdf_length",
        "gaussian_conditional.scale_table",
    )

    def __init__(self, arch: CodecArch) -> None:
        super().__init__()
        self.arch = arch
        self.m = m = arch.m
        base = MeanScaleHyperprior(N=arch.n, M=m)
        self.g_a = nn.Sequential(*base.g_a, GatedAttention(m))
        self.g_s = nn.Sequential(GatedAttention(m), *base.g_s)
        self.h_a, self.h_s = base.h_a, base.h_s  # h_s: the hyperprior's (scales, means), 2m channels
        self.entropy_bottleneck = base.entropy_bottleneck
        self.context_prediction = CheckerboardMaskedConv2d(m, 2 * m, kernel_size=5, padding=2, stride=1)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(m * 4, m * 10 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(m * 10 // 3, m * 8 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(m * 8 // 3, 3 * MIXTURES * m, 1),
        )
        last = self.entropy_parameters[-1]
        nn.init.normal_(last.weight, std=INIT_SPREAD)
        nn.init.zeros_(last.bias)
        self.scale_bound = LowerBound(SCALE_MIN)
        self.gaussian_conditional = GaussianMixtureConditional(K=MIXTURES)
        self._exact: nn.ModuleDict | None = None

    def load_state_dict(self, state_dict: dict, strict: bool = True):  # type: ignore[override]
        """As nn.Module's, with the derived buffers a weight file leaves out taken from this model as built."""
        own = self.state_dict()
        derived = {k: own[k] for k in self.DERIVED_STATE if k not in state_dict}
        return super().load_state_dict({**derived, **state_dict}, strict=strict)

    @classmethod
    def from_fast(cls, fast: RegionCodecModel) -> MixtureCodecModel:
        """A high-tier model that starts as the trained fast codec ``fast``: its transforms, hyperprior and
        hyper-latent coder; attention and mixture start neutral."""
        model = cls(replace(fast.arch, family=MIXTURE_FAMILY))
        state = {}
        for key, value in fast.state_dict().items():
            if key.startswith(("gaussian_conditional.", "_h_s_exact.")):
                continue
            if key.startswith("g_s."):  # the attention block comes first in this g_s
                index, rest = key[4:].split(".", 1)
                key = f"g_s.{int(index) + 1}.{rest}"
            state[key] = value
        missing, unexpected = model.load_state_dict(state, strict=False)
        fresh = ("g_a.7.", "g_s.0.", "context_prediction.", "entropy_parameters.", "gaussian_conditional.")
        if unexpected or any(not key.startswith(fresh) and key != "scale_bound.bound" for key in missing):
            raise SurveilError(f"fast codec does not fit the high tier: missing {missing}, unexpected {unexpected}")
        return model

    # --- training -------------------------------------------------------------------------------------------------
    def _mixture(self, hyper: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scales, means, weights), each (B, K * m, H, W) laid out mixture-major as GaussianMixtureConditional
        expects: component k's mean is the hyperprior mean plus a shift, its scale the (bounded) hyperprior scale
        times a gain, its weight a softmax over the K components of each latent."""
        b, _, h, w = params.shape
        base_scales, base_means = (t.unsqueeze(1) for t in hyper.chunk(2, 1))
        if base_scales.dtype == torch.float64:  # the coder's exact path: no gradient, same bound
            base_scales = base_scales.clamp_min(SCALE_MIN)
        else:
            base_scales = self.scale_bound(base_scales)
        shifts, log_gains, logits = params.reshape(b, 3, MIXTURES, self.m, h, w).unbind(1)
        shape = (b, MIXTURES * self.m, h, w)
        scales = (base_scales * torch.exp(log_gains.clamp(max=8.0))).reshape(shape)
        means = (base_means + shifts).reshape(shape)
        weights = torch.softmax(logits, dim=1).reshape(shape)
        return scales, means, weights

    def _params(self, hyper: torch.Tensor, y_context_source: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        ctx = self.context_prediction(y_context_source) * (~anchors).to(hyper.dtype)  # anchors see no context
        return self.entropy_parameters(torch.cat([hyper, ctx], dim=1))

    def _sent_latents(
        self, y: torch.Tensor, hyper: torch.Tensor, quantize: Callable[[torch.Tensor], torch.Tensor] = quantize_ste
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``y`` as the decoder will see it (rounded around the hyperprior means by ``quantize``: by default with
        straight-through gradients) and the mixture of every latent, the non-anchors' conditioned on the rounded
        anchors."""
        offsets = _offsets(hyper)
        y_hat = quantize(y - offsets) + offsets
        anchors = anchor_mask(*y.shape[-2:]).to(y.device)
        params = self._params(hyper, y_hat * anchors.to(y.dtype), anchors)
        return y_hat, self._mixture(hyper, params)

    def coded_latents(
        self, y: torch.Tensor, hyper: torch.Tensor, quantize: Callable[[torch.Tensor], torch.Tensor] = quantize_ste
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``y`` as the coder sends it and the likelihoods of those values (the rate the coder spends, up to its
        table quantisation), differentiable in ``y``: the evaluation-mode rate, and the cost latent refinement
        lowers (codecs/refine.py, which passes its own ``quantize``). ``hyper``: ``h_s`` of the rounded
        hyper-latent."""
        y_hat, mixture = self._sent_latents(y, hyper, quantize)
        coder = self.gaussian_conditional
        return y_hat, coder.likelihood_lower_bound(coder._likelihood(y_hat, *mixture))

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        hyper = self.h_s(z_hat)
        if self.training:  # the rate of y under uniform noise, as CompressAI trains it
            y_hat, mixture = self._sent_latents(y, hyper)
            _, y_likelihoods = self.gaussian_conditional(y, *mixture)
        else:  # the rate of the values the coder sends
            y_hat, y_likelihoods = self.coded_latents(y, hyper)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    # --- coding ---------------------------------------------------------------------------------------------------
    def prepare_for_coding(self) -> None:
        """Rebuild the hyper-latent's tables and the float64 CPU copies of the parameter networks."""
        rebuild_bottleneck_tables(self.entropy_bottleneck)
        exact = nn.ModuleDict(
            {
                "h_s": copy.deepcopy(self.h_s),
                "context_prediction": copy.deepcopy(self.context_prediction),
                "entropy_parameters": copy.deepcopy(self.entropy_parameters),
            }
        ).to(device="cpu", dtype=torch.float64)
        object.__setattr__(self, "_exact", exact.eval())  # derived, never in a state dict

    @property
    def device_name(self) -> str:
        return str(next(self.g_a.parameters()).device)

    def _exact_hyper(self, z_hat: torch.Tensor) -> torch.Tensor:
        """The hyper-synthesis of one region in float64 on one thread (shared by both passes)."""
        if self._exact is None:
            raise RuntimeError("call prepare_for_coding() before compress/decompress")
        with single_threaded(True):
            return self._exact["h_s"](z_hat.cpu().double())

    def _exact_params(self, hyper: torch.Tensor, y_anchors: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Mixture parameters of one region in float64 on one thread: from the hyperprior alone (``y_anchors`` None,
        for the anchors) or with the decoded anchors as context."""
        with single_threaded(True):
            ctx = torch.zeros_like(hyper) if y_anchors is None else self._exact["context_prediction"](y_anchors)
            params = self._exact["entropy_parameters"](torch.cat([hyper, ctx], dim=1))
            return self._mixture(hyper, params)

    def _tables(
        self,
        scales: torch.Tensor,
        means: torch.Tensor,
        weights: torch.Tensor,
        offsets: torch.Tensor,
        where: torch.Tensor,
        bound: int,
    ) -> list[list[int]]:
        """Integer CDF of every selected latent over the symbols -bound..bound (``round(y - offsets)``), from its
        mixture, in float64."""
        means = means - offsets.repeat(1, MIXTURES, 1, 1)  # in symbol units
        select = where.expand_as(scales[:, : self.m])
        comps = [
            (s[select], m[select], w[select])
            for s, m, w in zip(
                scales.chunk(MIXTURES, 1), means.chunk(MIXTURES, 1), weights.chunk(MIXTURES, 1), strict=True
            )
        ]
        symbols = torch.arange(-bound, bound + 1, dtype=torch.float64).view(1, -1)
        pmf = torch.zeros(comps[0][0].numel(), 2 * bound + 1, dtype=torch.float64)
        for scale, mean, weight in comps:
            scale = scale.clamp(SCALE_MIN, 256.0).view(-1, 1) * math.sqrt(2.0)
            mean, weight = mean.view(-1, 1), weight.view(-1, 1)
            upper, lower = torch.erf((symbols + 0.5 - mean) / scale), torch.erf((symbols - 0.5 - mean) / scale)
            pmf += weight * 0.5 * (upper - lower)
        return _integer_cdfs(pmf)

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        return self.compress_latents(y, self.h_a(y))

    @torch.no_grad()
    def compress_latents(self, y: torch.Tensor, z: torch.Tensor) -> dict:
        """Code latents given directly (those of ``g_a`` and ``h_a``, or refined ones; see codecs/refine.py)."""
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        y_strings = []
        for i in range(y.shape[0]):
            hyper = self._exact_hyper(z_hat[i : i + 1])
            offsets = _offsets(hyper)
            symbols = torch.round(y[i : i + 1].cpu().double() - offsets).clamp_(-MAX_SYMBOL, MAX_SYMBOL)
            bound = max(1, int(symbols.abs().max().item()))
            anchors = anchor_mask(*symbols.shape[-2:])
            encoder = BufferedRansEncoder()
            for where, context in ((anchors, None), (~anchors, (symbols + offsets) * anchors)):
                tables = self._tables(*self._exact_params(hyper, context), offsets, where, bound)
                values = (symbols[where.expand_as(symbols)] + bound).int().tolist()
                encoder.encode_with_indexes(
                    values, list(range(len(values))), tables, [len(t) for t in tables], [0] * len(values)
                )
            y_strings.append(bytes([bound]) + encoder.flush())
        return {"strings": [y_strings, z_strings], "shape": tuple(z.size()[-2:])}

    @torch.no_grad()
    def decompress(self, strings: list, shape: tuple[int, int]) -> dict:
        if len(strings[0]) != 1:
            raise ValueError("decompress takes one region at a time")
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        y_string = strings[0][0]
        if not y_string:
            raise SurveilError("empty latent string")
        bound = y_string[0]
        height, width = shape[0] * 4, shape[1] * 4
        anchors = anchor_mask(height, width)
        symbols = torch.zeros(1, self.m, height, width, dtype=torch.float64)
        hyper = self._exact_hyper(z_hat)
        offsets = _offsets(hyper)
        decoder = RansDecoder()
        decoder.set_stream(y_string[1:])
        for where in (anchors, ~anchors):
            # the second pass sees the anchors, decoded by the first
            context = None if where is anchors else (symbols + offsets) * anchors
            tables = self._tables(*self._exact_params(hyper, context), offsets, where, bound)
            values = decoder.decode_stream(
                list(range(len(tables))), tables, [len(t) for t in tables], [0] * len(tables)
            )
            symbols[where.expand_as(symbols)] = torch.tensor(values, dtype=torch.float64) - bound
        y_hat = (symbols + offsets).to(device=self.device_name, dtype=torch.float32)
        with single_threaded(self.device_name == "cpu"):
            x_hat = self.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat}


def _offsets(hyper: torch.Tensor) -> torch.Tensor:
    """The hyperprior's means, around which ``y`` is quantised (as the fast tier quantises it): a high-tier model
    built from a fast codec then sends the same values and reconstructs the same pixels from the start."""
    return hyper.chunk(2, 1)[1]


def _integer_cdfs(pmf: torch.Tensor) -> list[list[int]]:
    """Per-row probabilities to CompressAI's rANS tables: every symbol at least one count, then the coder's escape
    symbol (never used here: symbols stay within the bound) with one count, totalling 2^16."""
    total = 1 << CDF_PRECISION
    rows, symbols = pmf.shape
    pmf = pmf / pmf.sum(dim=1, keepdim=True).clamp_min(1e-300)
    counts = torch.ones(rows, symbols + 1, dtype=torch.int64)
    counts[:, :symbols] += torch.floor(pmf * (total - symbols - 1)).to(torch.int64)
    counts[torch.arange(rows), counts[:, :symbols].argmax(dim=1)] += total - counts.sum(dim=1)
    cdf = torch.zeros(rows, symbols + 2, dtype=torch.int64)
    cdf[:, 1:] = counts.cumsum(dim=1)
    return cdf.tolist()
