"""Encoder-side latent refinement, both tiers: fewer coded costs on a real crop, a stream any station decodes, a
pinned result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_within_a_rounding_step, golden_of, reference_decode, reference_encode

from surveil.codecs.library import decode_canvas, encode_canvases, to_tensor
from surveil.codecs.model import load_codec
from surveil.codecs.refine import object_weights, refine_latents
from surveil.errors import SurveilError
from surveil.paths import PROJECT_WEIGHTS

STEPS = 20
# Each file on the conftest crop, refined for STEPS steps (the default rounding, SGA) by the float64 reference encode
# (conftest.reference_encode: the same on any CPU); a change means the refinement's arithmetic changed
GOLDEN_REFINED = {
    "person_q2.pt": {
        "bitstream_md5": "3d9613baa6b9c980037984a3874f5305",
        "decoded_md5": "1505814e296f4f747205b68763eaad4d",
    },
    "person_high_q2.pt": {
        "bitstream_md5": "553f49644e2d720e18798c2580eb9107",
        "decoded_md5": "062d64e585aac3d6ed178feb55ce5c0f",
    },
}
# The same with straight-through rounding: the streams of the refinement before SGA, which reports measured with it
# (`surveil eval-codec --refine-rounding ste`) rely on
GOLDEN_REFINED_STE = {
    "person_q2.pt": {
        "bitstream_md5": "a6e62ffe2d0da5d321bf33a1da7996d9",
        "decoded_md5": "9e0a4aac302fdb165f4f6447f2063b7d",
    },
    "person_high_q2.pt": {
        "bitstream_md5": "2ad58da4784f9cdb4100d48e1359285b",
        "decoded_md5": "2e05161323006d5c30eacb366c6ff8b0",
    },
}


@pytest.fixture(scope="module", params=list(GOLDEN_REFINED))
def weights_name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def person_q2(weights_name: str):
    """person q2 of each tier."""
    return load_codec(PROJECT_WEIGHTS / weights_name)


def _coded_cost(codec, canvas: np.ndarray, mask: np.ndarray, strings: list[bytes], shape) -> tuple[float, float]:
    """(cost at the codec's lambda, bits per canvas pixel) of a real bitstream: its bytes and its decoded pixels."""
    decoded = decode_canvas(codec, strings, shape)
    mse = float(np.mean((decoded[mask].astype(np.float64) - canvas[mask]) ** 2)) / 255**2
    bpp = 8 * sum(len(s) for s in strings) / mask.size
    return codec.meta["lambda"] * 255**2 * mse + bpp, bpp  # the lambda refinement optimises: the codec's own


def test_refined_stream_costs_less_and_decodes_as_usual(person_q2, crop_and_mask) -> None:
    canvas, mask = crop_and_mask
    [plain] = encode_canvases(person_q2, [canvas])
    [refined] = encode_canvases(person_q2, [canvas], [mask], STEPS)
    plain_cost, plain_bpp = _coded_cost(person_q2, canvas, mask, *plain)
    refined_cost, refined_bpp = _coded_cost(person_q2, canvas, mask, *refined)
    assert refined[0] != plain[0]
    assert refined_cost < 0.97 * plain_cost, (plain_cost, refined_cost)
    assert refined_bpp < plain_bpp  # the fill outside the object no longer costs bits


@pytest.mark.parametrize("rounding, goldens", [("sga", GOLDEN_REFINED), ("ste", GOLDEN_REFINED_STE)])
def test_refined_golden(weights_name: str, person_q2, crop_and_mask, rounding: str, goldens: dict) -> None:
    canvas, mask = crop_and_mask
    [(strings, shape)] = encode_canvases(person_q2, [canvas], [mask], STEPS, rounding)
    assert_within_a_rounding_step(decode_canvas(person_q2, strings, shape), reference_decode(person_q2, strings, shape))
    pinned_strings, pinned_shape = reference_encode(person_q2, canvas, mask, STEPS, rounding)
    assert pinned_shape == shape
    assert golden_of(pinned_strings, reference_decode(person_q2, pinned_strings, shape)) == goldens[weights_name]


def test_annealing_beats_straight_through(person_q2, crop_and_mask) -> None:
    """The reason SGA is the default: at the same steps it finds latents of a lower coded cost."""
    canvas, mask = crop_and_mask
    [annealed] = encode_canvases(person_q2, [canvas], [mask], STEPS, "sga")
    [straight] = encode_canvases(person_q2, [canvas], [mask], STEPS, "ste")
    assert _coded_cost(person_q2, canvas, mask, *annealed)[0] < _coded_cost(person_q2, canvas, mask, *straight)[0]


@pytest.mark.parametrize("rounding", ["sga", "ste"])
def test_batch_mates_do_not_change_a_region(person_q2, crop_and_mask, rounding: str) -> None:
    """Each region keeps its own best iterate and draws its own annealing noise: refining it beside another gives the
    stream it gets alone."""
    canvas, mask = crop_and_mask
    other, other_mask = np.ascontiguousarray(canvas[::-1]), np.ascontiguousarray(mask[::-1])
    batched = encode_canvases(person_q2, [canvas, other], [mask, other_mask], 12, rounding)
    assert batched[0] == encode_canvases(person_q2, [canvas], [mask], 12, rounding)[0]
    assert batched[1] == encode_canvases(person_q2, [other], [other_mask], 12, rounding)[0]


def test_refinement_leaves_the_model_alone(person_q2, crop_and_mask) -> None:
    canvas, mask = crop_and_mask
    before = {k: v.clone() for k, v in person_q2.model.state_dict().items()}
    x = to_tensor([canvas], "cpu")
    refine_latents(person_q2.model, x, object_weights([mask]), person_q2.meta["lambda"], 3)
    after = person_q2.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in person_q2.model.parameters())


def test_object_weights_grow_the_mask_by_the_margin() -> None:
    mask = np.zeros((16, 16), bool)
    mask[8, 8] = True
    weights = object_weights([mask], margin=2)
    assert weights.shape == (1, 1, 16, 16)
    assert weights[0, 0, 8, 6:11].tolist() == [1.0] * 5 and weights[0, 0, 8, 5] == 0 and weights.sum() == 17


def test_refinement_needs_masks_and_a_codec_model(person_q2, crop_and_mask) -> None:
    canvas, mask = crop_and_mask
    with pytest.raises(ValueError, match="masks"):
        encode_canvases(person_q2, [canvas], None, 5)
    with pytest.raises(SurveilError, match="not implemented for Conv2d"):
        refine_latents(torch.nn.Conv2d(3, 3, 1), to_tensor([canvas], "cpu"), object_weights([mask]), 0.01, 2)
    with pytest.raises(SurveilError, match="unknown latent rounding 'noise': one of sga, ste"):
        refine_latents(person_q2.model, to_tensor([canvas], "cpu"), object_weights([mask]), 0.01, 2, "noise")
