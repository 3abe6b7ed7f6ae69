"""The station's recomposer on real packets: background keys (x264) and regions coded by a real (untrained) codec."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import UNTRAINED_QUALITY

from surveil.codecs.library import CodecLibrary, encode_canvases
from surveil.config import CropConfig
from surveil.errors import CodecMismatchError, StreamError
from surveil.regions.centring import centre_region
from surveil.scene.coding import encode_picture
from surveil.station.recompose import Recomposer
from surveil.types import BackgroundKey, CodecId, EncodedRegion, FrameEnd, FrameRegions

WIDTH, HEIGHT = 128, 96


@pytest.fixture(scope="module")
def library(untrained_codec_dir: Path) -> CodecLibrary:
    return CodecLibrary(untrained_codec_dir, UNTRAINED_QUALITY)


def _key(key_id: int, shade: int, camera: str = "cam1") -> BackgroundKey:
    picture = np.full((HEIGHT, WIDTH, 3), shade, np.uint8)
    return BackgroundKey(camera, key_id, 0.0, key_id, WIDTH, HEIGHT, "libx264", encode_picture(picture, crf=10))


def _regions(library: CodecLibrary, seq: int, count: int = 1) -> FrameRegions:
    rng = np.random.default_rng(seq)
    codec = library.codec_for("person")
    frame = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    regions = []
    for index in range(count):
        box = (10 + 40 * index, 20, 40 + 40 * index, 70)
        mask = np.ones((50, 30), bool)
        canvas, placement = centre_region(frame, box, mask, CropConfig())
        [(strings, shape)] = encode_canvases(codec, [canvas])
        regions.append(
            EncodedRegion(index, "person", "person", 0.9, box, mask, placement, codec.codec_id, shape, strings)
        )
    return FrameRegions("cam1", seq, seq / 10, "person", regions)


def _end(seq: int, key_id: int, persons: int) -> FrameEnd:
    return FrameEnd("cam1", seq, seq / 10, WIDTH, HEIGHT, key_id, {"person": persons} if persons else {})


def test_regions_are_pasted_on_their_key(library: CodecLibrary) -> None:
    recomposer = Recomposer(library)
    recomposer.feed(_key(0, 60))
    recomposer.feed(_regions(library, seq=0))
    frame = recomposer.feed(_end(0, key_id=0, persons=1))
    assert frame is not None and frame.image.shape == (HEIGHT, WIDTH, 3)
    assert abs(int(frame.image[5, 5, 0]) - 60) <= 2  # background outside the region
    assert not np.array_equal(frame.image[20:70, 10:40], np.full((50, 30, 3), frame.image[5, 5]))  # region pasted
    assert recomposer.incomplete_frames == 0


def test_newest_key_survives_an_edge_restart(library: CodecLibrary) -> None:
    """A restarted edge numbers keys from 0 again: its new key must not be evicted as the 'oldest'."""
    recomposer = Recomposer(library)
    for key_id in (7, 8):
        recomposer.feed(_key(key_id, 200))
    recomposer.feed(_end(500, key_id=8, persons=0))
    recomposer.feed(_key(0, 30))  # the restarted edge's first key
    frame = recomposer.feed(_end(0, key_id=0, persons=0))
    assert frame is not None, "the restarted edge's key was evicted"
    assert abs(int(frame.image[0, 0, 0]) - 30) <= 2
    assert recomposer.restarts == 1


def test_frame_missing_announced_regions_is_counted(library: CodecLibrary) -> None:
    recomposer = Recomposer(library)
    recomposer.feed(_key(0, 60))
    recomposer.feed(_regions(library, seq=0, count=1))
    assert recomposer.feed(_end(0, key_id=0, persons=2)) is not None  # one of two person regions lost
    assert recomposer.feed(_end(1, key_id=0, persons=1)) is not None  # the whole person packet lost
    assert recomposer.incomplete_frames == 2


def test_regions_of_unsubscribed_classes_are_not_missed(library: CodecLibrary) -> None:
    recomposer = Recomposer(library, wanted=lambda camera, codec_class: codec_class != "person")
    recomposer.feed(_key(0, 60))
    assert recomposer.feed(_end(0, key_id=0, persons=3)) is not None
    assert recomposer.incomplete_frames == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: replace(r, box=(100, 20, 130, 70)), "outside the 128x96 frame"),
        (lambda r: replace(r, latent_shape=(3, 3)), "does not match latent shape"),
        (lambda r: replace(r, strings=r.strings[:1]), "1 codec strings"),
    ],
)
def test_region_that_does_not_fit_is_refused(library: CodecLibrary, change, message: str) -> None:
    packet = _regions(library, seq=0)
    packet.regions[0] = change(packet.regions[0])
    recomposer = Recomposer(library)
    recomposer.feed(_key(0, 60))
    recomposer.feed(packet)
    with pytest.raises(StreamError, match=message):
        recomposer.feed(_end(0, key_id=0, persons=1))


def test_codec_class_from_the_wire_never_names_a_path(library: CodecLibrary) -> None:
    with pytest.raises(CodecMismatchError, match="not a plain name"):
        library.by_id(CodecId("msh-n64m96", "../../etc/x", UNTRAINED_QUALITY, "0" * 16))
