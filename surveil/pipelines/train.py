"""Train a region codec with ``lambda * 255^2 * MSE + bpp`` on random patches of a class dataset.

The MSE is taken over the object's pixels (its mask, dilated by ``mask_margin`` pixels), not over the neutral fill
around it: the station pastes only the masked pixels, so bits spent on the fill, or on the sharp edge between the
object and the fill, are wasted. ``object_loss=False`` gives the plain whole-patch MSE, the default for the generic
dataset: it holds whole natural images, and every committed generic codec was trained on whole patches.

CPU or GPU, progress bar, checkpoints every ``checkpoint_every`` steps, resume from the last checkpoint.

``precision="bf16"`` runs the transforms (analysis, synthesis, hyper-networks) under bfloat16 autocast and keeps
the entropy models, and so the rate term, in float32: on a CPU with AVX-512 BF16 a step takes about 0.6 of the
float32 time; the weights stay float32 (the optimiser's copy) and coding is unchanged. A CPU without native
bfloat16 (AVX2 only, e.g. the 2-core AMD EPYC of one development session) emulates it: a step took about 10 s
there against 0.38 s in float32, so training warns (``native_bf16``) and the scripts choose fp32 on such a CPU.

The synthesis trains on noisy latents (CompressAI's ``forward``), not on the rounded ones coding gives it. Feeding it
rounded latents with straight-through gradients ("mixed quantisation", Minnen & Singh 2020) was tried as a 3000-step
continuation of the stage-9 person q2 and face q2 codecs: it gained 2.0 and 1.9 points of bits against x265 intra at
equal PSNR where the same continuation with noise gained 4.7 and 3.1 (``scripts/judge_candidates.py``), so it was
not kept.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from compressai.entropy_models import EntropyModel
from torch import nn
from tqdm import tqdm

from surveil.codecs.mixture import MixtureCodecModel
from surveil.codecs.model import TIERS, build_model, load_codec, save_codec
from surveil.errors import SurveilError
from surveil.pipelines.dataset import DATASETS_ROOT, GENERIC_DATASET, load_split_with_masks
from surveil.regions.centring import STATION_MARGIN_PX, grow_mask

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    codec_class: str
    quality: int
    lmbda: float
    steps: int
    out: Path  # final fp16 weights
    run_dir: Path  # checkpoints
    init: Path | None = None  # weights to start from (transfer learning)
    dataset: str | None = None  # dataset class folder; defaults to codec_class
    # 8 patches of 128x128. Person q1 and q2 fine-tuned with the object loss on 16 of 64x64 (1x1 hyper-latents) came
    # out worse in RD terms than where they started (+63% bits for +1.5 dB on held-out crops); the same fine-tuning
    # on 128x128 moved them onto a better curve (person q2: 0.257 bpp, 29.62 dB -> 0.299 bpp, 31.16 dB), so the
    # small patches were the cause.
    batch: int = 8
    patch: int = 128
    lr: float = 3e-4
    min_lr: float = 1e-5
    warmup: int = 100
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "cpu"
    fill: int = 128
    datasets_root: Path = DATASETS_ROOT
    # distortion over the object's pixels only (True) or whole patches (False); None: whole patches for the generic
    # dataset, the object's pixels for the others
    object_loss: bool | None = None
    tier: str = "fast"  # model family of a training from scratch (a fine-tune keeps its --init's)
    mask_margin: int = STATION_MARGIN_PX  # pixels the object mask is grown by (regions/centring.py)
    precision: str = "fp32"  # "bf16": the transforms under bfloat16 autocast (PRECISIONS)

    def __post_init__(self) -> None:
        if self.object_loss is None:
            self.object_loss = self.dataset_name != GENERIC_DATASET

    @property
    def dataset_name(self) -> str:
        """The dataset class folder the codec trains on."""
        return self.dataset or self.codec_class


PRECISIONS = ("fp32", "bf16")


class PatchSampler:
    """Random patches (with horizontal flips) and their distortion weights from in-memory (image, mask) pairs.

    Small images are padded with ``fill``; padding has weight 0, like the fill around an object. Patches are placed
    uniformly, so the rate term sees the fill in the proportion the edge sends it. (Centring patches on object pixels
    was tried: the codec then no longer learned to code fill cheaply and its held-out rate rose by half.)
    """

    def __init__(
        self,
        items: list[tuple[np.ndarray, np.ndarray]],
        patch: int,
        fill: int,
        seed: int,
        mask_margin: int = 0,
    ) -> None:
        self.images: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        for image, mask in items:
            weight = grow_mask(mask, mask_margin)
            self.images.append(self._pad(image, patch, fill))
            self.weights.append(self._pad(weight, patch, 0))
        # larger images hold more distinct patches: sample them proportionally to area, capped
        areas = np.array([min(img.shape[0] * img.shape[1], 16 * patch * patch) for img in self.images], float)
        self.probs = areas / areas.sum()
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _pad(image: np.ndarray, patch: int, fill: int) -> np.ndarray:
        h, w = image.shape[:2]
        if h >= patch and w >= patch:
            return image
        out = np.full((max(h, patch), max(w, patch), *image.shape[2:]), fill, image.dtype)
        oy, ox = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
        out[oy : oy + h, ox : ox + w] = image
        return out

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,3,P,P) pixels in [0, 1] and (N,1,P,P) distortion weights in {0, 1}."""
        picks = self.rng.choice(len(self.images), size, p=self.probs)
        patches, weights = [], []
        for i in picks:
            img, weight = self.images[i], self.weights[i]
            y = self.rng.integers(0, img.shape[0] - self.patch + 1)
            x = self.rng.integers(0, img.shape[1] - self.patch + 1)
            p = img[y : y + self.patch, x : x + self.patch]
            w = weight[y : y + self.patch, x : x + self.patch]
            if self.rng.random() < 0.5:
                p, w = p[:, ::-1], w[:, ::-1]
            patches.append(p)
            weights.append(w)
        pixels = torch.from_numpy(np.stack(patches).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        return pixels, torch.from_numpy(np.stack(weights).astype(np.float32)).unsqueeze(1)


def rate_distortion_loss(
    out: dict, x: torch.Tensor, weight: torch.Tensor | None, lmbda: float
) -> dict[str, torch.Tensor]:
    """``lambda * 255^2 * MSE + bpp``; with ``weight``, the MSE is the mean over the weighted pixels only."""
    n, _, h, w = x.shape
    bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * n * h * w)
    squared = (out["x_hat"] - x) ** 2
    # a patch of pure fill has nothing to judge: it still costs rate, and the clamp keeps the mean finite
    judged = (weight.sum() * x.shape[1]).clamp(min=1.0) if weight is not None else None
    mse = squared.mean() if weight is None else (squared * weight).sum() / judged
    return {"loss": lmbda * 255**2 * mse + bpp, "mse_loss": mse, "bpp_loss": bpp}


def _in_float32(forward: Callable) -> Callable:
    @functools.wraps(forward)
    def run(*args: object, **kwargs: object) -> object:
        def widen(v: object) -> object:
            return v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v

        device_type = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device_type, enabled=False):
            return forward(*(widen(a) for a in args), **{k: widen(v) for k, v in kwargs.items()})

    return run


def keep_entropy_models_float32(model: nn.Module) -> None:
    """Make the model's entropy models (their noise, likelihoods and so the rate) run in float32 under autocast."""
    for module in model.modules():
        if isinstance(module, EntropyModel):
            module.forward = _in_float32(module.forward)  # an instance attribute: state dicts are unaffected


def _lr_at(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


RESUME_MAY_CHANGE = ("steps", "out", "run_dir", "device", "datasets_root", "checkpoint_every")


def _settings_dict(s: TrainSettings) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()}


def _recipe(s: TrainSettings) -> dict:
    """What a checkpoint was trained with; resuming under a different recipe would mix two trainings."""
    return {k: v for k, v in _settings_dict(s).items() if k not in RESUME_MAY_CHANGE}


def _stage_of(meta: dict) -> dict:
    """One training stage as a later stage's lineage records it."""
    recipe = meta.get("recipe", {})
    return {
        "codec_class": meta["codec_class"],
        "quality": meta["quality"],
        "lambda": meta["lambda"],
        "steps": meta["steps"],
        "dataset": meta.get("dataset"),
        "object_loss": recipe.get("object_loss", False),  # trainings before the object loss judged whole patches
        "lr": recipe.get("lr"),
        "seed": recipe.get("seed"),
        "batch": recipe.get("batch", TrainSettings.batch),
        "precision": recipe.get("precision", "fp32"),
        "tier": recipe.get("tier", "fast"),
    }


def _lineage_through(meta: dict) -> list[dict]:
    """The stages a codec with this meta continues, oldest first, ending with its own."""
    return [*meta.get("lineage", []), _stage_of(meta)]


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 autocast runs natively on ``device`` (on a CPU: oneDNN's bf16 kernels, AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def train(s: TrainSettings) -> Path:
    if s.precision not in PRECISIONS:
        raise SurveilError(f"unknown precision {s.precision!r} (known: {', '.join(PRECISIONS)})")
    if s.steps == 0:
        return _rename(s)
    torch.manual_seed(s.seed)
    device = torch.device(s.device)
    lineage: list[dict] = []  # the trainings this one continues, oldest first
    if s.init is not None:
        init = load_codec(s.init)
        model = init.model
        lineage = _lineage_through(init.meta)
        logger.info("starting from %s", s.init)
        if s.tier == "high" and init.model.arch == TIERS["fast"]:
            model = MixtureCodecModel.from_fast(init.model)  # the fast codec plus a neutral context and mixture
            logger.info("high tier built on the fast codec %s", s.init)
        elif init.model.arch != TIERS[s.tier]:
            raise SurveilError(f"{s.init} is a {init.model.arch.name} codec, not of the {s.tier} tier")
    else:
        model = build_model(TIERS[s.tier])
    model.to(device).train()
    mixed = s.precision == "bf16"
    if mixed and not native_bf16(device):
        logger.warning(
            "%s has no native bfloat16: bf16 training is emulated here, many times slower than fp32 (--precision fp32)",
            device,
        )
    if mixed:
        keep_entropy_models_float32(model)
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(params, lr=s.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=1e-3)
    items = load_split_with_masks(s.dataset_name, "train", s.datasets_root)
    sampler = PatchSampler(items, s.patch, s.fill, s.seed, s.mask_margin)

    s.run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = s.run_dir / "checkpoint.pt"
    step = 0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        then = state.get("recipe")  # checkpoints written before recipes were recorded have none
        # A key the checkpoint's recipe lacks came later, with its default as the only behaviour before it.
        changed = {k: (v, then.get(k)) for k, v in _recipe(s).items() if then.get(k, v) != v} if then else {}
        if changed:
            raise SurveilError(
                f"{checkpoint_path} was trained with different settings ("
                + ", ".join(f"{k}: {old!r} then, {new!r} now" for k, (new, old) in changed.items())
                + f"): give another --run-dir or remove {s.run_dir}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        step = state["step"]
        logger.info("resumed %s at step %d", checkpoint_path, step)

    def save_checkpoint() -> None:
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "aux_optimizer": aux_optimizer.state_dict(),
                "sampler_rng": sampler.rng.bit_generator.state,
                "step": step,
                "recipe": _recipe(s),
            },
            tmp,
        )
        tmp.replace(checkpoint_path)

    started = time.monotonic()
    bar = tqdm(total=s.steps, initial=step, desc=f"train {s.codec_class} q{s.quality}", unit="step")
    while step < s.steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, s)
        x, weight = sampler.batch(s.batch)
        x, weight = x.to(device), weight.to(device)
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=mixed):
            out = model(x)
        loss = rate_distortion_loss(out, x, weight if s.object_loss else None, s.lmbda)
        if not torch.isfinite(loss["loss"]):
            raise SurveilError(
                f"training diverged at step {step} (loss {loss['loss'].item()}); the last good checkpoint is "
                f"{checkpoint_path} - lower --lr, or check the --init weights"
            )
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        aux_loss = model.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
        step += 1
        bar.update(1)
        if step % 20 == 0:
            psnr = 10 * math.log10(1 / max(loss["mse_loss"].item(), 1e-10))
            bar.set_postfix(loss=f"{loss['loss'].item():.3f}", bpp=f"{loss['bpp_loss'].item():.3f}", psnr=f"{psnr:.2f}")
        if step % s.checkpoint_every == 0 or step == s.steps:
            save_checkpoint()
    bar.close()
    return _export(model, s, lineage, step, time.monotonic() - started)


def _rename(s: TrainSettings) -> Path:
    """0 steps: ``s.init``'s weights unchanged under ``s.out``'s class and quality (no data, no optimiser), which only
    its own lambda and tier can truthfully describe."""
    if s.init is None:
        raise SurveilError("0 steps only write --init weights under another class or quality: give --init")
    init = load_codec(s.init)
    if init.meta["lambda"] != s.lmbda:  # the file would claim a trade-off it never met
        raise SurveilError(
            f"0 steps write {s.init}'s weights unchanged, so they keep its lambda {init.meta['lambda']}, not {s.lmbda}"
        )
    if init.model.arch != TIERS[s.tier]:
        raise SurveilError(f"0 steps write {s.init}'s weights unchanged: they stay a {init.model.arch.name} codec")
    return _export(init.model, s, _lineage_through(init.meta), 0, 0.0)


def _export(model: nn.Module, s: TrainSettings, lineage: list[dict], steps: int, seconds: float) -> Path:
    """Write the trained model to ``s.out`` with what it was trained with and the stages it continues."""
    model.eval().cpu()
    meta = {
        "codec_class": s.codec_class,
        "quality": s.quality,
        "lambda": s.lmbda,
        "steps": steps,
        "init": str(s.init) if s.init else None,
        "lineage": lineage,
        "dataset": f"datasets/{s.dataset_name}/train",
        "recipe": _settings_dict(s),
        "train_seconds_this_run": round(seconds, 1),
    }
    model.update(force=True)
    sha = save_codec(model, s.out, meta)
    logger.info("wrote %s (sha256 %s)", s.out, sha)
    return s.out
