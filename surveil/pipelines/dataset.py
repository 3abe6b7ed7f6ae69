"""Class crop datasets, cut with the daemon's own region and centring code.

Train and test come from different sources (never from different frames of one video), so no test crop has a
near-twin in training: the Oxford Town Centre clip and Kodak 21-24 are held out for evaluation.
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

from surveil.config import Config
from surveil.errors import SurveilError
import surveil.ingest as ingest
from surveil.paths import REPO_ROOT, find_data
from surveil.regions.centring import centre_region
from surveil.regions.detector import RegionDetector

logger = logging.getLogger(__name__)

DATASETS_ROOT = REPO_ROOT / "datasets"


@dataclass(frozen=True)
class VideoSource:
    path: str  # on the data search path
    every: int  # keep one frame in this many


@dataclass(frozen=True)
class SplitRecipe:
    videos: tuple[VideoSource, ...] = ()
    image_dirs: tuple[str, ...] = ()  # images run through the detector (crops of matching classes)
    whole_images: tuple[str, ...] = ()  # images kept whole (generic natural content), globs on the data path
    max_crops: int = 4000


@dataclass(frozen=True)
class DatasetRecipe:
    codec_class: str  # "generic" takes crops of every class
    splits: dict[str, SplitRecipe] = field(default_factory=dict)


TRAIN_VIDEOS = (
    VideoSource("videos/vtest_pets_480x360.mp4", every=4),
    VideoSource("videos/intel_one-by-one-person-detection.mp4", every=6),
    VideoSource("videos/intel_car-detection.mp4", every=4),
)
HELD_OUT_VIDEOS = (VideoSource("videos/towncentre_pedestrians_1080p.mp4", every=3),)

RECIPES = {
    "person": DatasetRecipe(
        "person",
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, image_dirs=("people/inria_person_96x160_train_pos",)),
            "test": SplitRecipe(videos=HELD_OUT_VIDEOS, max_crops=300),
        },
    ),
    "generic": DatasetRecipe(
        "generic",
        {
            "train": SplitRecipe(videos=TRAIN_VIDEOS, whole_images=tuple(f"images/kodak/kodim{i:02d}.png" for i in range(1, 21))),
            "test": SplitRecipe(
                videos=HELD_OUT_VIDEOS,
                whole_images=tuple(f"images/kodak/kodim{i:02d}.png" for i in range(21, 25)),
                max_crops=300,
            ),
        },
    ),
}


def _require(name: str) -> Path:
    found = find_data(name)
    if found is None:
        raise SurveilError(f"dataset source not found on the data path: {name}")
    return found


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _crops_of(detector: RegionDetector, config: Config, image: np.ndarray, codec_class: str) -> list[np.ndarray]:
    canvases = []
    for region in detector.detect_image(image):
        if codec_class != "generic" and region.codec_class != codec_class:
            continue
        canvas, _ = centre_region(image, region.box, region.mask, config.crops)
        canvases.append(canvas)
    return canvases


def build_split(recipe: DatasetRecipe, split: str, config: Config, detector: RegionDetector, out_dir: Path) -> dict:
    """Cut one split's crops into ``out_dir`` (PNG) and return its index (counts per source)."""
    spec = recipe.splits[split]
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    counts: Counter[str] = Counter()
    rng = np.random.default_rng(0)
    crops: list[tuple[str, np.ndarray]] = []
    for video in spec.videos:
        with ingest.open_source(str(_require(video.path))) as source:
            for frame in tqdm(source, desc=f"{recipe.codec_class}/{split} {Path(video.path).name}", unit="frame"):
                if frame.seq % video.every:
                    continue
                crops += [(video.path, c) for c in _crops_of(detector, config, frame.image, recipe.codec_class)]
    for folder in spec.image_dirs:
        files = sorted(_require(folder).glob("*.png")) + sorted(_require(folder).glob("*.jpg"))
        for file in tqdm(files, desc=f"{recipe.codec_class}/{split} {folder}", unit="img"):
            image = cv2.imread(str(file))[..., ::-1]
            crops += [(folder, c) for c in _crops_of(detector, config, image, recipe.codec_class)]
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


def build_dataset(codec_class: str, config: Config, root: Path = DATASETS_ROOT) -> list[dict]:
    if codec_class not in RECIPES:
        raise SurveilError(f"no dataset recipe for class '{codec_class}' (known: {', '.join(RECIPES)})")
    recipe = RECIPES[codec_class]
    detector = RegionDetector(config)
    return [build_split(recipe, split, config, detector, root / codec_class / split) for split in recipe.splits]


def load_split(codec_class: str, split: str, root: Path = DATASETS_ROOT) -> list[np.ndarray]:
    """RGB images of a built split, sorted by name."""
    folder = root / codec_class / split
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SurveilError(f"dataset {folder} is empty: run 'surveil build-dataset --class {codec_class}' first")
    return [cv2.imread(str(f))[..., ::-1].copy() for f in files]
