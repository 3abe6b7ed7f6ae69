"""The committed learned codecs: golden bitstreams, bit-exact decoding across processes and thread counts, identity."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    assert_within_a_rounding_step,
    decoded_md5_in_another_process,
    golden_of,
    md5,
    reference_decode,
    reference_encode,
)

from surveil.codecs.library import (
    QUALITY_LAMBDAS,
    CodecLibrary,
    decode_canvas,
    encode_canvases,
    quality_lambda,
    weight_file,
)
from surveil.codecs.model import CodecArch, file_sha256, load_codec, tier_of
from surveil.errors import CodecMismatchError
from surveil.paths import PROJECT_WEIGHTS

# Pinned outputs of the committed weights on the crop below. A change means the weights, CompressAI's entropy
# coder or the model's coding path changed: streams recorded before would no longer decode the same. Pinned: the
# edge's default rate point (q1) and q2 and q3 for every class with its own codec, the lowest person point, and
# q1 and q2 of every class's high tier, generic's included (vehicles and bags use it at that tier). The stream is
# the float64 reference encode's (conftest.reference_encode) and the decoded md5 the float64 reference
# decode's (conftest.reference_decode), both the same on any CPU. The edge's own float32 stream must decode, and the
# decoder's own pixels must lie within a rounding step of the reference decode (another CPU's float32 kernels can
# move a latent lying on a rounding boundary, or a rare pixel, by one).
GOLDEN = {
    "person_q1.pt": {
        "bitstream_md5": "5cdc4a9101daa0c087e8ba35e4e54641",
        "decoded_md5": "f6ebb09efa3555076f2285f861909f22",
    },
    "face_q1.pt": {
        "bitstream_md5": "d96863e9d666ec9c716e2cd2d02bb4dc",
        "decoded_md5": "b43bea50f16c938fef32718ca1ed21be",
    },
    "generic_q1.pt": {
        "bitstream_md5": "f8bc36c55c93437f368dbce3825d33d9",
        "decoded_md5": "d9425ecd90e0571ef8d3ffed81949a37",
    },
    "person_q0.pt": {
        "bitstream_md5": "62f0b4e645bf4aeee5675c30a65c3455",
        "decoded_md5": "c028a66a399d37cfa94fb0993a6348c6",
    },
    "person_q2.pt": {
        "bitstream_md5": "e1798ceea9e9367eabeaf8a95b44f684",
        "decoded_md5": "5bd9e2000ec71531cc642ce5aed02e38",
    },
    "face_q2.pt": {
        "bitstream_md5": "0176c0f108c073c662d8cdbaa7dc6a36",
        "decoded_md5": "b1a2df34b38ff80d23cd5e9312433ca8",
    },
    "generic_q2.pt": {
        "bitstream_md5": "7955647c9e173e9684fc2be4762ca552",
        "decoded_md5": "c47e375f73b318640182a81197d18fb0",
    },
    "person_q3.pt": {
        "bitstream_md5": "3cf1f0ce9fd68dc2c289bfa154273eb7",
        "decoded_md5": "3397b2dc931f79968b4ce6e4cd1ea6fe",
    },
    "face_q3.pt": {
        "bitstream_md5": "8b8d8c763b5d6a482b9ef2e39a2eb913",
        "decoded_md5": "7201f3ff22ffefda7841d51da0fefe9f",
    },
    "generic_q3.pt": {
        "bitstream_md5": "12590f671a64f5aa45e71201bf64c188",
        "decoded_md5": "7f1afd13aa45bcc46697ac8f90f98864",
    },
    "face_high_q1.pt": {
        "bitstream_md5": "f2a57bd6053d5fd3c445385725c1e596",
        "decoded_md5": "1f3395b68ca2d03967902aca1bd1f575",
    },
    "face_high_q2.pt": {
        "bitstream_md5": "959cd3d6ae7268d28ce82772dd7a4c56",
        "decoded_md5": "9e1690e7277d631c69daf77ecce05ce1",
    },
    "person_high_q1.pt": {
        "bitstream_md5": "fa57eb5c2d97ebe312edbbc69d9512b9",
        "decoded_md5": "80a0ce82900c16d6bd3471b557b359bd",
    },
    "person_high_q2.pt": {
        "bitstream_md5": "aea213fce81f11df411a2905c3d54d3c",
        "decoded_md5": "24d4cfa0c4f1d7258745b8a5cdc45fe5",
    },
    "generic_high_q1.pt": {
        "bitstream_md5": "e8cffce0fd4dac872bf00bbc5e689183",
        "decoded_md5": "95bf0014274e14e8b2c9ac45a18b1cf8",
    },
    "generic_high_q2.pt": {
        "bitstream_md5": "4e04913d0a3bae51520aa08065f613c3",
        "decoded_md5": "05e2f52da581146e2292d1113744d55c",
    },
}


@pytest.fixture(scope="module")
def crop(crop_and_mask: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return crop_and_mask[0]


def _weights(name: str) -> Path:
    path = PROJECT_WEIGHTS / name
    if not path.exists():
        pytest.fail(f"committed weights missing: {path}")
    return path


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_bitstream_and_decode(name: str, crop_and_mask: tuple[np.ndarray, np.ndarray]) -> None:
    crop, mask = crop_and_mask
    codec = load_codec(_weights(name))
    [(strings, shape)] = encode_canvases(codec, [crop])
    decoded = decode_canvas(codec, strings, shape)
    assert decoded.shape == crop.shape
    psnr = 10 * np.log10(255**2 / np.mean((decoded[mask].astype(float) - crop[mask]) ** 2))  # the pixels pasted
    assert psnr > 20, f"decoded crop is not a picture of the input (object PSNR {psnr:.1f} dB)"
    assert_within_a_rounding_step(decoded, reference_decode(codec, strings, shape))
    pinned_strings, pinned_shape = reference_encode(codec, crop)
    assert pinned_shape == shape
    assert golden_of(pinned_strings, reference_decode(codec, pinned_strings, shape)) == GOLDEN[name]


@pytest.mark.parametrize("name", ["generic_high_q0.pt", "face_high_q1.pt", "generic_q3.pt"])
def test_hyper_latent_tables_are_built_in_float64(name: str) -> None:
    """A loaded codec codes its hyper-latents with tables built from the float64 density. These files' float32
    tables differ from them on an Intel Xeon, and the stage-23 person high q2 file's (person_high_q4 from stage 40
    to 43) float32 tables differed between that Xeon and an AMD EPYC: float32 tables would let an edge and a station
    on different CPUs code with different tables."""
    bottleneck = load_codec(_weights(name)).model.entropy_bottleneck
    exact = copy.deepcopy(bottleneck).double()
    exact.update(force=True)
    for table in ("_offset", "_quantized_cdf", "_cdf_length"):
        assert torch.equal(getattr(bottleneck, table), getattr(exact, table)), table


def test_latent_tables_are_not_compressais_float32_build() -> None:
    """The fast tier's scale tables are built in float64 (model.rebuild_scale_tables): CompressAI's float32 build
    differs from it in hundreds of entries, any of which another CPU's float32 kernels could build otherwise."""
    conditional = load_codec(_weights("person_q2.pt")).model.gaussian_conditional
    float32 = copy.deepcopy(conditional)
    float32.update()
    assert torch.equal(conditional._offset, float32._offset)
    assert not torch.equal(conditional._quantized_cdf, float32._quantized_cdf)


def test_batched_encode_equals_single(crop: np.ndarray) -> None:
    """Regions of one size share a forward pass; each one's bitstream must not depend on its batch-mates."""
    codec = load_codec(_weights("person_q3.pt"))
    other = np.ascontiguousarray(crop[::-1])
    batched = encode_canvases(codec, [crop, other])
    assert batched[0] == encode_canvases(codec, [crop])[0]
    assert batched[1] == encode_canvases(codec, [other])[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_is_bit_exact_in_another_process(crop: np.ndarray, threads: int) -> None:
    weights = _weights("person_q3.pt")
    codec = load_codec(weights)
    [(strings, shape)] = encode_canvases(codec, [crop])
    here = md5(decode_canvas(codec, strings, shape).tobytes())
    assert decoded_md5_in_another_process(weights, strings, shape, threads) == here


def test_codec_identity_is_the_file_hash() -> None:
    path = _weights("person_q3.pt")
    codec = load_codec(path)
    assert codec.codec_id.weights_sha == file_sha256(path)[:16]
    assert (codec.codec_id.codec_class, codec.codec_id.quality) == ("person", 3)


def test_parameters_are_fp16_and_bounds_exact_on_disk() -> None:
    state = torch.load(_weights("person_q3.pt"), map_location="cpu", weights_only=True)["state_dict"]
    codec = load_codec(_weights("person_q3.pt"))
    parameters = {name for name, _ in codec.model.named_parameters()}
    assert parameters and all(state[name].dtype == torch.float16 for name in parameters)
    bound = state["gaussian_conditional.likelihood_lower_bound.bound"]
    assert bound.dtype == torch.float32 and float(bound) > 0  # fp16 would flush the 1e-9 floor to zero


def test_quality_lambda_reads_the_class_ladder_else_the_shared_one() -> None:
    assert quality_lambda("person", "high", 2) == QUALITY_LAMBDAS[0]  # person high: two halvings down
    assert quality_lambda("person", "fast", 2) == QUALITY_LAMBDAS[2]
    assert quality_lambda("face", "high", 4) == QUALITY_LAMBDAS[4]
    assert quality_lambda("person", "high", 5) is None


def test_every_committed_file_sits_on_its_ladder() -> None:
    """Each file's name is its (class, tier, quality), and it was trained at that rate point's lambda."""
    files = sorted(PROJECT_WEIGHTS.glob("*.pt"))
    assert len(files) >= 15
    for path in files:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        meta, tier = checkpoint["meta"], tier_of(CodecArch(**checkpoint["arch"]).name)
        assert weight_file(PROJECT_WEIGHTS, meta["codec_class"], meta["quality"], tier) == path
        assert meta["lambda"] == quality_lambda(meta["codec_class"], tier, meta["quality"]), path.name


def test_library_falls_back_to_generic(tmp_path: Path) -> None:
    library = CodecLibrary(PROJECT_WEIGHTS, quality=3)
    assert library.codec_for("person").codec_id.codec_class == "person"
    assert library.codec_for("face").codec_id.codec_class == "face"
    assert library.codec_for("vehicle").codec_id.codec_class == "generic"  # too few vehicles to train one yet
    assert weight_file(PROJECT_WEIGHTS, "vehicle", 3).name == "vehicle_q3.pt"


def test_unknown_codec_identity_is_a_clear_error() -> None:
    library = CodecLibrary(PROJECT_WEIGHTS, quality=3)
    known = library.codec_for("person").codec_id
    with pytest.raises(CodecMismatchError, match="no decoder for codec"):
        library.by_id(replace(known, weights_sha="0123456789abcdef"))
    with pytest.raises(CodecMismatchError):
        library.by_id(replace(known, quality=9))


@pytest.mark.parametrize("name", ["person_q3.pt", "face_high_q2.pt"])
def test_real_rate_matches_the_likelihoods(name: str, crop_and_mask: tuple[np.ndarray, np.ndarray]) -> None:
    """After the tables are rebuilt, the entropy coder writes what the trained likelihoods promise, within a few
    percent, on a crop like those the codec was trained for (the high tier's per-latent mixture tables included)."""
    from surveil.pipelines.evaluate_codec import rate_check

    estimated, actual = rate_check(_weights(name), [crop_and_mask])
    assert estimated > 0.1
    assert abs(actual / estimated - 1) < 0.05


def test_high_tier_files_leave_out_what_the_model_rebuilds() -> None:
    """The checkerboard mask and the unused scale tables are not stored (a third of the file); loading rebuilds
    the mask, and a high-tier codec's own tier is what the library serves at that tier."""
    state = torch.load(_weights("face_high_q2.pt"), map_location="cpu", weights_only=True)["state_dict"]
    assert "context_prediction.mask" not in state
    codec = load_codec(_weights("face_high_q2.pt"))
    mask = codec.model.context_prediction.mask
    assert mask[..., 2, 2].sum() == 0 and mask[..., 2, 1].all()  # no centre tap; the 4-neighbours (anchors) seen
    assert CodecLibrary(PROJECT_WEIGHTS, quality=2, tier="high").codec_for("face").codec_id == codec.codec_id
