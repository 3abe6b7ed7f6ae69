"""The fast-tier learned codec: CompressAI's mean-scale hyperprior, made bit-exact across processes and devices.

The entropy parameters (scales and means of the Gaussian conditional) come from the hyper-synthesis ``h_s``. If the
encoder and the decoder compute them with different kernels (GPU against CPU, batch of 8 against batch of 1), a
scale can cross a table boundary and the decoder reads garbage. Here ``h_s`` runs in float64 on the CPU, one region at
a time, at both ends; it works on the hyper-latent (1/64 of the pixels), so this costs little. The synthesis ``g_s``
runs on one CPU thread, so the decoded pixels do not depend on the process's thread count either (tested by golden
md5s). Across machines whose CPUs pick other convolution kernels the entropy decoding stays exact and a decoded pixel
may differ by a rounding step; nothing is predicted from decoded regions, so no such difference can drift.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import MeanScaleHyperprior
from torch import nn

from surveil.errors import SurveilError
from surveil.types import CodecId

logger = logging.getLogger(__name__)

ARCH_FAMILY = "msh"  # mean-scale hyperprior (the fast tier)
MIXTURE_FAMILY = "cgm"  # attention + Gaussian mixture + checkerboard context (the high-efficiency tier)
LATENT_STRIDE = 64  # canvas pixels per hyper-latent element: g_a downsamples by 16, h_a by 4 more
STRINGS_PER_REGION = 2  # the entropy-coded latents y and z
_NOT_LEARNED = ("_h_s_exact.",)  # derived at load time; files written before it left the module tree still carry it


def rebuild_bottleneck_tables(bottleneck: EntropyBottleneck) -> None:
    """Rebuild the hyper-latent's integer tables from a float64 CPU copy of its density.

    CompressAI builds them in the module's precision. In float32, another CPU's kernels can move a probability across
    a quantisation step of the table (person_high_q2's came out differently on an Intel Xeon and an AMD EPYC), and an
    edge and a station on different CPUs would then code the hyper-latents with different tables.
    """
    exact = copy.deepcopy(bottleneck).to(device="cpu", dtype=torch.float64)
    exact.update(force=True)
    device = bottleneck.quantiles.device
    for name in ("_offset", "_quantized_cdf", "_cdf_length"):
        setattr(bottleneck, name, getattr(exact, name).to(device))


def rebuild_scale_tables(conditional: GaussianConditional) -> None:
    """Rebuild the latents' integer tables (one per entry of the scale table) in float64, as CompressAI's
    ``GaussianConditional.update`` does in float32, where entries differ from the float64 build and another CPU's
    float32 kernels could build them otherwise."""
    scale_table = conditional.scale_table.to(device="cpu", dtype=torch.float64)
    multiplier = -conditional._standardized_quantile(conditional.tail_mass / 2)
    pmf_center = torch.ceil(scale_table * multiplier).int()
    pmf_length = 2 * pmf_center + 1
    max_length = int(pmf_length.max().item())
    samples = torch.abs(torch.arange(max_length).int() - pmf_center[:, None]).double()
    scales = scale_table.unsqueeze(1)
    upper = conditional._standardized_cumulative((0.5 - samples) / scales)
    lower = conditional._standardized_cumulative((-0.5 - samples) / scales)
    device = conditional.scale_table.device
    conditional._quantized_cdf = conditional._pmf_to_cdf(upper - lower, 2 * lower[:, :1], pmf_length, max_length).to(
        device
    )
    conditional._offset = (-pmf_center).to(device)
    conditional._cdf_length = (pmf_length + 2).to(device)


@dataclass(frozen=True)
class CodecArch:
    n: int = 64
    m: int = 96  # latent channels
    family: str = ARCH_FAMILY

    @property
    def name(self) -> str:
        return f"{self.family}-n{self.n}m{self.m}"


TIERS = {"fast": CodecArch(), "high": CodecArch(family=MIXTURE_FAMILY)}


def tier_of(arch_name: str) -> str:
    """The tier whose family an architecture name (``CodecId.arch``) belongs to; SurveilError if none."""
    family = arch_name.split("-", 1)[0]
    for tier, arch in TIERS.items():
        if arch.family == family:
            return tier
    raise SurveilError(f"unknown codec architecture {arch_name!r} (known families: msh, cgm)")


def build_model(arch: CodecArch) -> nn.Module:
    """An untrained model of the architecture."""
    if arch.family == ARCH_FAMILY:
        return RegionCodecModel(arch)
    if arch.family == MIXTURE_FAMILY:
        from surveil.codecs.mixture import MixtureCodecModel

        return MixtureCodecModel(arch)
    raise SurveilError(f"unknown codec architecture family {arch.family!r}")


class RegionCodecModel(MeanScaleHyperprior):
    """Mean-scale hyperprior with deterministic entropy parameters for coding."""

    def __init__(self, arch: CodecArch) -> None:
        super().__init__(N=arch.n, M=arch.m)
        self.arch = arch
        self._h_s_exact: nn.Module | None = None

    @property
    def device_name(self) -> str:
        return str(next(self.g_a.parameters()).device)

    def prepare_for_coding(self) -> None:
        """Rebuild entropy tables and the float64 CPU copy of ``h_s``; call after training or loading."""
        self.update(force=True)
        rebuild_bottleneck_tables(self.entropy_bottleneck)
        rebuild_scale_tables(self.gaussian_conditional)
        exact = copy.deepcopy(self.h_s).to(device="cpu", dtype=torch.float64).eval()
        # Kept out of the module tree: not a learned part, never in a state dict, never moved to another device.
        object.__setattr__(self, "_h_s_exact", exact)

    def _entropy_params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._h_s_exact is None:
            raise RuntimeError("call prepare_for_coding() before compress/decompress")
        params = torch.cat([self._h_s_exact(z_hat[i : i + 1].cpu().double()) for i in range(z_hat.shape[0])])
        scales_hat, means_hat = params.chunk(2, 1)
        return scales_hat, means_hat

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        return self.compress_latents(y, self.h_a(y))

    @torch.no_grad()
    def compress_latents(self, y: torch.Tensor, z: torch.Tensor) -> dict:
        """Code latents given directly (those of ``g_a`` and ``h_a``, or refined ones; see codecs/refine.py)."""
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales_hat, means_hat = self._entropy_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_strings = self.gaussian_conditional.compress(y.cpu().double(), indexes, means=means_hat)
        return {"strings": [y_strings, z_strings], "shape": tuple(z.size()[-2:])}

    @torch.no_grad()
    def decompress(self, strings: list, shape: tuple[int, int]) -> dict:
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        scales_hat, means_hat = self._entropy_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_hat = self.gaussian_conditional.decompress(strings[0], indexes, dtype=torch.float64, means=means_hat)
        y_hat = y_hat.to(device=self.device_name, dtype=torch.float32)
        with single_threaded(self.device_name == "cpu"):
            x_hat = self.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat}


@contextmanager
def single_threaded(active: bool) -> Iterator[None]:
    """Run the synthesis on one CPU thread: the sums in its convolutions then add up in one order whatever
    ``torch.get_num_threads()`` the process has, so every station decodes the same pixels."""
    if not active:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class LoadedCodec:
    model: nn.Module  # RegionCodecModel or MixtureCodecModel: compress, decompress, device_name
    codec_id: CodecId
    meta: dict


def save_codec(model: nn.Module, path: Path, meta: dict) -> str:
    """Write the learned parameters in fp16 (buffers kept as they are) with metadata; returns the file's sha256.

    Buffers stay in full precision: they include bounds such as the 1e-9 likelihood floor, which fp16 flushes to
    zero (a model fine-tuned from such a file would meet log(0) and diverge).
    """
    parameters = {name for name, _ in model.named_parameters()}
    derived = getattr(model, "DERIVED_STATE", ())
    state = {k: (v.half() if k in parameters else v) for k, v in model.state_dict().items() if k not in derived}
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = {"n": model.arch.n, "m": model.arch.m, "family": model.arch.family}
    torch.save({"arch": arch, "meta": meta, "state_dict": state}, path)
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_codec(path: Path, device: str = "cpu") -> LoadedCodec:
    """Weights written by :func:`save_codec`; anything else is a :class:`SurveilError` naming the file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        arch = CodecArch(**checkpoint["arch"])  # files from before the mixture tier carry no family: msh
        model = build_model(arch)
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in checkpoint["state_dict"].items()}
        # strict: a state that does not fit is a RuntimeError, reported below; a mixture model fills in the
        # buffers its files leave out itself (MixtureCodecModel.load_state_dict)
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith(_NOT_LEARNED)})
        meta = checkpoint["meta"]
        codec_id = CodecId(
            arch=arch.name,
            codec_class=meta["codec_class"],
            quality=int(meta["quality"]),
            weights_sha=file_sha256(path)[:16],
        )
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError, SurveilError) as exc:
        raise SurveilError(f"cannot load codec weights {path}: {exc}") from exc
    model.eval()
    model.prepare_for_coding()
    model.to(device)
    # The entropy coder's side runs on the CPU in float64 at both ends (see _entropy_params): keep its bounds there.
    model.gaussian_conditional.to("cpu")
    return LoadedCodec(model=model, codec_id=codec_id, meta=meta)
