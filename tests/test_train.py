"""Codec training: patches, schedule, checkpoints and resume, fp16 weights the library can load."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from surveil.codecs.model import TIERS, build_model, load_codec
from surveil.errors import SurveilError
from surveil.paths import find_data
from surveil.pipelines.train import (
    PatchSampler,
    TrainSettings,
    _lr_at,
    keep_entropy_models_float32,
    native_bf16,
    rate_distortion_loss,
    train,
)


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
    mask = np.ones((40, 30), bool)
    first, weight = PatchSampler([(image, mask)], patch=64, fill=128, seed=3).batch(4)
    again, _ = PatchSampler([(image, mask)], patch=64, fill=128, seed=3).batch(4)
    assert first.shape == (4, 3, 64, 64) and weight.shape == (4, 1, 64, 64)
    assert torch.equal(first, again)
    assert float(first[0, :, 0, 0].mean()) == pytest.approx(128 / 255)  # padding is the canvas fill
    assert float(first.min()) == 0.0  # the image itself is inside
    assert float(weight[0, 0, 0, 0]) == 0.0  # padding is not judged
    assert float(weight.sum()) == 4 * 40 * 30  # the object is, every pixel once


def test_patch_weights_follow_the_mask_grown_by_the_margin() -> None:
    image = np.full((64, 64, 3), 128, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 27:37] = True  # symmetric about the centre column, so a flip keeps it in place
    _, weight = PatchSampler([(image, mask)], patch=64, fill=128, seed=0, mask_margin=2).batch(1)
    grown = weight[0, 0].numpy() > 0
    assert grown[20:40, 27:37].all()
    assert grown[18, 30] and grown[30, 25]  # two pixels out
    assert not grown[16, 30] and not grown[30, 23] and not grown[0, 0]


def test_object_loss_ignores_the_fill() -> None:
    x = torch.zeros(1, 3, 8, 8)
    x_hat = x.clone()
    x_hat[..., :, 4:] = 1.0  # all error outside the object
    weight = torch.zeros(1, 1, 8, 8)
    weight[..., :, :4] = 1.0
    out = {"x_hat": x_hat, "likelihoods": {"y": torch.full((1, 4, 2, 2), 0.5)}}
    masked = rate_distortion_loss(out, x, weight, lmbda=0.01)
    whole = rate_distortion_loss(out, x, None, lmbda=0.01)
    assert float(masked["mse_loss"]) == 0.0
    assert float(whole["mse_loss"]) == pytest.approx(0.5)
    assert float(masked["bpp_loss"]) == pytest.approx(16 / 64)  # 16 symbols of one bit over 64 pixels


def test_learning_rate_warms_up_then_decays() -> None:
    s = TrainSettings("generic", 1, 0.01, steps=100, out=Path("x"), run_dir=Path("y"), warmup=10)
    rates = [_lr_at(step, s) for step in range(100)]
    assert rates[0] < rates[9] == pytest.approx(s.lr, rel=0.11)
    assert rates[-1] < rates[50] < rates[10]
    assert rates[-1] >= s.min_lr


def test_loss_defaults_to_whole_patches_for_generic_only(tmp_path: Path) -> None:
    def settings(codec_class: str, **kw: object) -> TrainSettings:
        return TrainSettings(codec_class, 1, 0.01, 2, tmp_path / "w.pt", tmp_path / "run", **kw)

    assert settings("generic").object_loss is False
    assert settings("person").object_loss is True
    assert settings("bag", dataset="generic").object_loss is False  # the dataset decides, not the class name
    assert settings("bag", dataset="generic").dataset_name == "generic"
    assert settings("bag").dataset_name == "bag"
    assert settings("generic", object_loss=True).object_loss is True
    assert settings("face", object_loss=False).object_loss is False


def test_train_checkpoints_resume_and_export(tiny_dataset: Path, tmp_path: Path) -> None:
    train(_settings(tiny_dataset, tmp_path, steps=2))
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 2
    out = train(_settings(tiny_dataset, tmp_path, steps=4))  # resumes at step 2
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 4
    codec = load_codec(out)
    assert codec.meta["steps"] == 4 and codec.meta["lambda"] == 0.01
    assert codec.codec_id.codec_class == "generic" and codec.codec_id.quality == 1
    assert codec.meta["lineage"] == []  # trained from scratch

    finetuned = _settings(tiny_dataset, tmp_path, steps=2)
    finetuned.init, finetuned.run_dir, finetuned.out = out, tmp_path / "run2", tmp_path / "w" / "finetuned.pt"
    [stage] = load_codec(train(finetuned)).meta["lineage"]
    # the generic dataset holds whole images: whole-patch loss unless told otherwise
    assert stage["steps"] == 4 and stage["lambda"] == 0.01 and stage["object_loss"] is False
    # what the manifest's history shows of each stage
    assert stage["seed"] == 0 and stage["precision"] == "fp32" and stage["batch"] == 2
    x = torch.rand(1, 3, 64, 64)
    out_strings = codec.model.compress(x)
    assert len(out_strings["strings"]) == 2 and len(out_strings["strings"][0][0]) > 0


def test_zero_steps_rename_a_codec_to_another_rate_point_of_its_lambda(tiny_dataset: Path, tmp_path: Path) -> None:
    """How a ladder change keeps a file under a new quality: same weights and bits, new name and lineage, no data."""
    source = load_codec(train(_settings(tiny_dataset, tmp_path, steps=2)))
    renamed = replace(
        _settings(tmp_path / "no_datasets", tmp_path, steps=0), quality=3, init=tmp_path / "w" / "generic_q1.pt"
    )
    renamed.run_dir, renamed.out = tmp_path / "run_renamed", tmp_path / "w" / "generic_q3.pt"
    codec = load_codec(train(renamed))
    assert codec.codec_id.quality == 3 and codec.meta["steps"] == 0 and codec.meta["lambda"] == 0.01
    assert [stage["quality"] for stage in codec.meta["lineage"]] == [1]
    renamed_state, source_state = codec.model.state_dict(), source.model.state_dict()
    assert all(torch.equal(renamed_state[k], source_state[k]) for k in source_state)
    x = torch.rand(1, 3, 64, 64)
    assert codec.model.compress(x)["strings"] == source.model.compress(x)["strings"]
    with pytest.raises(SurveilError, match=r"keep its lambda 0\.01, not 0\.02"):
        train(replace(renamed, lmbda=0.02, run_dir=tmp_path / "run_other"))
    with pytest.raises(SurveilError, match="give --init"):
        train(replace(renamed, init=None, run_dir=tmp_path / "run_scratch"))
    with pytest.raises(SurveilError, match="they stay a msh-n64m96 codec"):
        train(replace(renamed, tier="high", run_dir=tmp_path / "run_high"))


def test_resume_refuses_a_different_recipe(tiny_dataset: Path, tmp_path: Path) -> None:
    train(_settings(tiny_dataset, tmp_path, steps=2))
    changed = _settings(tiny_dataset, tmp_path, steps=4)
    changed.lmbda = 0.02
    with pytest.raises(SurveilError, match=r"lmbda: 0\.01 then, 0\.02 now"):
        train(changed)


def test_training_from_scratch_in_the_high_tier(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "w" / "generic_high_q1.pt"
    settings = replace(_settings(tiny_dataset, tmp_path, steps=2), tier="high", out=out)
    codec = load_codec(train(settings))
    assert codec.codec_id.arch == "cgm-n64m96" and codec.meta["steps"] == 2
    with pytest.raises(SurveilError, match="not of the fast tier"):
        train(replace(settings, init=settings.out, tier="fast", run_dir=tmp_path / "run2"))


def test_the_high_tier_fine_tunes_from_a_fast_codec(tiny_dataset: Path, tmp_path: Path) -> None:
    fast = train(_settings(tiny_dataset, tmp_path, steps=2))
    out = tmp_path / "w" / "generic_high_q1.pt"
    settings = replace(_settings(tiny_dataset, tmp_path, steps=2), tier="high", init=fast, out=out)
    high = load_codec(train(replace(settings, run_dir=tmp_path / "run_high")))
    assert high.codec_id.arch == "cgm-n64m96"
    assert [stage["steps"] for stage in high.meta["lineage"]] == [2]  # the fast training it continues
    fast_state = load_codec(fast).model.state_dict()
    high_state = high.model.state_dict()
    # the first analysis layer came from the fast codec and moved by at most two small Adam steps
    assert torch.allclose(high_state["g_a.0.weight"], fast_state["g_a.0.weight"], atol=2e-3)


@pytest.mark.parametrize("tier", ["fast", "high"])
def test_bf16_autocast_keeps_the_rate_in_float32(tier: str) -> None:
    torch.manual_seed(0)
    model = build_model(TIERS[tier]).train()
    keys = set(model.state_dict())
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)
    reference = rate_distortion_loss(model(x), x, None, 0.01)
    keep_entropy_models_float32(model)
    torch.manual_seed(1)  # the same quantisation noise
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out["x_hat"].dtype == torch.bfloat16  # the transforms ran in bf16
    assert all(lk.dtype == torch.float32 for lk in out["likelihoods"].values())
    mixed = rate_distortion_loss(out, x, None, 0.01)
    assert mixed["bpp_loss"].item() == pytest.approx(reference["bpp_loss"].item(), rel=0.05)
    assert mixed["mse_loss"].item() == pytest.approx(reference["mse_loss"].item(), rel=0.05)
    assert set(model.state_dict()) == keys  # nothing added to what a weight file holds


def test_bf16_training_is_part_of_the_recipe(
    tiny_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(_settings(tiny_dataset, tmp_path, steps=2), precision="bf16")
    with caplog.at_level(logging.WARNING, logger="surveil.pipelines.train"):
        codec = load_codec(train(settings))
    # Emulated bf16 is many times slower than fp32: say so exactly where the CPU lacks it.
    assert ("no native bfloat16" in caplog.text) == (not native_bf16(torch.device("cpu")))
    assert codec.meta["recipe"]["precision"] == "bf16" and codec.meta["steps"] == 2
    assert all(torch.isfinite(p).all() for p in codec.model.parameters())
    with pytest.raises(SurveilError, match="precision: 'bf16' then, 'fp32' now"):
        train(replace(settings, steps=4, precision="fp32"))
    with pytest.raises(SurveilError, match="unknown precision 'fp8'"):
        train(replace(settings, precision="fp8", run_dir=tmp_path / "run3"))
