"""Shared fixtures: the shared test video, a real person crop, and deterministic, untrained codec weights with a config.

The error-handling tests code regions with random-init models (``torch.manual_seed(0)``) so they do not depend on
the committed weights: the pictures they give back are poor, but the bitstreams, the wire format and the error
handling are the real ones. The tests of the trained codecs live in ``test_codecs.py`` and ``test_station_run.py``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from surveil.config import DEFAULT_CONFIG, CropConfig
from surveil.paths import find_data
from surveil.regions.centring import canvas_mask, centre_region

VTEST = "videos/vtest_pets_480x360.mp4"  # h264, 480x360, 10 fps, 795 frames
UNTRAINED_CLASSES = ("generic", "person", "vehicle", "bag")
UNTRAINED_QUALITY = 2


@pytest.fixture(scope="session")
def vtest() -> Path:
    path = find_data(VTEST)
    if path is None:
        pytest.skip(f"shared data not found: {VTEST} (expected under ../shared/data or SURVEIL_DATA_PATH)")
    return path


def person_window() -> tuple[np.ndarray, np.ndarray] | None:
    """A real person window (INRIA) masked by its central ellipse and centred as the edge does, and its canvas mask.

    None without the shared data. A plain function so that ``scripts/print_goldens.py`` codes the same crop.
    """
    path = find_data("people/inria_person_96x160_train_pos")
    if path is None:
        return None
    image = cv2.imread(str(sorted(path.glob("*.png"))[0]))[..., ::-1]
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 3, height // 2 - 8), 0, 0, 360, 1, -1)
    canvas, placement = centre_region(image, (0, 0, width, height), mask.astype(bool), CropConfig())
    return canvas, canvas_mask(mask.astype(bool), placement)


@pytest.fixture(scope="session")
def crop_and_mask() -> tuple[np.ndarray, np.ndarray]:
    window = person_window()
    if window is None:
        pytest.skip("shared data not found: people/inria_person_96x160_train_pos")
    return window


@pytest.fixture(scope="session")
def kodak_crops() -> list[tuple[np.ndarray, np.ndarray]]:
    """One 128x64 crop of Kodak 23 with a rectangular object mask: a small picture every codec and anchor can code."""
    path = find_data("images/kodak/kodim23.png")
    if path is None:
        pytest.skip("shared data not found: images/kodak")
    image = cv2.imread(str(path))[..., ::-1]
    crop = np.ascontiguousarray(image[64:192, 256:320])
    mask = np.zeros(crop.shape[:2], bool)
    mask[16:112, 8:56] = True
    return [(crop, mask)]


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


_DECODE_SCRIPT = """
import hashlib, json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from surveil.codecs.library import decode_canvas
from surveil.codecs.model import load_codec
job = json.loads(sys.stdin.read())
codec = load_codec(job["weights"])
strings = [bytes.fromhex(s) for s in job["strings"]]
print(hashlib.md5(decode_canvas(codec, strings, tuple(job["shape"])).tobytes()).hexdigest())
"""


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def golden_of(strings: list[bytes], reference: np.ndarray) -> dict[str, str]:
    """What a golden entry pins: md5s of the bitstream and of the float64 reference decode (``reference_decode``)."""
    return {"bitstream_md5": md5(b"".join(strings)), "decoded_md5": md5(reference.tobytes())}


def reference_encode(
    codec, canvas: np.ndarray, mask: np.ndarray | None = None, refine_steps: int = 0, rounding: str = "sga"
) -> tuple[list[bytes], tuple[int, int]]:
    """The canvas coded by the edge's own path (``encode_canvases``, refinement included) with the model in float64:
    the stream the golden md5s pin.

    The edge's float32 analysis gives the same stream on every run of one machine, but another CPU's kernels can
    move a latent that lies within some 1e-6 of a rounding boundary across it: a stream as valid as the first, with
    other bytes. Float64 moves latents by some 1e-13, so this stream is the same on any CPU; the entropy coding is
    the codec's own.
    """
    import copy
    import dataclasses

    import torch

    from surveil.codecs.library import encode_canvases

    class Float64Analysis(torch.nn.Module):
        def __init__(self, analysis: torch.nn.Module) -> None:
            super().__init__()
            self.analysis = analysis

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.analysis(x.double())

    model = copy.deepcopy(codec.model).double()  # the codec itself stays float32
    model.g_a = Float64Analysis(model.g_a)
    masks = None if mask is None else [mask]
    [(strings, shape)] = encode_canvases(
        dataclasses.replace(codec, model=model), [canvas], masks, refine_steps, rounding
    )
    return strings, shape


def reference_decode(codec, strings: list[bytes], shape: tuple[int, int]) -> np.ndarray:
    """The canvas decoded with the synthesis in float64: what the golden md5s pin.

    The decoder's float32 synthesis gives the same pixels on every run of one machine, but CPUs with other
    convolution kernels (AVX2, AVX-512, another generation) can put a rare pixel one rounding step apart
    (``surveil/codecs/model.py``). Float64 errors are some 1e-13 of a step, so this decode is the same on any CPU.
    """
    import copy
    import dataclasses

    import torch

    from surveil.codecs.library import decode_canvas

    class Float64Synthesis(torch.nn.Module):
        def __init__(self, synthesis: torch.nn.Module) -> None:
            super().__init__()
            self.synthesis = synthesis.double()

        def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
            return self.synthesis(y_hat.double()).float()

    model = copy.deepcopy(codec.model)  # the codec itself stays float32
    model.g_s = Float64Synthesis(model.g_s)
    return decode_canvas(dataclasses.replace(codec, model=model), strings, shape)


def assert_within_a_rounding_step(decoded: np.ndarray, reference: np.ndarray) -> None:
    """The decoder's pixels are the float64 reference's, but for a rare pixel one step away."""
    assert decoded.shape == reference.shape
    difference = np.abs(decoded.astype(np.int16) - reference)
    assert difference.max() <= 1, f"decoded pixels up to {difference.max()} steps from the reference"
    assert np.count_nonzero(difference) <= difference.size // 1000, f"{np.count_nonzero(difference)} pixels differ"


def decoded_md5_in_another_process(weights: Path, strings: list[bytes], shape: tuple[int, int], threads: int) -> str:
    """md5 of the canvas a fresh Python process decodes from these strings with ``threads`` torch threads."""
    job = json.dumps({"weights": str(weights), "strings": [s.hex() for s in strings], "shape": list(shape)})
    result = subprocess.run(
        [sys.executable, "-c", _DECODE_SCRIPT, str(threads)], input=job, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()
