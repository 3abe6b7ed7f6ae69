"""Rate-distortion helpers of the codec evaluation: BD-rate, interpolation, accounting of the anchors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surveil.pipelines import evaluate_codec
from surveil.pipelines.evaluate_codec import (
    RDPoint,
    _nal_payload_bytes,
    av1_point,
    bd_rate,
    bd_table,
    interpolate,
    pillow_point,
    x265_point,
)

CURVE = [(0.1, 30.0), (0.2, 33.0), (0.4, 36.0), (0.8, 39.0)]


def _curve(scale: float = 1.0, shift_db: float = 0.0) -> list[RDPoint]:
    return [RDPoint("c", f"p{i}", bpp * scale, psnr + shift_db) for i, (bpp, psnr) in enumerate(CURVE)]


def test_bd_rate_of_a_uniform_saving() -> None:
    assert bd_rate(_curve(), _curve(scale=0.8)) == pytest.approx(-20.0)
    assert bd_rate(_curve(), _curve(scale=1.5)) == pytest.approx(50.0)
    assert bd_rate(_curve(), _curve()) == pytest.approx(0.0)


def test_bd_rate_in_ms_ssim() -> None:
    def with_ms_ssim(curve: list[RDPoint]) -> list[RDPoint]:
        for point in curve:
            point.ms_ssim = 1 - 10 ** (-(point.psnr - 20) / 10)  # 10..19 dB in MS-SSIM's dB form
        return curve

    assert bd_rate(with_ms_ssim(_curve()), with_ms_ssim(_curve(scale=0.7)), "ms_ssim_db") == pytest.approx(-30.0)


def test_bd_rate_needs_overlap() -> None:
    assert bd_rate(_curve(), _curve(shift_db=20.0)) is None
    assert bd_rate(_curve(), _curve()[:1]) is None


def test_bd_table_marks_curves_without_overlap() -> None:
    learned = {"fast": _curve(scale=0.5, shift_db=20.0)}
    anchors = {"fast": {"generic": _curve(), "x265": _curve(shift_db=20.0)}}  # MS-SSIM 1 everywhere: no curve
    row = bd_table(learned, anchors).splitlines()[-1]
    assert row == "| c | n/a / n/a | -50.0% / n/a |"


def test_interpolate_both_ways_and_refuses_to_extrapolate() -> None:
    curve = _curve()
    assert interpolate(curve, 0.2, psnr_at_bpp=True) == pytest.approx(33.0)
    assert interpolate(curve, np.sqrt(0.1 * 0.2), psnr_at_bpp=True) == pytest.approx(31.5)  # linear in log-bpp
    assert interpolate(curve, 36.0, psnr_at_bpp=False) == pytest.approx(0.4)
    assert interpolate(curve, 0.05, psnr_at_bpp=True) is None
    assert interpolate(curve, 45.0, psnr_at_bpp=False) is None


def test_start_codes_are_not_counted() -> None:
    stream = b"\x00\x00\x00\x01" + b"\x40\x01abc" + b"\x00\x00\x01" + b"\x42\x01de"
    assert _nal_payload_bytes(stream) == 5 + 4


def test_anchors_trade_rate_for_quality(kodak_crops: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for low, high in (
        (pillow_point("JPEG", 20, kodak_crops), pillow_point("JPEG", 80, kodak_crops)),
        (x265_point(40, kodak_crops), x265_point(24, kodak_crops)),
        (av1_point(50, kodak_crops), av1_point(24, kodak_crops)),
    ):
        assert low.bpp < high.bpp and low.psnr < high.psnr
        assert 20 < low.psnr < high.psnr < 60


def test_evaluation_refines_each_tier(
    kodak_crops: list[tuple[np.ndarray, np.ndarray]], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --refine-steps, both tiers get a refined curve; the refined high tier is set against the refined fast."""
    monkeypatch.setattr(evaluate_codec, "held_out_crops", lambda codec_class: kodak_crops)
    out = tmp_path / "eval_person.md"
    evaluate_codec.run_codec_evaluation("person", [1, 2], out, refine_steps=2)
    text = out.read_text()
    assert "fast tier, latents refined per crop (2 steps, stochastic Gumbel annealing)" in text
    assert "high tier, latents refined per crop (2 steps, stochastic Gumbel annealing)" in text
    bd_lines = text.split("BD-rate (PSNR / MS-SSIM dB")[1].split("\n\n")[1].splitlines()
    columns = [c.strip() for c in bd_lines[0].strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in bd_lines[2:]}
    assert list(rows) == ["person fast", "person high", "person fast+refine2", "person high+refine2"]
    against_refined_fast = columns.index("vs person fast+refine2")
    assert rows["person high+refine2"][against_refined_fast] != "-"
    assert rows["person high"][against_refined_fast] == "-"
    assert out.with_suffix(".png").stat().st_size > 0
    assert torch.is_grad_enabled()  # the evaluation leaves the caller's grad mode alone (training may follow)
