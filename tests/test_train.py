"""Codec training: patches, schedule, checkpoints and resume, fp16 weights the library can load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from surveil.codecs.model import load_codec
from surveil.paths import find_data
from surveil.pipelines.train import PatchSampler, TrainSettings, _lr_at, train


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    kodak = find_data("images/kodak")
    if kodak is None:
        pytest.skip("shared data not found: images/kodak")
    folder = tmp_path / "datasets" / "generic" / "train"
    folder.mkdir(parents=True)
    for index, name in enumerate(["kodim01.png", "kodim15.png"]):
        image = cv2.imread(str(kodak / name))
        cv2.imwrite(str(folder / f"crop_{index}.png"), image[100:228, 200:264])  # 64x128, smaller than a patch
    return tmp_path / "datasets"


def _settings(root: Path, tmp_path: Path, steps: int) -> TrainSettings:
    return TrainSettings(
        codec_class="generic",
        quality=1,
        lmbda=0.01,
        steps=steps,
        out=tmp_path / "w" / "generic_q1.pt",
        run_dir=tmp_path / "run",
        datasets_root=root,
        batch=2,
        patch=64,
        warmup=2,
        checkpoint_every=2,
    )


def test_patch_sampler_pads_small_images_and_is_seeded() -> None:
    image = np.zeros((40, 30, 3), np.uint8)
    first = PatchSampler([image], patch=64, fill=128, seed=3).batch(4)
    again = PatchSampler([image], patch=64, fill=128, seed=3).batch(4)
    assert first.shape == (4, 3, 64, 64)
    assert torch.equal(first, again)
    assert float(first[0, :, 0, 0].mean()) == pytest.approx(128 / 255)  # padding is the canvas fill
    assert float(first.min()) == 0.0  # the image itself is inside


def test_learning_rate_warms_up_then_decays() -> None:
    s = TrainSettings("generic", 1, 0.01, steps=100, out=Path("x"), run_dir=Path("y"), warmup=10)
    rates = [_lr_at(step, s) for step in range(100)]
    assert rates[0] < rates[9] == pytest.approx(s.lr, rel=0.11)
    assert rates[-1] < rates[50] < rates[10]
    assert rates[-1] >= s.min_lr


def test_train_checkpoints_resume_and_export(tiny_dataset: Path, tmp_path: Path) -> None:
    train(_settings(tiny_dataset, tmp_path, steps=2))
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 2
    out = train(_settings(tiny_dataset, tmp_path, steps=4))  # resumes at step 2
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 4
    codec = load_codec(out)
    assert codec.meta["steps"] == 4 and codec.meta["lambda"] == 0.01
    assert codec.codec_id.codec_class == "generic" and codec.codec_id.quality == 1
    x = torch.rand(1, 3, 64, 64)
    out_strings = codec.model.compress(x)
    assert len(out_strings["strings"]) == 2 and len(out_strings["strings"][0][0]) > 0
