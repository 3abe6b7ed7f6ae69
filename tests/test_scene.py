"""Scene: the background estimate on real vtest frames, and the background key codecs (x264, x265) on a real frame."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from surveil.config import BackgroundConfig
from surveil.errors import StreamError
from surveil.ingest import open_source
from surveil.scene.background import BackgroundModel
from surveil.scene.coding import DECODER_FOR, _drop_h264_sei, decode_picture, encode_picture

FRAMES = 40
SIDE = 40  # the synthetic object's side in pixels
MAGENTA = np.array([255, 0, 255], np.uint8)  # a colour vtest does not show


@pytest.fixture(scope="module")
def frames(vtest: Path) -> list[np.ndarray]:
    with open_source(str(vtest)) as source:
        images = [frame.image for frame in islice(source, FRAMES)]
    assert len(images) == FRAMES
    return images


def _square_at(index: int) -> tuple[int, int]:
    """Top-left corner of the moving square in frame ``index``: a diagonal sweep, 8 px a frame."""
    return 20 + 8 * index, 10 + 6 * index


def _square_mask(shape: tuple[int, ...], corner: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    x, y = corner
    mask[y : y + SIDE, x : x + SIDE] = True
    return mask


def _run(model: BackgroundModel, frames: list[np.ndarray], paste: bool, mark: bool) -> np.ndarray:
    """Feed the frames, with the moving square pasted in and/or marked as foreground; returns the picture."""
    for index, image in enumerate(frames):
        square = _square_mask(image.shape, _square_at(index))
        if paste:
            image = image.copy()
            image[square] = MAGENTA
        model.update(image, square if mark else np.zeros_like(square))
    return model.picture()


def _magenta(picture: np.ndarray) -> np.ndarray:
    """Pixels that look like the square (strongly magenta)."""
    p = picture.astype(np.int16)
    return (p[..., 0] > 180) & (p[..., 2] > 180) & (p[..., 1] < 90)


def _path(shape: tuple[int, ...]) -> np.ndarray:
    """Every pixel the square covered at some point."""
    return np.logical_or.reduce([_square_mask(shape, _square_at(i)) for i in range(FRAMES)])


def test_frames_and_square_fit(frames: list[np.ndarray]) -> None:
    x, y = _square_at(FRAMES - 1)
    assert frames[0].shape == (360, 480, 3)
    assert x + SIDE <= 480 and y + SIDE <= 360
    assert not _magenta(frames[0]).any()  # the test's colour really is foreign to the scene


def test_masked_moving_object_stays_out_of_the_background(frames: list[np.ndarray]) -> None:
    clean = _run(BackgroundModel(0.05), frames, paste=False, mark=True)
    with_square = _run(BackgroundModel(0.05), frames, paste=True, mark=True)
    assert not _magenta(with_square).any()
    # Masked pixels are never learnt from: whatever was pasted under the mask, the estimate is the same.
    np.testing.assert_array_equal(with_square, clean)


def test_masked_moving_object_with_configured_settings(frames: list[np.ndarray]) -> None:
    """With the configured still-pixel rule too, a moving object never stays still long enough to be learnt."""
    settings = BackgroundConfig()
    model = BackgroundModel(settings.learning_rate, settings.still_frames, settings.still_level)
    with_square = _run(model, frames, paste=True, mark=True)
    clean = _run(BackgroundModel(settings.learning_rate), frames, paste=False, mark=True)
    path = _path(frames[0].shape)
    assert not _magenta(with_square).any()
    diff = np.abs(with_square.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
    assert diff[path].mean() < 2.0
    assert diff[~path].mean() < 2.0


def test_unmasked_object_would_be_learnt(frames: list[np.ndarray]) -> None:
    """The control: the same square, not marked as foreground, leaves a ghost trail (so the check above can fail)."""
    ghost = _run(BackgroundModel(0.05), frames, paste=True, mark=False)
    path = _path(frames[0].shape)
    clean = _run(BackgroundModel(0.05), frames, paste=False, mark=False)
    diff = np.abs(ghost.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
    assert diff[path].mean() > 8  # against < 2 for the masked square
    assert diff[~path].mean() < 0.5
    # The last position, pasted in the latest frame, dominates that frame's first sighting there.
    x, y = _square_at(FRAMES - 1)
    assert ghost[y + SIDE // 2, x + SIDE - 4, 1] < clean[y + SIDE // 2, x + SIDE - 4, 1]


def test_never_observed_pixels_are_filled(frames: list[np.ndarray]) -> None:
    """An object that stands still and masked from the first frame leaves a hole that is filled from around it."""
    corner = (200, 150)
    hole = _square_mask(frames[0].shape, corner)
    model = BackgroundModel(0.05)
    for image in frames:
        image = image.copy()
        image[hole] = MAGENTA
        model.update(image, hole)
    assert model.observed_fraction == pytest.approx(1 - hole.mean())
    picture = model.picture()
    reference = _run(BackgroundModel(0.05), frames, paste=False, mark=False)
    assert picture.shape == reference.shape and picture.dtype == np.uint8
    assert not _magenta(picture).any()
    assert (picture[hole].max(axis=1) > 0).all()  # no black holes
    np.testing.assert_array_equal(picture[~hole], reference[~hole])  # filling touches nothing else
    # Filled from its surroundings: close to the real background there (floor markings make it less than exact).
    error = np.abs(picture[hole].astype(np.int16) - reference[hole].astype(np.int16)).mean()
    assert error < 25, error
    # The fill is not a constant patch: it follows the surroundings' colours.
    assert picture[hole].astype(np.float32).std(axis=0).max() > 1.0


def test_first_sighting_is_taken_outright(frames: list[np.ndarray]) -> None:
    hole = _square_mask(frames[0].shape, (300, 200))
    model = BackgroundModel(0.05)
    for image in frames[:10]:
        model.update(image, hole)
    model.update(frames[10], np.zeros_like(hole))
    assert model.observed_fraction == 1.0
    np.testing.assert_array_equal(model.picture()[hole], frames[10][hole])


def test_picture_before_any_frame() -> None:
    with pytest.raises(RuntimeError, match="no frame"):
        BackgroundModel(0.05).picture()


# --- background key coding ---


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _nal_types(data: bytes, codec: str) -> list[int]:
    """NAL unit types of an Annex B stream (H.264: low 5 bits of the first byte; HEVC: bits 1-6)."""
    types = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        header = data[start + 3]
        types.append(header & 0x1F if codec == "libx264" else (header >> 1) & 0x3F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_key_round_trip(frames: list[np.ndarray], codec: str) -> None:
    image = frames[0]
    payload = encode_picture(image, codec, crf=20, preset="medium")
    assert payload.startswith(b"\x00\x00\x00\x01")
    decoded = decode_picture(payload, 480, 360, codec)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert _psnr(decoded, image) > 30.0
    # Deterministic: the same picture gives the same bytes, and the same bytes the same pixels.
    assert encode_picture(image, codec, crf=20, preset="medium") == payload
    np.testing.assert_array_equal(decode_picture(payload, 480, 360, codec), decoded)
    # Quality follows crf.
    coarse = encode_picture(image, codec, crf=35, preset="medium")
    assert len(coarse) < len(payload)
    assert _psnr(decode_picture(coarse, 480, 360, codec), image) < _psnr(decoded, image)


def test_x264_key_has_no_sei(frames: list[np.ndarray]) -> None:
    payload = encode_picture(frames[0], "libx264", crf=20, preset="medium")
    types = _nal_types(payload, "libx264")
    assert 6 not in types, types
    assert {7, 8, 5} <= set(types), types  # SPS, PPS, IDR slice: decodable on its own
    assert b"x264" not in payload  # the options string lives in the dropped SEI


def test_x265_key_has_no_info_sei(frames: list[np.ndarray]) -> None:
    payload = encode_picture(frames[0], "libx265", crf=20, preset="medium")
    types = _nal_types(payload, "libx265")
    assert not {39, 40} & set(types), types  # prefix / suffix SEI
    assert {32, 33, 34} <= set(types), types  # VPS, SPS, PPS
    assert {19, 20} & set(types), types  # an IDR picture
    assert b"x265" not in payload


def test_drop_h264_sei_keeps_every_other_unit() -> None:
    stream = (
        b"\x00\x00\x00\x01\x67sps"
        + b"\x00\x00\x01\x06sei payload\x80"
        + b"\x00\x00\x00\x01\x68pps"
        + b"\x00\x00\x01\x06second sei\x80"
        + b"\x00\x00\x01\x65idr slice\x00\x00"
    )
    expected = b"\x00\x00\x00\x01\x67sps" + b"\x00\x00\x00\x01\x68pps" + b"\x00\x00\x00\x01\x65idr slice\x00\x00"
    assert _drop_h264_sei(stream) == expected


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_odd_sized_picture(frames: list[np.ndarray], codec: str) -> None:
    image = np.ascontiguousarray(frames[0][:359, :479])
    decoded = decode_picture(encode_picture(image, codec, crf=20), 479, 359, codec)
    assert decoded.shape == (359, 479, 3)
    assert _psnr(decoded, image) > 30.0


def test_bad_keys_are_stream_errors() -> None:
    with pytest.raises(StreamError):
        decode_picture(b"\x00\x00\x00\x01" + bytes(range(256)) * 4, 480, 360, "libx264")
    with pytest.raises(StreamError):
        decode_picture(b"", 480, 360, "libx265")
    with pytest.raises(ValueError, match="unsupported background codec"):
        encode_picture(np.zeros((16, 16, 3), np.uint8), "libvpx")
    assert set(DECODER_FOR) == {"libx264", "libx265"}
