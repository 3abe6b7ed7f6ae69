"""The high-efficiency tier: cheng2020's attention transforms with a Gaussian-mixture entropy model and a
checkerboard context (He et al. 2021), trained by this project (no published weights use the mixture).

The latent ``y`` is coded in two passes. Anchors (``(row + column)`` even) are coded from the hyperprior alone;
the other half is coded from the hyperprior plus a masked convolution over the decoded anchors. Both passes are
parallel over the picture, so decoding is two network passes, not one per latent as in a serial context model.

Each latent's probability is a mixture of ``K`` discretised Gaussians. Its table is computed per latent from the
mixture (weights, means, scales) and quantised to the entropy coder's integer precision. As in the fast tier, the
networks that produce these parameters (``h_s``, the context convolution and the entropy-parameter network) run
in float64 on one CPU thread at both ends, one region at a time, so the encoder and every decoder build the same
integer tables (tested by golden md5s).
"""

from __future__ import annotations

import copy
import logging
import math

import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models import EntropyBottleneck, GaussianMixtureConditional
from compressai.layers import (
    AttentionBlock,
    CheckerboardMaskedConv2d,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    conv3x3,
    subpel_conv3x3,
)
from compressai.models import CompressionModel
from compressai.ops import quantize_ste
from torch import nn

from surveil.codecs.model import CodecArch, single_threaded
from surveil.errors import SurveilError

logger = logging.getLogger(__name__)

MIXTURES = 3  # Gaussians per latent, as in cheng2020
CDF_PRECISION = 16  # bits of the entropy coder's integer tables
MAX_SYMBOL = 255  # |round(y)| is capped here; the largest magnitude of a region travels in the y string's first byte
SCALE_MIN = 0.11


def anchor_mask(height: int, width: int) -> torch.Tensor:
    """True at the latents coded first (``(row + column)`` even), shaped (1, 1, height, width)."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == 0).view(1, 1, height, width)


class MixtureCodecModel(CompressionModel):
    """cheng2020-attention transforms, hyperprior, checkerboard context, Gaussian-mixture likelihoods."""

    def __init__(self, arch: CodecArch) -> None:
        super().__init__()
        self.arch = arch
        self.n = n = arch.n
        self.g_a = nn.Sequential(
            ResidualBlockWithStride(3, n, stride=2),
            ResidualBlock(n, n),
            ResidualBlockWithStride(n, n, stride=2),
            AttentionBlock(n),
            ResidualBlock(n, n),
            ResidualBlockWithStride(n, n, stride=2),
            ResidualBlock(n, n),
            conv3x3(n, n, stride=2),
            AttentionBlock(n),
        )
        self.g_s = nn.Sequential(
            AttentionBlock(n),
            ResidualBlock(n, n),
            ResidualBlockUpsample(n, n, 2),
            ResidualBlock(n, n),
            ResidualBlockUpsample(n, n, 2),
            AttentionBlock(n),
            ResidualBlock(n, n),
            ResidualBlockUpsample(n, n, 2),
            ResidualBlock(n, n),
            subpel_conv3x3(n, 3, 2),
        )
        self.h_a = nn.Sequential(
            conv3x3(n, n),
            nn.LeakyReLU(inplace=True),
            conv3x3(n, n),
            nn.LeakyReLU(inplace=True),
            conv3x3(n, n, stride=2),
            nn.LeakyReLU(inplace=True),
            conv3x3(n, n),
            nn.LeakyReLU(inplace=True),
            conv3x3(n, n, stride=2),
        )
        self.h_s = nn.Sequential(
            conv3x3(n, n),
            nn.LeakyReLU(inplace=True),
            subpel_conv3x3(n, n, 2),
            nn.LeakyReLU(inplace=True),
            conv3x3(n, n * 3 // 2),
            nn.LeakyReLU(inplace=True),
            subpel_conv3x3(n * 3 // 2, n * 3 // 2, 2),
            nn.LeakyReLU(inplace=True),
            conv3x3(n * 3 // 2, n * 2),
        )
        self.context_prediction = CheckerboardMaskedConv2d(n, 2 * n, kernel_size=5, padding=2, stride=1)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(n * 4, n * 10 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(n * 10 // 3, n * 8 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(n * 8 // 3, 3 * MIXTURES * n, 1),
        )
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianMixtureConditional(K=MIXTURES)
        self._exact: nn.ModuleDict | None = None

    # --- training -------------------------------------------------------------------------------------------------
    def _mixture(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scales, means, weights), each (B, K * n, H, W) laid out mixture-major as GaussianMixtureConditional
        expects; the weights are a softmax over the K components of each latent."""
        b, _, h, w = params.shape
        scales, means, logits = params.chunk(3, 1)
        weights = torch.softmax(logits.reshape(b, MIXTURES, self.n, h, w), dim=1).reshape(b, MIXTURES * self.n, h, w)
        return scales.abs(), means, weights

    def _params(self, hyper: torch.Tensor, y_context_source: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        ctx = self.context_prediction(y_context_source) * (~anchors).to(hyper.dtype)  # anchors see no context
        return self.entropy_parameters(torch.cat([hyper, ctx], dim=1))

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        hyper = self.h_s(z_hat)
        y_hat = quantize_ste(y)  # what the decoder will see, passed straight through to the gradients
        anchors = anchor_mask(*y.shape[-2:]).to(y.device)
        params = self._params(hyper, y_hat * anchors.to(y.dtype), anchors)
        scales, means, weights = self._mixture(params)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means, weights)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    # --- coding ---------------------------------------------------------------------------------------------------
    def prepare_for_coding(self) -> None:
        """Rebuild the hyper-latent's tables and the float64 CPU copies of the parameter networks."""
        self.entropy_bottleneck.update(force=True)
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
        return self._mixture(params)

    def _tables(
        self, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor, where: torch.Tensor, bound: int
    ) -> list[list[int]]:
        """Integer CDF of every selected latent over the symbols -bound..bound, from its mixture, in float64."""
        select = where.expand_as(scales[:, : self.n])
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
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        y_strings = []
        for i in range(x.shape[0]):
            symbols = torch.round(y[i : i + 1].cpu().double()).clamp_(-MAX_SYMBOL, MAX_SYMBOL)
            bound = max(1, int(symbols.abs().max().item()))
            anchors = anchor_mask(*symbols.shape[-2:])
            hyper = self._exact_hyper(z_hat[i : i + 1])
            encoder = BufferedRansEncoder()
            for where, context in ((anchors, None), (~anchors, symbols * anchors)):
                tables = self._tables(*self._exact_params(hyper, context), where, bound)
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
        symbols = torch.zeros(1, self.n, height, width, dtype=torch.float64)
        hyper = self._exact_hyper(z_hat)
        decoder = RansDecoder()
        decoder.set_stream(y_string[1:])
        for where in (anchors, ~anchors):
            context = None if where is anchors else symbols * anchors  # the anchors, decoded by the first pass
            tables = self._tables(*self._exact_params(hyper, context), where, bound)
            values = decoder.decode_stream(
                list(range(len(tables))), tables, [len(t) for t in tables], [0] * len(tables)
            )
            symbols[where.expand_as(symbols)] = torch.tensor(values, dtype=torch.float64) - bound
        y_hat = symbols.to(device=self.device_name, dtype=torch.float32)
        with single_threaded(self.device_name == "cpu"):
            x_hat = self.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat}


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
