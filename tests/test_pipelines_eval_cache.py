"""Reuse of learned-codec points between evaluations: a hit gives back the measured point, any changed input misses."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from surveil.codecs.library import weight_file
from surveil.paths import PROJECT_WEIGHTS
from surveil.pipelines import evaluate_codec
from surveil.pipelines.eval_cache import PointCache, code_digest, crops_digest
from surveil.pipelines.evaluate_codec import RDPoint, learned_point


def _cache(directory: Path, crops: list[tuple[np.ndarray, np.ndarray]]) -> PointCache:
    return PointCache(directory, crops_digest(crops), code_digest((learned_point,)))


def test_a_stored_point_comes_back_whole(kodak_crops, tmp_path: Path) -> None:
    weights = tmp_path / "person_q1.pt"
    shutil.copy(weight_file(PROJECT_WEIGHTS, "person", 1, "fast"), weights)
    cache = _cache(tmp_path / "cache", kodak_crops)
    assert cache.get(weights, 0) is None
    point = learned_point(weights, kodak_crops)
    cache.put(weights, 0, point)
    assert RDPoint(**cache.get(weights, 0)) == point
    assert (cache.measured, cache.reused) == (1, 1)
    assert cache.get(weights, 2) is None  # refined points are other points
    cache.put(weights, 2, point, "ste")
    assert cache.get(weights, 2, "sga") is None  # and points refined with another rounding too
    assert cache.get(weights, 2, "ste") is not None
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_any_changed_input_misses(kodak_crops, tmp_path: Path) -> None:
    weights = tmp_path / "person_q1.pt"
    shutil.copy(weight_file(PROJECT_WEIGHTS, "person", 1, "fast"), weights)
    cache = _cache(tmp_path / "cache", kodak_crops)
    cache.put(weights, 0, RDPoint("person fast", "q1", 0.5, 30.0))

    (rgb, mask), *_ = kodak_crops
    other_pixels = [(rgb ^ 1, mask)]
    other_mask = [(rgb, ~mask)]
    for crops in (other_pixels, other_mask):
        assert _cache(tmp_path / "cache", crops).get(weights, 0) is None
    other_code = PointCache(tmp_path / "cache", cache.crops, code_digest((learned_point, evaluate_codec._row)))
    assert other_code.get(weights, 0) is None
    shutil.copy(weight_file(PROJECT_WEIGHTS, "person", 2, "fast"), weights)  # retrained weights at the same path
    assert cache.get(weights, 0) is None


def test_an_unreadable_entry_is_measured_again(kodak_crops, tmp_path: Path) -> None:
    weights = weight_file(PROJECT_WEIGHTS, "person", 1, "fast")
    cache = _cache(tmp_path, kodak_crops)
    cache.put(weights, 0, RDPoint("person fast", "q1", 0.5, 30.0))
    [entry] = tmp_path.glob("*.json")
    entry.write_text('{"key": ')  # a truncated file
    assert cache.get(weights, 0) is None


def test_a_second_evaluation_reuses_the_learned_points(
    kodak_crops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluate_codec, "held_out_crops", lambda codec_class: kodak_crops)
    first = evaluate_codec.run_codec_evaluation("person", [1], tmp_path / "a.md", ("fast",), cache_dir=tmp_path / "c")
    second = evaluate_codec.run_codec_evaluation("person", [1], tmp_path / "b.md", ("fast",), cache_dir=tmp_path / "c")
    assert "reused" not in first
    assert "2 of 2 learned-codec points were reused" in second  # person fast q1 and generic fast q1

    def learned_rows(text: str) -> list[str]:  # the rows' bpp/PSNR/MS-SSIM columns; the anchors' times vary
        return [line.split("|")[1:5] for line in text.splitlines() if line.startswith("| person fast q1")]

    assert learned_rows(first) and learned_rows(first) == learned_rows(second)


def test_workers_measure_the_same_points_and_share_them(
    kodak_crops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points measured in single-thread worker processes equal those measured in this process (unrefined coding is
    bit-exact across thread counts), are stored under the one-thread key, and a second run with workers reuses them."""
    monkeypatch.setattr(evaluate_codec, "held_out_crops", lambda codec_class: kodak_crops)
    here = evaluate_codec.run_codec_evaluation("person", [1], tmp_path / "a.md", ("fast",))
    run = functools.partial(
        evaluate_codec.run_codec_evaluation, "person", [1], tiers=("fast",), cache_dir=tmp_path / "c", workers=2
    )
    in_workers = run(tmp_path / "b.md")
    again = run(tmp_path / "c.md")

    def rows(text: str) -> list[list[str]]:  # bpp, PSNR and MS-SSIM of every point, learned and anchor
        return [line.split("|")[1:5] for line in text.splitlines() if line.startswith("| ") and "ms" not in line]

    assert rows(here) and rows(in_workers) == rows(here)
    assert "reused" not in in_workers
    assert "2 of 2 learned-codec points were reused" in again  # person fast q1 and generic fast q1
    stored = [json.loads(p.read_text())["key"]["torch_threads"] for p in (tmp_path / "c").glob("*.json")]
    assert stored == [1, 1]
