"""Faces inside persons: the real YuNet detector on real photos (LFW, ORL, a Town Centre frame)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from surveil.config import FacesConfig, load_config
from surveil.errors import SurveilError
from surveil.paths import find_data, find_in, weights_path
from surveil.regions.faces import FACE_LABEL, FaceFinder, carve_faces
from surveil.types import Region

LFW_PHOTO = "faces/lfw_deepfunneled_A_subset/Ariel_Sharon/Ariel_Sharon_0001.jpg"  # 250x250, one face near the centre
ORL_PHOTO = "faces/att_orl_faces/s1/1.pgm"  # 92x112 grey, the face fills the picture


def _rgb(name: str) -> np.ndarray:
    path = find_data(name)
    if path is None:
        pytest.skip(f"shared data not found: {name}")
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    if find_in(weights_path(), FacesConfig().weights) is None:
        pytest.skip("YuNet weights not found on the weights path")
    return FaceFinder(FacesConfig(enabled=True))


def _person(image: np.ndarray, region_id: int = 0) -> Region:
    """A person region covering the whole picture, its mask everything but a 3-pixel border."""
    height, width = image.shape[:2]
    mask = np.zeros((height, width), dtype=bool)
    mask[3:-3, 3:-3] = True
    return Region(region_id, "person", "person", 0.9, (0, 0, width, height), mask)


def test_finds_the_face_of_an_lfw_photo(finder: FaceFinder) -> None:
    faces = finder.find(_rgb(LFW_PHOTO))
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert x0 < 125 < x1 and y0 < 125 < y1  # deep-funnelled LFW photos are centred on the face
    assert 60 < x1 - x0 < 200 and faces[0].score > 0.6


def test_finds_nothing_in_a_face_free_picture(finder: FaceFinder) -> None:
    assert finder.find(_rgb("images/kodak/kodim03.png")) == []  # hats on a table


def test_a_window_limits_the_search(finder: FaceFinder) -> None:
    image = _rgb(LFW_PHOTO)
    assert finder.find(image, (0, 200, 250, 250)) == []  # the chin-down strip holds no face
    assert finder.find(image, (0, 0, 250, 3)) == []  # too thin to search


def test_carved_face_takes_the_persons_pixels_and_no_others(finder: FaceFinder) -> None:
    image = _rgb(LFW_PHOTO)
    person = _person(image)
    before = person.mask.copy()
    regions = carve_faces(image, [person], finder, "face", min_area_px=64)
    assert [r.label for r in regions] == ["person", FACE_LABEL]
    face = regions[1]
    assert face.parent_id == person.region_id and face.region_id == 1 and face.codec_class == "face"
    assert face.mask.shape == (face.box[3] - face.box[1], face.box[2] - face.box[0])
    face_in_frame = np.zeros_like(before)
    face_in_frame[face.box[1] : face.box[3], face.box[0] : face.box[2]] = face.mask
    assert not (face_in_frame & person.mask).any()  # each pixel in one region
    np.testing.assert_array_equal(face_in_frame | person.mask, before)  # nothing gained, nothing lost
    assert face_in_frame.sum() > 5000


def test_only_persons_are_searched(finder: FaceFinder) -> None:
    image = _rgb(LFW_PHOTO)
    bag = _person(image)
    bag.label, bag.codec_class = "handbag", "bag"
    assert carve_faces(image, [bag], finder, "face", min_area_px=64) == [bag]


def test_a_person_that_is_all_face_is_replaced_by_it(finder: FaceFinder) -> None:
    image = _rgb(ORL_PHOTO)
    height, width = image.shape[:2]
    mask = np.zeros((height, width), dtype=bool)
    mask[40:70, 30:60] = True  # a person whose pixels are all inside the face (eyes to mouth)
    person = Region(4, "person", "person", 0.9, (0, 0, width, height), mask)
    regions = carve_faces(image, [person], finder, "face", min_area_px=64)
    assert [r.label for r in regions] == [FACE_LABEL]
    assert regions[0].parent_id is None and regions[0].region_id == 5


def test_missing_weights_is_a_clear_error() -> None:
    with pytest.raises(SurveilError, match=r"face detector weights not found: nowhere\.onnx"):
        FaceFinder(FacesConfig(enabled=True, weights="nowhere.onnx"))


def test_detector_with_faces_enabled_on_a_town_centre_frame(tmp_path: Path) -> None:
    """YOLO persons, then YuNet in their heads: faces become children of persons, and no pixel is shared."""
    import av

    from surveil.regions.detector import RegionDetector

    video = find_data("videos/towncentre_pedestrians_1080p.mp4")
    if video is None:
        pytest.skip("shared data not found: Town Centre clip")
    with av.open(str(video)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    config_file = tmp_path / "config.yaml"
    config_file.write_text("faces:\n  enabled: true\n")
    regions = RegionDetector(load_config(config_file)).detect_image(image)
    faces = [r for r in regions if r.label == FACE_LABEL]
    ids = {r.region_id: r for r in regions}
    assert len(faces) >= 2
    assert all(f.codec_class == "face" and ids[f.parent_id].label == "person" for f in faces)
    claimed = np.zeros(image.shape[:2], dtype=np.int32)
    for region in regions:
        x0, y0, x1, y1 = region.box
        claimed[y0:y1, x0:x1] += region.mask
    assert claimed.max() == 1
