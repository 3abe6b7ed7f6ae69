"""Judge candidate weight files quickly: each file's mean point on its class's held-out crops and its bits against
x265 intra at the same PSNR (the per-point figure of `surveil eval-codec`, without the other anchors).

The x265 curve of a class is measured once and cached under runs/judge/ (it depends only on the crops), so judging
a new candidate costs only the learned codec's own pass (about 20 s for 300 crops on one core).

Usage: .venv/bin/python scripts/judge_candidates.py [--refine-steps N] [--refine-rounding sga|ste] [--every K]
CLASS WEIGHTS.pt [WEIGHTS.pt ...]
(``--refine-steps``: each crop's latents refined first, as the edge's ``codec.refine_steps`` does, with
codecs/refine.py's ``--refine-rounding``; ``--every K``: every K-th held-out crop only, for quick comparisons.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from surveil.codecs.refine import ROUNDINGS
from surveil.paths import REPO_ROOT
from surveil.pipelines.evaluate_codec import X265_CRFS, RDPoint, held_out_crops, interpolate, learned_point, x265_point

CACHE = REPO_ROOT / "runs" / "judge"


def x265_curve(codec_class: str, crops: list) -> list[RDPoint]:
    """x265's curve on these crops, from the cache when the crops are the same ones."""
    digest = hashlib.sha256(b"".join(rgb.tobytes() + mask.tobytes() for rgb, mask in crops)).hexdigest()[:16]
    path = CACHE / f"x265_{codec_class}_{digest}.json"
    if path.exists():
        return [RDPoint(**p) for p in json.loads(path.read_text())]
    curve = [x265_point(crf, crops) for crf in X265_CRFS]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(p) for p in curve]))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codec_class")
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument("--refine-steps", type=int, default=0, metavar="N")
    parser.add_argument("--refine-rounding", choices=tuple(ROUNDINGS), default="sga")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="every K-th held-out crop only")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    crops = held_out_crops(args.codec_class)[:: args.every]
    anchor = x265_curve(args.codec_class, crops)
    for path in args.weights:
        point = learned_point(path, crops, args.refine_steps, args.refine_rounding)
        x265_bpp = interpolate(anchor, point.psnr, psnr_at_bpp=False)
        against = "outside x265's range" if x265_bpp is None else f"{100 * (point.bpp / x265_bpp - 1):+.1f}% vs x265"
        print(f"{path}: {point.setting} {point.bpp:.4f} bpp {point.psnr:.3f} dB ms-ssim {point.ms_ssim:.4f}: {against}")


if __name__ == "__main__":
    main()
