"""Shared fixtures: the shared test video and a set of deterministic, untrained codec weights with a config using them.

The error-handling tests code regions with random-init models (``torch.manual_seed(0)``) so they do not depend on
the committed weights: the pictures they give back are poor, but the bitstreams, the wire format and the error
handling are the real ones. The tests of the trained codecs live in ``test_codecs.py`` and ``test_station_run.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from surveil.config import DEFAULT_CONFIG
from surveil.paths import find_data

VTEST = "videos/vtest_pets_480x360.mp4"  # h264, 480x360, 10 fps, 795 frames
UNTRAINED_CLASSES = ("generic", "person", "vehicle", "bag")
UNTRAINED_QUALITY = 2


@pytest.fixture(scope="session")
def vtest() -> Path:
    path = find_data(VTEST)
    if path is None:
        pytest.skip(f"shared data not found: {VTEST} (expected under ../shared/data or SURVEIL_DATA_PATH)")
    return path


@pytest.fixture(scope="session")
def untrained_codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder holding random-init codecs (seed 0) for every class at quality 2."""
    import torch

    from surveil.codecs.library import weight_file
    from surveil.codecs.model import CodecArch, RegionCodecModel, save_codec

    folder = tmp_path_factory.mktemp("untrained_weights")
    for codec_class in UNTRAINED_CLASSES:
        torch.manual_seed(0)
        model = RegionCodecModel(CodecArch())
        model.update(force=True)
        meta = {"codec_class": codec_class, "quality": UNTRAINED_QUALITY, "lambda": 0.013, "steps": 0}
        save_codec(model, weight_file(folder, codec_class, UNTRAINED_QUALITY), meta)
    return folder


@pytest.fixture(scope="session")
def untrained_codec_config(untrained_codec_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a copy of config.yaml whose ``codec.weights_dir`` is the untrained weights folder."""
    values = yaml.safe_load(DEFAULT_CONFIG.read_text())
    values["codec"]["weights_dir"] = str(untrained_codec_dir)
    values["codec"]["quality"] = UNTRAINED_QUALITY
    path = tmp_path_factory.mktemp("untrained_config") / "config.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path
