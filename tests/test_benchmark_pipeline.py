"""scripts/benchmark_pipeline.py's report: the file the README's end-to-end tables are copied from."""

from __future__ import annotations

import importlib.util
import sys

from surveil.codecs.library import FALLBACK_CLASS, build_library
from surveil.codecs.model import file_sha256
from surveil.config import load_config
from surveil.paths import REPO_ROOT

_spec = importlib.util.spec_from_file_location("benchmark_pipeline", REPO_ROOT / "scripts" / "benchmark_pipeline.py")
benchmark_pipeline = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = benchmark_pipeline  # its dataclasses look their module up there
_spec.loader.exec_module(benchmark_pipeline)


def _row(video: str, reference: int, true_pos: int) -> dict:
    fidelity = benchmark_pipeline.Fidelity(true_pos=true_pos, reference=reference, test=reference)
    return {
        "video": video,
        "frames": "10 -> 10",
        "size": "64x48 -> 64x48",
        "same": True,
        "total_kbps": 50.0,
        "streams": {"bg": 10.0, "person": 40.0},
        "x264_kbps": 100.0,
        "x264_fidelity": benchmark_pipeline.Fidelity(true_pos=reference, reference=reference, test=reference),
        "fidelity": fidelity,
        "encode_fps": 2.0,
        "decode_fps": 3.0,
        "problems": 0,
    }


def test_run_facts_name_the_rate_point_and_each_class_file_by_hash() -> None:
    config = load_config(None)
    config.codec.quality = 1
    facts = benchmark_pipeline.run_facts(config, None)
    assert facts.startswith(f"q1 fast, {config.codec.refine_steps} refinement steps, every frame; ")
    library = build_library(config)
    for name in {*config.classes, FALLBACK_CLASS}:
        path = library.path_for(name)
        assert f"{name} {path.name} {file_sha256(path)[:16]}" in facts
    assert "person person_q1.pt" in facts and "bag generic_q1.pt" in facts  # bag falls back to the generic codec
    config.codec.refine_steps = 5
    assert ", 5 refinement steps, the first 20 frames; " in benchmark_pipeline.run_facts(config, 20)


def test_report_is_facts_table_and_summary_naming_videos_below_target() -> None:
    rows = [_row("busy", reference=10, true_pos=10), _row("crowd", reference=10, true_pos=5)]
    text = benchmark_pipeline.report("FACTS", rows, videos=3, seconds=12.3)
    facts, table, summary = text.split("\n\n")
    assert facts == "FACTS"
    assert table == benchmark_pipeline.table(rows)
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| busy", "| crowd"]
    assert summary.startswith("2 of 3 videos so far in 12 s; ")
    assert summary.endswith(": crowd")  # F1 0.5 < 0.9; "busy" (F1 1.0) is not named
