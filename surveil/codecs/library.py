"""The per-class codec library: weights looked up by (class, tier, quality), generic fallback, batched coding.

The edge asks for ``codec_for(class)``; the station asks for ``by_id(codec_id)`` and gets an error, never a wrong
decoder, when it does not hold the exact weights a region was coded with.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch

from surveil.codecs.model import TIERS, LoadedCodec, load_codec, tier_of
from surveil.codecs.refine import object_weights, refine_latents
from surveil.config import FALLBACK_CLASS, Config
from surveil.devices import resolve_device
from surveil.errors import CodecMismatchError, SurveilError
from surveil.paths import REPO_ROOT
from surveil.types import CodecId

logger = logging.getLogger(__name__)

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Rate points, as in CompressAI's model zoo (q1-q4), with q0 one halving below its q1 for low-rate links:
# quality -> lambda of the training loss lambda * 255^2 * MSE + bpp.
QUALITY_LAMBDAS = {0: 0.0009, 1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.013}
# A (class, tier) whose points the shared ladder puts far from the other classes' fidelity climbs its own, so that a
# quality means about the same fidelity for every class and the points cover the low rates a link needs. The person
# loss judges the object's pixels only (its rate is the whole canvas's), which on the shared ladder put person high
# well above generic high's fidelity on the same crops: two halvings down (docs/training.md, stage 40, has the figures).
CLASS_QUALITY_LAMBDAS: dict[tuple[str, str], dict[int, float]] = {
    ("person", "high"): {0: 0.000225, 1: 0.00045, 2: 0.0009, 3: 0.0018, 4: 0.0035},
}


def quality_lambda(codec_class: str, tier: str, quality: int) -> float | None:
    """The training lambda of a (class, tier, quality) rate point; None for a quality off its ladder."""
    return CLASS_QUALITY_LAMBDAS.get((codec_class, tier), QUALITY_LAMBDAS).get(quality)


def weight_file(weights_dir: Path, codec_class: str, quality: int, tier: str = "fast") -> Path:
    """``<class>_q<quality>.pt`` for the fast tier, ``<class>_<tier>_q<quality>.pt`` for the others."""
    if tier not in TIERS:
        raise SurveilError(f"unknown codec tier {tier!r} (known: {', '.join(TIERS)})")
    return weights_dir / (f"{codec_class}_q{quality}.pt" if tier == "fast" else f"{codec_class}_{tier}_q{quality}.pt")


class CodecLibrary:
    def __init__(self, weights_dir: Path, quality: int, device: str = "cpu", tier: str = "fast") -> None:
        self.weights_dir = Path(weights_dir)
        self.quality = quality
        self.device = device
        self.tier = tier
        self._by_class: dict[str, LoadedCodec] = {}
        self._by_key: dict[str, LoadedCodec] = {}
        fallbacks = self._candidates(FALLBACK_CLASS)
        if not any(path.exists() for path in fallbacks):
            wanted = " or ".join(str(path) for path in fallbacks)
            available = sorted(p.name for p in self.weights_dir.glob("*.pt"))
            raise SurveilError(f"codec weights missing: {wanted} (available: {', '.join(available) or 'none'})")

    def _load(self, path: Path) -> LoadedCodec:
        loaded = load_codec(path, self.device)
        self._by_key[loaded.codec_id.key] = loaded
        logger.info("loaded codec %s from %s", loaded.codec_id.key, path)
        return loaded

    def _candidates(self, codec_class: str) -> list[Path]:
        """Weight files for the class in order of preference: the configured tier first, then the fast tier (every
        class codec starts as one; a class's own fast codec beats the generic codec of any tier)."""
        tiers = dict.fromkeys([self.tier, "fast"])
        return [weight_file(self.weights_dir, codec_class, self.quality, tier) for tier in tiers]

    def path_for(self, codec_class: str) -> Path:
        """The weight file of the class's own codec at the configured tier and quality, else of its fast-tier codec,
        else of the generic one (configured tier, then fast)."""
        candidates = self._candidates(codec_class) + self._candidates(FALLBACK_CLASS)
        path = next(p for p in candidates if p.exists() or p == candidates[-1])
        if path != candidates[0]:
            logger.info("no %s: class %s uses %s", candidates[0].name, codec_class, path.name)
        return path

    def codec_for(self, codec_class: str) -> LoadedCodec:
        """The class's own codec at the configured tier and quality, else the fallback of :meth:`path_for`."""
        if codec_class not in self._by_class:
            self._by_class[codec_class] = self._load(self.path_for(codec_class))
        return self._by_class[codec_class]

    def by_id(self, codec_id: CodecId) -> LoadedCodec:
        if not _PLAIN_NAME.fullmatch(codec_id.codec_class):  # it names a file: nothing from the wire reaches a path
            raise CodecMismatchError(f"codec class {codec_id.codec_class!r} is not a plain name")
        if codec_id.key not in self._by_key:
            try:
                tier = tier_of(codec_id.arch)
            except SurveilError as exc:
                raise CodecMismatchError(str(exc)) from exc
            path = weight_file(self.weights_dir, codec_id.codec_class, codec_id.quality, tier)
            if path.exists():
                self._load(path)
        if codec_id.key not in self._by_key:
            raise CodecMismatchError(
                f"no decoder for codec {codec_id.key}: this station holds "
                f"{', '.join(sorted(self._by_key)) or 'no matching weights'} in {self.weights_dir}"
            )
        return self._by_key[codec_id.key]


def build_library(config: Config) -> CodecLibrary:
    """The library ``config.codec`` describes (a relative weights folder is taken from the repository root)."""
    weights_dir = Path(config.codec.weights_dir)
    if not weights_dir.is_absolute():
        weights_dir = REPO_ROOT / weights_dir
    return CodecLibrary(weights_dir, config.codec.quality, resolve_device(config.codec.device), config.codec.tier)


def to_tensor(canvases: list[np.ndarray], device: str) -> torch.Tensor:
    batch = np.stack(canvases).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).to(device)


def to_images(x_hat: torch.Tensor) -> list[np.ndarray]:
    arr = (x_hat.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def encode_canvases(
    codec: LoadedCodec,
    canvases: list[np.ndarray],
    masks: list[np.ndarray] | None = None,
    refine_steps: int = 0,
    rounding: str = "sga",
) -> list[tuple[list[bytes], tuple[int, int]]]:
    """Code canvases with one model; same-sized canvases share a forward pass. Returns (strings, z shape) each.

    With ``refine_steps`` and the canvases' object ``masks`` (bool, canvas-sized), each region's latents are first
    optimised for its own cost at the lambda the codec was trained with (codecs/refine.py, with its ``rounding``):
    fewer bits for the same object pixels, at about one synthesis forward and backward pass per step.
    """
    if refine_steps and masks is None:
        raise ValueError("latent refinement needs the canvases' object masks")
    results: list[tuple[list[bytes], tuple[int, int]] | None] = [None] * len(canvases)
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, canvas in enumerate(canvases):
        by_size.setdefault(canvas.shape[:2], []).append(index)
    for indices in by_size.values():
        x = to_tensor([canvases[i] for i in indices], codec.model.device_name)
        if refine_steps and masks is not None:
            weight = object_weights([masks[i] for i in indices])
            lmbda = float(codec.meta["lambda"])  # the trade-off the codec was trained for
            out = codec.model.compress_latents(*refine_latents(codec.model, x, weight, lmbda, refine_steps, rounding))
        else:
            out = codec.model.compress(x)
        y_strings, z_strings = out["strings"]
        for position, index in enumerate(indices):
            results[index] = ([y_strings[position], z_strings[position]], tuple(int(v) for v in out["shape"]))
    return [r for r in results if r is not None]


def decode_canvas(codec: LoadedCodec, strings: list[bytes], shape: tuple[int, int]) -> np.ndarray:
    out = codec.model.decompress([[strings[0]], [strings[1]]], shape)
    return to_images(out["x_hat"])[0]
