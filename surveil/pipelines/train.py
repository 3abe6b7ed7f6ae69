"""Train a region codec with ``lambda * 255^2 * MSE + bpp`` on random patches of a class dataset.

CPU or GPU, progress bar, checkpoints every ``checkpoint_every`` steps, resume from the last checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from compressai.losses import RateDistortionLoss
from tqdm import tqdm

from surveil.codecs.model import CodecArch, RegionCodecModel, load_codec, save_codec
from surveil.errors import SurveilError
from surveil.pipelines.dataset import DATASETS_ROOT, load_split

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


class PatchSampler:
    """Random patches (with horizontal flips) from in-memory images; small images are padded with ``fill``."""

    def __init__(self, images: list[np.ndarray], patch: int, fill: int, seed: int) -> None:
        self.images = [self._pad(img, patch, fill) for img in images]
        # larger images hold more distinct patches: sample them proportionally to area, capped
        weights = np.array([min(img.shape[0] * img.shape[1], 16 * patch * patch) for img in self.images], float)
        self.probs = weights / weights.sum()
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _pad(image: np.ndarray, patch: int, fill: int) -> np.ndarray:
        h, w = image.shape[:2]
        if h >= patch and w >= patch:
            return image
        out = np.full((max(h, patch), max(w, patch), 3), fill, np.uint8)
        oy, ox = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
        out[oy : oy + h, ox : ox + w] = image
        return out

    def batch(self, size: int) -> torch.Tensor:
        picks = self.rng.choice(len(self.images), size, p=self.probs)
        patches = []
        for i in picks:
            img = self.images[i]
            y = self.rng.integers(0, img.shape[0] - self.patch + 1)
            x = self.rng.integers(0, img.shape[1] - self.patch + 1)
            p = img[y : y + self.patch, x : x + self.patch]
            patches.append(p[:, ::-1] if self.rng.random() < 0.5 else p)
        arr = np.stack(patches).astype(np.float32) / 255.0
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _lr_at(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


def train(s: TrainSettings) -> Path:
    torch.manual_seed(s.seed)
    device = torch.device(s.device)
    if s.init is not None:
        model = load_codec(s.init).model
        logger.info("starting from %s", s.init)
    else:
        model = RegionCodecModel(CodecArch())
    model.to(device).train()
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(params, lr=s.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=1e-3)
    criterion = RateDistortionLoss(lmbda=s.lmbda)
    sampler = PatchSampler(load_split(s.dataset or s.codec_class, "train", s.datasets_root), s.patch, s.fill, s.seed)

    s.run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = s.run_dir / "checkpoint.pt"
    step = 0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
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
            },
            tmp,
        )
        tmp.replace(checkpoint_path)

    started = time.monotonic()
    bar = tqdm(total=s.steps, initial=step, desc=f"train {s.codec_class} q{s.quality}", unit="step")
    while step < s.steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, s)
        x = sampler.batch(s.batch).to(device)
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        out = model(x)
        loss = criterion(out, x)
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

    model.eval().cpu()
    meta = {
        "codec_class": s.codec_class,
        "quality": s.quality,
        "lambda": s.lmbda,
        "steps": step,
        "init": str(s.init) if s.init else None,
        "dataset": f"datasets/{s.dataset or s.codec_class}/train",
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
        "train_seconds_this_run": round(time.monotonic() - started, 1),
    }
    model.update(force=True)
    sha = save_codec(model, s.out, meta)
    logger.info("wrote %s (sha256 %s)", s.out, sha)
    return s.out
