"""Typed, validated configuration loaded from ``config.yaml``; errors name the bad key."""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from surveil.errors import SurveilError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
FALLBACK_CLASS = "generic"  # codec class of labels no class lists, and of classes with no trained codec


class ConfigError(SurveilError):
    """The configuration file is missing, unreadable or has a bad key or value."""


@dataclass
class DetectorConfig:
    weights: str = "yolov8n-seg.pt"  # resolved on the weights search path, else by ultralytics' own name resolution
    confidence: float = 0.15  # below the usual 0.25 so borderline objects are still carried at full detail
    iou: float = 0.5
    imgsz: int = 640
    device: str = "auto"
    mask_dilate_px: int = 2  # grow masks so object edges are not left to the background (inference-grid pixels)
    min_area_px: int = 64  # regions with fewer mask pixels stay in the background


@dataclass
class FacesConfig:
    """Faces found inside person regions become regions of their own (class ``face`` in ``classes``)."""

    enabled: bool = True
    weights: str = "face_detection_yunet_2026may.onnx"  # OpenCV Zoo YuNet, on the weights search path
    score: float = 0.4  # YuNet confidence; lower finds more small faces (and a few backs of heads)
    min_size_px: int = 8  # faces smaller than this (frame pixels) stay with their person
    margin: float = 0.15  # the face box grown by this fraction of its size on each side (hair, chin)
    head_fraction: float = 0.5  # only the top part of a person's box is searched
    search_px: int = 256  # windows smaller than this are upscaled before the search


@dataclass
class CropConfig:
    max_side: int = 256  # larger objects are scaled down to fit
    multiple: int = 64  # canvas sides are padded to a multiple of this (the codec's stride)
    fill: int = 128  # value of canvas pixels outside the object's mask


@dataclass
class CodecConfig:
    quality: int = 1  # rate point 0 (fewest bits) to 4, see codecs/library.py quality_lambda
    tier: str = "fast"  # fast: mean-scale hyperprior; high: fast + attention, mixture, checkerboard context
    weights_dir: str = "weights"  # relative to the repository root
    device: str = "auto"
    # A region whose pixels the current background key already shows (mean absolute difference under its mask below
    # this, 0-255) is sent without payload: its signalling only. 0 sends every region's pixels.
    reuse_key_below: float = 10.0
    # Encoder-side refinement: steps of per-region optimisation of the latents for the region's own rate and object
    # pixels (codecs/refine.py; either tier). Fewer bits for the same picture, one synthesis forward and backward
    # pass per step: 0 keeps a CPU edge real-time, 50 is the evaluated setting for a GPU edge or offline coding.
    refine_steps: int = 0


@dataclass
class BackgroundConfig:
    codec: str = "libx264"
    crf: int = 20
    preset: str = "medium"
    refresh_s: float = 10.0  # a new key at least this often (late joiners, lighting drift)
    change_threshold: float = 24.0  # a pixel differing from the last key by more than this (0-255) has changed...
    change_fraction: float = 0.004  # ...and this fraction of changed pixels forces an early refresh
    learning_rate: float = 0.05  # per-frame weight of new background pixels in the running estimate
    still_frames: int = 30  # pixels unchanged this many frames join the background even under a detection
    still_level: float = 10.0  # largest frame-to-frame difference (0-255) counted as unchanged


@dataclass
class Config:
    camera: str = "cam1"
    input: str = "videos/vtest_pets_480x360.mp4"  # default input, resolved on the data search path
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    classes: dict[str, list[str]] = field(
        default_factory=lambda: {
            "person": ["person"],
            "vehicle": ["car", "truck", "bus", "motorcycle", "bicycle"],
            "bag": ["backpack", "handbag", "suitcase"],
            "face": ["face"],
        }
    )
    crops: CropConfig = field(default_factory=CropConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)

    def codec_class_of(self, label: str) -> str:
        """Codec class for a detector label; labels not listed map to ``FALLBACK_CLASS``."""
        for codec_class, labels in self.classes.items():
            if label in labels:
                return codec_class
        return FALLBACK_CLASS


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return _build(annotation, value, key)
    if origin is dict:
        _, value_type = typing.get_args(annotation)
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return {str(k): _check_type(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {type(value).__name__}")
        return [_check_type(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"config key '{key}': unsupported union type")  # no optional keys yet
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise ConfigError(f"config key '{key}' must be {annotation.__name__}, got {value!r}")
    return value


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}' (known: {', '.join(sorted(names))})")
        kwargs[key] = _check_type(value, hints[key], dotted)
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a configuration file; the repository's ``config.yaml`` when no path is given."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.exists():
        if path == DEFAULT_CONFIG:
            return Config()
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    config = _build(Config, values)
    if config.crops.multiple <= 0 or config.crops.multiple % 64:
        raise ConfigError("config key 'crops.multiple' must be a positive multiple of 64 (the codecs' total stride)")
    if config.crops.max_side < config.crops.multiple:
        raise ConfigError("config key 'crops.max_side' must be at least 'crops.multiple'")
    if not 0 < config.background.learning_rate <= 1:
        raise ConfigError("config key 'background.learning_rate' must be in (0, 1]")
    _check_values(config)
    return config


BACKGROUND_CODECS = ("libx264", "libx265")
CODEC_TIERS = ("fast", "high")  # the names of surveil.codecs.model.TIERS (not imported: that pulls in torch)
CODEC_QUALITIES = (0, 1, 2, 3, 4)  # the keys of every ladder in surveil.codecs.library, likewise
X26X_PRESETS = (
    *("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
    *("slow", "slower", "veryslow", "placebo"),
)
_BOUNDS: list[tuple[str, float, float | None]] = [  # dotted key, lowest, highest (None: unbounded)
    ("detector.confidence", 0, 1),
    ("detector.iou", 0, 1),
    ("detector.imgsz", 32, None),
    ("detector.mask_dilate_px", 0, None),
    ("detector.min_area_px", 0, None),
    ("faces.score", 0, 1),
    ("faces.min_size_px", 1, None),
    ("faces.margin", 0, 1),
    ("faces.head_fraction", 0, 1),
    ("faces.search_px", 16, None),
    ("crops.fill", 0, 255),
    ("codec.quality", CODEC_QUALITIES[0], CODEC_QUALITIES[-1]),
    ("codec.reuse_key_below", 0, 255),
    ("codec.refine_steps", 0, None),
    ("background.crf", 0, 51),
    ("background.refresh_s", 0, None),
    ("background.change_threshold", 0, 255),
    ("background.change_fraction", 0, 1),
    ("background.still_frames", 0, None),
    ("background.still_level", 0, 255),
]


def _check_values(config: Config) -> None:
    """Ranges and choices the types alone do not catch, so a bad value fails here and not mid-stream."""
    for key, low, high in _BOUNDS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value < low or (high is not None and value > high):
            allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"config key '{key}' must be {allowed}, got {value!r}")
    for key, value, choices in [
        ("background.codec", config.background.codec, BACKGROUND_CODECS),
        ("background.preset", config.background.preset, X26X_PRESETS),
        ("codec.tier", config.codec.tier, CODEC_TIERS),
    ]:
        if value not in choices:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}, got {value!r}")
    for key, name in [("camera", config.camera), *((f"classes.{c}", c) for c in config.classes)]:
        if not name or "/" in name:  # names travel in topics (<camera>/obj/<class>)
            raise ConfigError(f"config key '{key}': name {name!r} must be non-empty and contain no '/'")
