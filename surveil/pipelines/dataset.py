"""Class crop datasets, cut with the daemon's own region, face and centring code.

Train and test come from different sources or identities (never from different frames of one video), so no test
crop has a near-twin in training:
- the Oxford Town Centre clip and Kodak 21-24 are held out for evaluation;
- faces: LFW identities whose names start with Ab, Ad, Am, As or Au and ORL subjects s33-s40 are held out, with the
  Town Centre faces; the other LFW identities, ORL s1-s32 and the faces of the training videos train;
- vehicles: the car park clip is split in time at frame 190; the cars that cross it before train, the cars after test
  (no car is parked there: each car is seen in one stretch only). vtest's two parked vans, Kodak 1-20 and zidane.jpg
  train; bus.jpg tests. These are few distinct vehicles, so the class's sets are small: the counts are in each
  split's index.json.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import surveil.ingest as ingest
from surveil.config import Config
from surveil.errors import SurveilError
from surveil.paths import REPO_ROOT, find_data
from surveil.regions.centring import canvas_mask, centre_region
from surveil.regions.detector import RegionDetector

logger = logging.getLogger(__name__)

DATASETS_ROOT = REPO_ROOT / "datasets"


@dataclass(frozen=True)
class VideoRecipe:
    path: str  # on the data search path
    every: int  # keep one frame in this many
    start: int = 0  # first frame (a time split keeps the objects of one stretch apart from another's)
    stop: int | None = None  # frame after the last one (None: the end)


@dataclass(frozen=True)
class ImageSet:
    folder: str  # on the data search path
    patterns: tuple[str, ...] = ("*.png", "*.jpg")  # globs inside it (an identity split names its identities)

    @property
    def name(self) -> str:
        return f"{self.folder}/{'|'.join(self.patterns)}"


@dataclass(frozen=True)
class SplitRecipe:
    videos: tuple[VideoRecipe, ...] = ()
    images: tuple[ImageSet, ...] = ()  # photos run through the detector (crops of matching classes)
    whole_images: tuple[str, ...] = ()  # images kept whole (generic natural content), on the data path
    max_crops: int = 4000


@dataclass(frozen=True)
class DatasetRecipe:
    codec_class: str  # GENERIC_DATASET takes crops of every class
    splits: dict[str, SplitRecipe] = field(default_factory=dict)


TRAIN_VIDEOS = (
    VideoRecipe("videos/vtest_pets_480x360.mp4", every=4),
    VideoRecipe("videos/intel_one-by-one-person-detection.mp4", every=6),
    VideoRecipe("videos/intel_car-detection.mp4", every=4),
)
HELD_OUT_VIDEOS = (VideoRecipe("videos/towncentre_pedestrians_1080p.mp4", every=3),)
KODAK_TRAIN = tuple(f"kodim{i:02d}.png" for i in range(1, 21))
KODAK_TEST = tuple(f"kodim{i:02d}.png" for i in range(21, 25))
LFW = "faces/lfw_deepfunneled_A_subset"
LFW_TEST = ("Ab*/*.jpg", "Ad*/*.jpg", "Am*/*.jpg", "As*/*.jpg", "Au*/*.jpg")
LFW_TRAIN = tuple(f"A{c}*/*.jpg" for c in "acefghijklnopqrtvwxyz")
ORL = "faces/att_orl_faces"
ORL_TEST = tuple(f"s{i}/*.pgm" for i in range(33, 41))
ORL_TRAIN = tuple(f"s{i}/*.pgm" for i in range(1, 33))
CAR_PARK_SPLIT = 190  # intel_car-detection: a car crosses at frames 200-232 and another near 344, none at 190
GENERIC_DATASET = "generic"  # crops of every class plus whole natural images: what every class codec starts from

RECIPES = {
    "person": DatasetRecipe(
        "person",
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, images=(ImageSet("people/inria_person_96x160_train_pos"),)),
            "test": SplitRecipe(videos=HELD_OUT_VIDEOS, max_crops=300),
        },
    ),
    "face": DatasetRecipe(
        "face",
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, images=(ImageSet(LFW, LFW_TRAIN), ImageSet(ORL, ORL_TRAIN))),
            "test": SplitRecipe(
                videos=HELD_OUT_VIDEOS, images=(ImageSet(LFW, LFW_TEST), ImageSet(ORL, ORL_TEST)), max_crops=300
            ),
        },
    ),
    "vehicle": DatasetRecipe(
        "vehicle",
        {
            "train": SplitRecipe(
                videos=(
                    VideoRecipe("videos/vtest_pets_480x360.mp4", every=40),  # two parked vans: few frames suffice
                    VideoRecipe("videos/intel_car-detection.mp4", every=1, stop=CAR_PARK_SPLIT),
                ),
                images=(ImageSet("images/kodak", KODAK_TRAIN), ImageSet("people/scenes", ("zidane.jpg",))),
            ),
            "test": SplitRecipe(
                videos=(VideoRecipe("videos/intel_car-detection.mp4", every=1, start=CAR_PARK_SPLIT),),
                images=(ImageSet("people/scenes", ("bus.jpg",)),),
                max_crops=300,
            ),
        },
    ),
    "bag": DatasetRecipe(
        "bag",
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, images=(ImageSet("people/inria_person_96x160_train_pos"),)),
            "test": SplitRecipe(videos=(VideoRecipe("videos/towncentre_pedestrians_1080p.mp4", every=1),)),
        },
    ),
    GENERIC_DATASET: DatasetRecipe(
        GENERIC_DATASET,
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, whole_images=tuple(f"images/kodak/{k}" for k in KODAK_TRAIN)),
            "test": SplitRecipe(
                videos=HELD_OUT_VIDEOS, whole_images=tuple(f"images/kodak/{k}" for k in KODAK_TEST), max_crops=300
            ),
        },
    ),
}


def _require(name: str) -> Path:
    found = find_data(name)
    if found is None:
        raise SurveilError(f"dataset source not found on the data path: {name}")
    return found


def _write_png(path: Path, image: np.ndarray) -> None:
    """RGB or RGBA to PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    order = [2, 1, 0, 3] if image.shape[2] == 4 else [2, 1, 0]
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., order]))


LabelledCrop = tuple[str, np.ndarray]  # (codec class, centred canvas as RGBA: alpha is the object's mask)


class CropCutter:
    """Runs the detector once per source and remembers its labelled crops, so several classes share one pass."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.detector = RegionDetector(config)
        self._cache: dict[tuple[str, int], list[LabelledCrop]] = {}

    def _crops_of(self, image: np.ndarray) -> list[LabelledCrop]:
        crops = []
        for region in self.detector.detect_image(image):
            canvas, placement = centre_region(image, region.box, region.mask, self.config.crops)
            alpha = canvas_mask(region.mask, placement).astype(np.uint8) * 255
            crops.append((region.codec_class, np.dstack([canvas, alpha])))
        return crops

    def video(self, video: VideoRecipe) -> list[LabelledCrop]:
        key = (f"{video.path}[{video.start}:{video.stop}]", video.every)
        if key not in self._cache:
            crops: list[LabelledCrop] = []
            with ingest.open_source(str(_require(video.path))) as source:
                for frame in tqdm(source, desc=f"crops {Path(video.path).name}", unit="frame"):
                    if video.stop is not None and frame.seq >= video.stop:
                        break
                    if frame.seq >= video.start and (frame.seq - video.start) % video.every == 0:
                        crops += self._crops_of(frame.image)
            self._cache[key] = crops
        return self._cache[key]

    def image_set(self, images: ImageSet) -> list[LabelledCrop]:
        key = (images.name, 0)
        if key not in self._cache:
            root = _require(images.folder)
            files = sorted({f for pattern in images.patterns for f in root.glob(pattern)})
            if not files:
                raise SurveilError(f"no images match {images.name} on the data path")
            crops: list[LabelledCrop] = []
            for file in tqdm(files, desc=f"crops {images.folder}", unit="img"):
                picture = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if picture is None:
                    raise SurveilError(f"cannot read image {file}")
                crops += self._crops_of(picture[..., ::-1])
            self._cache[key] = crops
        return self._cache[key]


def _keep(crops: list[LabelledCrop], codec_class: str) -> list[np.ndarray]:
    return [canvas for label, canvas in crops if codec_class == GENERIC_DATASET or label == codec_class]


def build_split(recipe: DatasetRecipe, split: str, cutter: CropCutter, out_dir: Path) -> dict:
    """Cut one split's crops into ``out_dir`` (PNG) and return its index (counts per source)."""
    spec = recipe.splits[split]
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    counts: Counter[str] = Counter()
    rng = np.random.default_rng(0)
    crops: list[tuple[str, np.ndarray]] = []
    for video in spec.videos:
        name = video.path if (video.start, video.stop) == (0, None) else f"{video.path}[{video.start}:{video.stop}]"
        crops += [(name, c) for c in _keep(cutter.video(video), recipe.codec_class)]
    for images in spec.images:
        crops += [(images.name, c) for c in _keep(cutter.image_set(images), recipe.codec_class)]
    if len(crops) > spec.max_crops:
        keep = np.sort(rng.choice(len(crops), spec.max_crops, replace=False))
        crops = [crops[i] for i in keep]
    for index, (source_name, canvas) in enumerate(crops):
        _write_png(out_dir / f"crop_{index:05d}.png", canvas)
        counts[source_name] += 1
    for name in spec.whole_images:
        path = _require(name)
        _write_png(out_dir / f"whole_{path.stem}.png", cv2.imread(str(path))[..., ::-1])
        counts[name] += 1
    index = {"codec_class": recipe.codec_class, "split": split, "total": sum(counts.values()), "sources": dict(counts)}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    logger.info("%s/%s: %d images", recipe.codec_class, split, index["total"])
    return index


def build_datasets(
    codec_classes: list[str], config: Config, root: Path = DATASETS_ROOT, splits: tuple[str, ...] = ("train", "test")
) -> list[dict]:
    """Build the splits of each class; the detector runs once per source for all of them."""
    unknown = [c for c in codec_classes if c not in RECIPES]
    if unknown:
        raise SurveilError(f"no dataset recipe for class '{unknown[0]}' (known: {', '.join(RECIPES)})")
    if "face" in codec_classes and not config.faces.enabled:
        raise SurveilError("the face dataset needs the face finder: set faces.enabled in the configuration")
    cutter = CropCutter(config)  # the edge's own settings: with faces enabled, persons come without their faces
    indexes = []
    for codec_class in codec_classes:
        recipe = RECIPES[codec_class]
        wanted = [split for split in recipe.splits if split in splits]
        indexes += [build_split(recipe, split, cutter, root / codec_class / split) for split in wanted]
    return indexes


def load_split_with_masks(
    codec_class: str, split: str, root: Path = DATASETS_ROOT
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, bool object mask) of each image of a built split, sorted by name; whole images are all object."""
    folder = root / codec_class / split
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SurveilError(f"dataset {folder} is empty: run 'surveil build-dataset --class {codec_class}' first")
    items = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        rgb = np.ascontiguousarray(image[..., 2::-1])
        mask = image[..., 3] > 127 if image.shape[2] == 4 else np.ones(image.shape[:2], dtype=bool)
        items.append((rgb, mask))
    return items


def load_split(codec_class: str, split: str, root: Path = DATASETS_ROOT) -> list[np.ndarray]:
    """RGB images of a built split, sorted by name."""
    return [rgb for rgb, _ in load_split_with_masks(codec_class, split, root)]
