"""The high-efficiency tier (attention + Gaussian mixture + checkerboard context): its start from a fast codec, exact
two-pass coding, decoding bit-exact across processes and thread counts, weights and library lookup by tier.

These tests run on seeded, untrained weights: what they check (the entropy coding path and its determinism) does
not depend on training. Golden md5s of trained high-tier weights live in test_codecs.py once such weights exist.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import decoded_md5_in_another_process, md5

from surveil.codecs.library import CodecLibrary, decode_canvas, encode_canvases, to_images, to_tensor, weight_file
from surveil.codecs.mixture import MixtureCodecModel, _integer_cdfs, anchor_mask
from surveil.codecs.model import TIERS, LoadedCodec, build_model, load_codec, save_codec, tier_of
from surveil.errors import CodecMismatchError, SurveilError
from surveil.paths import find_data


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """A 128x64 window of a real photo (Kodak 15)."""
    path = find_data("images/kodak/kodim15.png")
    if path is None:
        pytest.skip("shared data not found: images/kodak/kodim15.png")
    return np.ascontiguousarray(cv2.imread(str(path))[150:278, 300:364, ::-1])


def _save_untrained(folder: Path, codec_class: str = "generic", quality: int = 2, gain: float = 1.0) -> Path:
    torch.manual_seed(0)
    model = build_model(TIERS["high"])
    with torch.no_grad():
        model.g_a[-2].weight.mul_(gain)  # larger latents: wider symbol tables
    model.update(force=True)
    path = weight_file(folder, codec_class, quality, "high")
    save_codec(model, path, {"codec_class": codec_class, "quality": quality, "lambda": 0.0035, "steps": 0})
    return path


@pytest.fixture(scope="module")
def codec(tmp_path_factory: pytest.TempPathFactory) -> LoadedCodec:
    return load_codec(_save_untrained(tmp_path_factory.mktemp("high"), gain=40.0))


def test_built_from_a_fast_codec_it_starts_as_that_codec(crop: np.ndarray) -> None:
    """Attention gated shut and the mixture's corrections at zero: the same values quantised around the same means,
    the same pixels decoded from them, and each latent's likelihood the fast codec's Gaussian (three equal
    components)."""
    torch.manual_seed(0)
    fast = build_model(TIERS["fast"]).eval()
    high = MixtureCodecModel.from_fast(fast).eval()
    with torch.no_grad():
        high.entropy_parameters[-1].weight.zero_()  # from_fast leaves them near zero, so the components differ
        x = to_tensor([crop], "cpu")
        expected, got = fast(x), high(x)
    assert torch.equal(got["x_hat"], expected["x_hat"])
    for name in ("y", "z"):
        torch.testing.assert_close(got["likelihoods"][name], expected["likelihoods"][name], rtol=1e-5, atol=1e-7)


def test_anchors_are_half_the_latents_in_a_checkerboard() -> None:
    anchors = anchor_mask(3, 4)[0, 0]
    assert anchors.tolist() == [[True, False, True, False], [False, True, False, True], [True, False, True, False]]


def test_integer_tables_are_valid_for_the_coder() -> None:
    pmf = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [1e-30, 1e-30, 1e-30]], dtype=torch.float64)
    for cdf in _integer_cdfs(pmf):
        counts = np.diff(cdf)
        assert cdf[0] == 0 and cdf[-1] == 1 << 16 and len(cdf) == 3 + 2  # 3 symbols, the escape, the end
        assert counts.min() >= 1  # every symbol codable


def test_round_trip_decodes_exactly_the_latents_rounded_around_the_hyperprior_means(
    codec: LoadedCodec, crop: np.ndarray
) -> None:
    [(strings, shape)] = encode_canvases(codec, [crop])
    assert strings[0][0] > 1  # the latents reach past +-1: tables wider than the smallest
    decoded = decode_canvas(codec, strings, shape)
    model = codec.model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the decoder's synthesis runs
    try:
        with torch.no_grad():
            y = model.g_a(to_tensor([crop], "cpu")).double()
            means = model._exact_hyper(model.entropy_bottleneck.decompress([strings[1]], shape)).chunk(2, 1)[1]
            y_hat = torch.round(y - means).clamp(-255, 255) + means
            expected = to_images(model.g_s(y_hat.float().contiguous()))[0]
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(decoded, expected)


def test_batched_encode_equals_single(codec: LoadedCodec, crop: np.ndarray) -> None:
    other = np.ascontiguousarray(crop[::-1])
    batched = encode_canvases(codec, [crop, other])
    assert batched == [encode_canvases(codec, [crop])[0], encode_canvases(codec, [other])[0]]


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_is_bit_exact_in_another_process(tmp_path: Path, crop: np.ndarray, threads: int) -> None:
    weights = _save_untrained(tmp_path, gain=40.0)
    codec = load_codec(weights)
    [(strings, shape)] = encode_canvases(codec, [crop])
    here = md5(decode_canvas(codec, strings, shape).tobytes())
    assert decoded_md5_in_another_process(weights, strings, shape, threads) == here


def test_a_damaged_string_never_decodes_silently_to_the_original(codec: LoadedCodec, crop: np.ndarray) -> None:
    [(strings, shape)] = encode_canvases(codec, [crop])
    original = decode_canvas(codec, strings, shape)
    damaged = bytearray(strings[0])
    damaged[len(damaged) // 2] ^= 0xFF
    assert not np.array_equal(decode_canvas(codec, [bytes(damaged), strings[1]], shape), original)
    with pytest.raises(SurveilError, match="empty latent string"):
        decode_canvas(codec, [b"", strings[1]], shape)


def test_weights_keep_their_tier(codec: LoadedCodec) -> None:
    assert codec.codec_id.arch == "cgm-n64m96"
    assert tier_of(codec.codec_id.arch) == "high" and tier_of("msh-n64m96") == "fast"
    with pytest.raises(SurveilError, match="unknown codec architecture"):
        tier_of("vvc-n1m1")


def test_library_looks_up_by_tier_and_falls_back_to_generic(tmp_path: Path) -> None:
    _save_untrained(tmp_path, "generic", 2)
    _save_untrained(tmp_path, "face", 2)
    assert weight_file(tmp_path, "face", 2, "high").name == "face_high_q2.pt"
    assert weight_file(tmp_path, "face", 2).name == "face_q2.pt"
    with pytest.raises(SurveilError, match="unknown codec tier"):
        weight_file(tmp_path, "face", 2, "ultra")
    library = CodecLibrary(tmp_path, quality=2, tier="high")
    assert library.codec_for("face").codec_id.codec_class == "face"
    assert library.codec_for("vehicle").codec_id.codec_class == "generic"
    known = library.codec_for("face").codec_id
    assert library.by_id(known) is library.codec_for("face")
    with pytest.raises(CodecMismatchError, match="unknown codec architecture"):
        library.by_id(replace(known, arch="vvc-n1m1"))
    with pytest.raises(SurveilError, match="codec weights missing"):
        CodecLibrary(tmp_path, quality=2, tier="fast")  # no fast-tier generic here


def test_a_class_without_a_high_codec_falls_back_to_its_fast_one(tmp_path: Path) -> None:
    """Class high, then class fast, then generic high, then generic fast: a class's own fast codec beats the generic
    codec of either tier, and a high-tier edge needs no generic high-tier weights."""
    _save_untrained(tmp_path, "face", 2)
    torch.manual_seed(0)
    for codec_class in ("generic", "person"):
        fast = build_model(TIERS["fast"])
        fast.update(force=True)
        meta = {"codec_class": codec_class, "quality": 2, "lambda": 0.0035, "steps": 0}
        save_codec(fast, weight_file(tmp_path, codec_class, 2), meta)
    library = CodecLibrary(tmp_path, quality=2, tier="high")
    assert library.path_for("face").name == "face_high_q2.pt"
    assert library.path_for("person").name == "person_q2.pt"
    assert library.path_for("vehicle").name == "generic_q2.pt"
    assert tier_of(library.codec_for("person").codec_id.arch) == "fast"
    _save_untrained(tmp_path, "generic", 2)
    assert CodecLibrary(tmp_path, quality=2, tier="high").path_for("vehicle").name == "generic_high_q2.pt"
    with pytest.raises(SurveilError, match=r"generic_high_q3\.pt or .*generic_q3\.pt"):
        CodecLibrary(tmp_path, quality=3, tier="high")


def test_real_rate_matches_the_likelihoods(tmp_path: Path, crop: np.ndarray) -> None:
    """The integer tables never cost more than the mixture's own likelihoods promise (the rANS coder's few bytes of
    flush aside): a table built from the wrong parameters would. They may cost less: a table covers only the
    symbols -bound..bound of its region and renormalises, where this untrained model spreads mass far wider."""
    from surveil.pipelines.evaluate_codec import rate_check

    mask = np.ones(crop.shape[:2], bool)
    estimated, actual = rate_check(_save_untrained(tmp_path, gain=40.0), [(crop, mask)])
    assert estimated > 0.5  # enough latent information for the comparison to mean something
    assert 0.3 * estimated < actual <= estimated * 1.02 + 64 / mask.size
