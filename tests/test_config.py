"""Configuration loading: the repository's config.yaml, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from surveil.config import DEFAULT_CONFIG, Config, ConfigError, load_config


def _write(tmp_path: Path, values: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _config_error(tmp_path: Path, values: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, values))
    message = str(info.value)
    assert "\n" not in message  # the CLI prints it as one line
    return message


def test_default_config_file_loads() -> None:
    assert DEFAULT_CONFIG.name == "config.yaml" and DEFAULT_CONFIG.exists()
    config = load_config()
    assert load_config(DEFAULT_CONFIG) == config
    assert config.camera == "cam1"
    assert config.input == "videos/vtest_pets_480x360.mp4"
    assert config.detector.weights == "yolov8n-seg.pt"
    assert config.detector.device == "auto"
    assert 0 < config.detector.confidence < 0.25  # borderline objects are still carried at full detail
    assert config.crops.max_side == 256
    assert config.crops.multiple == 64  # the codec's stride
    assert config.crops.fill == 128
    assert config.codec.quality == 1
    assert config.codec.weights_dir == "weights"
    assert config.background.codec == "libx264"
    assert config.background.learning_rate == 0.05
    assert isinstance(config.background.refresh_s, float)  # "10.0" in YAML, and ints are widened to float
    assert config.classes["person"] == ["person"]
    assert {"car", "truck", "bus"} <= set(config.classes["vehicle"])
    assert {"backpack", "handbag", "suitcase"} <= set(config.classes["bag"])


def test_default_file_documents_the_defaults() -> None:
    """config.yaml lists every key with the value the code uses when the key is left out."""
    assert load_config() == Config()
    values = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config = Config()
    for section, entries in values.items():
        if isinstance(entries, dict) and section != "classes":
            for key, value in entries.items():
                assert getattr(getattr(config, section), key) == value, f"{section}.{key}"


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, {"camera": "gate", "crops": {"max_side": 128}, "background": {"crf": 5}}))
    assert config.camera == "gate"
    assert config.crops.max_side == 128
    assert config.crops.multiple == Config().crops.multiple
    assert config.background.crf == 5
    assert config.detector == Config().detector
    assert load_config(_write(tmp_path, None)) == Config()  # an empty file


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, {"background": {"refresh_s": 5}}))
    assert config.background.refresh_s == 5.0
    assert isinstance(config.background.refresh_s, float)


@pytest.mark.parametrize(
    ("values", "dotted"),
    [
        ({"camerra": "cam2"}, "camerra"),
        ({"detector": {"confidance": 0.3}}, "detector.confidance"),
        ({"crops": {"max_side": 256, "fil": 0}}, "crops.fil"),
        ({"background": {"crf": 30, "rate": 1}}, "background.rate"),
    ],
)
def test_unknown_key_is_named(tmp_path: Path, values: dict, dotted: str) -> None:
    message = _config_error(tmp_path, values)
    assert f"unknown config key '{dotted}'" in message
    assert "known:" in message


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    message = _config_error(tmp_path, {"crops": {"max_sid": 3}})
    assert "fill, max_side, multiple" in message


@pytest.mark.parametrize(
    ("values", "dotted"),
    [
        ({"detector": {"imgsz": "640"}}, "detector.imgsz"),
        ({"detector": {"confidence": "high"}}, "detector.confidence"),
        ({"crops": {"fill": True}}, "crops.fill"),  # YAML's true is not an int
        ({"crops": {"multiple": 64.0}}, "crops.multiple"),  # nor is a float
        ({"camera": 7}, "camera"),
        ({"detector": ["yolov8n-seg.pt"]}, "detector"),
        ({"detector": None}, "detector"),
        ({"classes": ["person"]}, "classes"),
        ({"classes": {"person": "person"}}, "classes.person"),
        ({"classes": {"person": ["person", 3]}}, "classes.person[1]"),
    ],
)
def test_wrong_type_is_named(tmp_path: Path, values: dict, dotted: str) -> None:
    message = _config_error(tmp_path, values)
    assert f"config key '{dotted}' must be" in message, message


@pytest.mark.parametrize(
    ("values", "dotted"),
    [
        ({"crops": {"max_side": 32, "multiple": 64}}, "crops.max_side"),
        ({"crops": {"multiple": 0}}, "crops.multiple"),
        ({"crops": {"multiple": 32, "max_side": 256}}, "crops.multiple"),  # the hyperprior needs 64
        ({"background": {"learning_rate": 0}}, "background.learning_rate"),
        ({"background": {"learning_rate": 1.5}}, "background.learning_rate"),
        ({"detector": {"confidence": 1.5}}, "detector.confidence"),
        ({"detector": {"iou": -0.1}}, "detector.iou"),
        ({"detector": {"imgsz": 0}}, "detector.imgsz"),
        ({"detector": {"mask_dilate_px": -1}}, "detector.mask_dilate_px"),
        ({"crops": {"fill": 300}}, "crops.fill"),  # would wrap silently in a uint8 canvas
        ({"faces": {"score": 1.2}}, "faces.score"),
        ({"faces": {"min_size_px": 0}}, "faces.min_size_px"),
        ({"faces": {"search_px": 8}}, "faces.search_px"),
        ({"codec": {"quality": -1}}, "codec.quality"),
        ({"codec": {"quality": 5}}, "codec.quality"),  # no such rate point: would fail later on a missing file
        ({"codec": {"refine_steps": -1}}, "codec.refine_steps"),
        ({"background": {"crf": 60}}, "background.crf"),
        ({"background": {"crf": -5}}, "background.crf"),  # x264 refuses it mid-stream
        ({"background": {"refresh_s": -1}}, "background.refresh_s"),
        ({"background": {"codec": "libvpx"}}, "background.codec"),
        ({"background": {"preset": "fastest"}}, "background.preset"),
        ({"camera": "site/cam1"}, "camera"),  # names travel in topics
        ({"camera": ""}, "camera"),
        ({"classes": {"people/adults": ["person"]}}, "classes.people/adults"),
    ],
)
def test_out_of_range_is_named(tmp_path: Path, values: dict, dotted: str) -> None:
    message = _config_error(tmp_path, values)
    assert f"config key '{dotted}'" in message, message


def test_boundary_values_are_accepted(tmp_path: Path) -> None:
    values = {
        "detector": {"confidence": 1, "iou": 0, "mask_dilate_px": 0},
        "crops": {"max_side": 64, "multiple": 64, "fill": 255},
        "background": {"crf": 51, "learning_rate": 1, "codec": "libx265", "preset": "ultrafast"},
    }
    config = load_config(_write(tmp_path, values))
    assert (config.crops.fill, config.background.crf, config.background.codec) == (255, 51, "libx265")


@pytest.mark.parametrize(
    ("label", "codec_class"),
    [
        ("person", "person"),
        ("car", "vehicle"),
        ("truck", "vehicle"),
        ("handbag", "bag"),
        ("suitcase", "bag"),
        ("dog", "generic"),
        ("", "generic"),
    ],
)
def test_codec_class_of(label: str, codec_class: str) -> None:
    assert load_config().codec_class_of(label) == codec_class


def test_codec_class_of_follows_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, {"classes": {"animal": ["dog", "cat"]}}))
    assert config.codec_class_of("dog") == "animal"
    assert config.codec_class_of("person") == "generic"  # the file replaces the whole table


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "surveil.yaml"
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path)  # a folder
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: {confidence: 0.3\n")
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(_write(tmp_path, ["camera", "cam1"]))


def test_constants_repeated_to_keep_torch_out_of_config_agree(tmp_path: Path) -> None:
    """config.py names the tiers, rate points and canvas stride itself, so loading a config never imports torch."""
    from surveil.codecs.library import CLASS_QUALITY_LAMBDAS, QUALITY_LAMBDAS
    from surveil.codecs.model import LATENT_STRIDE, TIERS
    from surveil.config import CODEC_QUALITIES, CODEC_TIERS

    assert tuple(TIERS) == CODEC_TIERS
    assert tuple(sorted(QUALITY_LAMBDAS)) == CODEC_QUALITIES
    for (_, tier), ladder in CLASS_QUALITY_LAMBDAS.items():
        assert tier in CODEC_TIERS and tuple(sorted(ladder)) == CODEC_QUALITIES
    assert Config().crops.multiple % LATENT_STRIDE == 0
    assert "multiple of 64" in _config_error(tmp_path, {"crops": {"multiple": LATENT_STRIDE // 2}})
    load_config(_write(tmp_path, {"crops": {"multiple": LATENT_STRIDE * 2, "max_side": LATENT_STRIDE * 4}}))
