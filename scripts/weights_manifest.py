"""Write weights/MANIFEST.md: every committed codec with its hash, size, training record and measured RD point.

The RD point is measured here, on the held-out test split of the codec's class (or generic's when the class has
none), with the accounting of ``surveil eval-codec``.

Usage: .venv/bin/python scripts/weights_manifest.py [NAME.pt ...]
With names, only those files are measured again and every other row is kept from the current manifest (so replacing
a class's weights needs only that class's held-out crops).
"""

from __future__ import annotations

import argparse
import sys

import torch

from surveil.codecs.model import file_sha256, load_codec
from surveil.paths import PROJECT_WEIGHTS
from surveil.pipelines.dataset import RECIPES
from surveil.pipelines.evaluate_codec import held_out_crops, learned_point, rate_check
from surveil.pipelines.train import TrainSettings

HEADER = """# Project-trained codec weights

Written by `scripts/weights_manifest.py`; do not edit by hand. Files are fp16 state dicts (integer entropy tables
kept) loaded by `surveil.codecs.model.load_codec`; a codec's identity on the wire is its architecture, class,
quality and the first 16 hex digits of the file's sha256. Training: `scripts/train_codecs.sh` and
`scripts/train_class_codecs.sh` (loss `lambda * 255^2 * MSE + bpp`, Adam, warm-up then cosine learning rate, batch 8
of 128x128 patches). "steps" and "loss" are this file's own training stage (loss "object": MSE on the object's
pixels; "whole": on whole patches, fill included; then its peak learning rate, patch seed, batch when not 8,
precision and tier where recorded; "renamed", 0 steps: the last history stage's weights, unchanged, under this file's
quality, written by `surveil train --steps 0`); "history" lists the stages it continues, oldest first, as class,
quality, steps, loss and, where recorded, the same settings (files trained before lineages were recorded name only the
file they started from, which may have been replaced since; `scripts/train_codecs.sh` describes every stage).
RD points: mean over the held-out test split named in the table (bits per canvas pixel, PSNR on object pixels,
MS-SSIM of the decoded object pasted into the original canvas). "est. bpp" is the rate the model's likelihoods
promise on the same crops (what training minimised) and "coded bpp" what the entropy coder really wrote, after
the tables were rebuilt, both without the 4 bytes of latent shape that "bpp" (the eval-codec accounting) includes.

| file | sha256 | size | parameters | arch | class | quality | lambda | steps | loss | history | train data \
| test data | est. bpp | coded bpp | bpp | PSNR (dB) | MS-SSIM |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def _loss(object_loss: bool) -> str:
    return "object" if object_loss else "whole"


def _settings(stage: dict) -> str:
    """A stage's learning rate, seed, batch (when not the default), precision and tier where its file recorded them
    (older files did not)."""
    known = [
        f"lr {stage['lr']:g}" if stage.get("lr") else "",
        f"seed {stage['seed']}" if stage.get("seed") is not None else "",
        f"batch {stage['batch']}" if stage.get("batch", TrainSettings.batch) != TrainSettings.batch else "",
    ]
    if stage.get("precision", "fp32") != "fp32":
        known.append(stage["precision"])
    if stage.get("tier", "fast") != "fast":
        known.append(f"{stage['tier']} tier")
    return ", ".join(k for k in known if k)


def _stage(stage: dict) -> str:
    if stage["steps"] == 0:  # `surveil train --steps 0`: the stage before it, under another name
        return f"{stage['codec_class']} q{stage['quality']} (renamed)"
    settings = _settings(stage)
    head = f"{stage['codec_class']} q{stage['quality']} {stage['steps']} {_loss(stage['object_loss'])}"
    return f"{head} ({settings})" if settings else head


def _history(meta: dict) -> str:
    stages = meta.get("lineage")
    if stages is None:  # written before lineages were recorded
        return f"from {(meta.get('init') or 'scratch').split('/')[-1]} as it was then"
    if not stages:
        return "scratch"
    return " -> ".join(_stage(s) for s in stages)


def _kept_rows(names: set[str]) -> dict[str, str]:
    """The current manifest's rows of files not named for measuring again, by file name."""
    manifest = PROJECT_WEIGHTS / "MANIFEST.md"
    lines = manifest.read_text().splitlines() if manifest.exists() else []
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and line.count("|") > 2}
    return {name: row for name, row in rows.items() if name.endswith(".pt") and name not in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="weight files to measure again (default: all)")
    args = parser.parse_args()
    kept = _kept_rows(set(args.names)) if args.names else {}
    torch.set_grad_enabled(False)
    rows = []
    for path in sorted(PROJECT_WEIGHTS.glob("*.pt")):
        if path.name in kept and f"`{file_sha256(path)}`" in kept[path.name]:  # a changed file is measured again
            rows.append(kept[path.name])
            continue
        codec = load_codec(path)
        meta = codec.meta
        test_class = meta["codec_class"] if meta["codec_class"] in RECIPES else "generic"
        crops = held_out_crops(test_class)
        point = learned_point(codec, crops)
        estimated_bpp, coded_bpp = rate_check(codec, crops)
        params = sum(p.numel() for p in codec.model.parameters())
        recipe = meta.get("recipe", {})
        loss = _loss(recipe.get("object_loss", False))
        if meta["steps"] == 0:  # the last history stage's weights under this name: no loss, rate or seed of its own
            loss = "renamed"
        elif settings := _settings(recipe):
            loss += f" ({settings})"
        rows.append(
            f"| {path.name} | `{file_sha256(path)}` | {path.stat().st_size / 1e6:.2f} MB | {params / 1e6:.2f} M | "
            f"{codec.codec_id.arch} | {meta['codec_class']} | {meta['quality']} | {meta['lambda']} | {meta['steps']} | "
            f"{loss} | {_history(meta)} | `{meta.get('dataset', '?')}` | `datasets/{test_class}/test` | "
            f"{estimated_bpp:.3f} | {coded_bpp:.3f} | {point.bpp:.3f} | {point.psnr:.2f} | {point.ms_ssim:.4f} |"
        )
        print(rows[-1], flush=True)
    (PROJECT_WEIGHTS / "MANIFEST.md").write_text(HEADER + "\n".join(rows) + "\n")
    print(f"wrote {PROJECT_WEIGHTS / 'MANIFEST.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
