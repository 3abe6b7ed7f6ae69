"""Rate-distortion of a class codec against conventional image codecs on the class's held-out crops.

Accounting, the same for every codec: the crop is the masked, centred canvas the edge really sends (``fill``
outside the object); bits are everything the decoder needs for that canvas (a JPEG/WebP file with its headers; the
learned codec's entropy-coded strings plus the 4 bytes of latent shape the signalling carries; x265 intra's NAL units
with its parameter sets, without start codes or its informational SEI, as BPG counts them; SVT-AV1's OBUs in
still-picture mode); bpp divides by the canvas's pixels; PSNR is measured on the object's pixels only (the fill is
never shown). Curves are averaged over crops at each quality setting (mean bpp, mean PSNR).
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from surveil.codecs.library import decode_canvas, encode_canvases, weight_file
from surveil.codecs.model import load_codec
from surveil.config import load_config
from surveil.errors import SurveilError
from surveil.paths import PROJECT_WEIGHTS, REPO_ROOT
from surveil.pipelines.dataset import DATASETS_ROOT, build_datasets, load_split_with_masks

logger = logging.getLogger(__name__)

LATENT_SHAPE_BYTES = 4
JPEG_QUALITIES = (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90)
WEBP_QUALITIES = (0, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
X265_CRFS = (20, 24, 28, 32, 36, 40, 44, 48, 51)
AV1_CRFS = (20, 28, 36, 44, 52, 60, 63)


@dataclass
class RDPoint:
    codec: str
    setting: str
    bpp: float
    psnr: float
    encode_ms: float = 0.0
    decode_ms: float = 0.0


def masked_psnr(original: np.ndarray, decoded: np.ndarray, mask: np.ndarray) -> float:
    diff = original[mask].astype(np.float64) - decoded[mask].astype(np.float64)
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return 100.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


Row = tuple[float, float, float, float]  # bpp, PSNR, encode ms, decode ms


def _row(nbytes: int, rgb: np.ndarray, decoded: np.ndarray, mask: np.ndarray, times: tuple[float, float, float]) -> Row:
    started, encoded, done = times
    return 8 * nbytes / mask.size, masked_psnr(rgb, decoded, mask), 1e3 * (encoded - started), 1e3 * (done - encoded)


def _average(codec: str, setting: str, rows: list[Row]) -> RDPoint:
    arr = np.array(rows)
    return RDPoint(codec, setting, *(float(v) for v in arr.mean(axis=0)))


def learned_point(path: Path, crops: list[tuple[np.ndarray, np.ndarray]]) -> RDPoint:
    codec = load_codec(path)
    rows: list[Row] = []
    for rgb, mask in crops:
        started = time.perf_counter()
        [(strings, shape)] = encode_canvases(codec, [rgb])
        encoded = time.perf_counter()
        decoded = decode_canvas(codec, strings, shape)
        done = time.perf_counter()
        nbytes = sum(len(s) for s in strings) + LATENT_SHAPE_BYTES
        rows.append(_row(nbytes, rgb, decoded, mask, (started, encoded, done)))
    return _average("learned", f"{codec.codec_id.codec_class} q{codec.codec_id.quality}", rows)


def pillow_point(fmt: str, quality: int, crops: list[tuple[np.ndarray, np.ndarray]]) -> RDPoint:
    options = {"JPEG": {"optimize": True}, "WEBP": {"method": 6}}[fmt]
    rows: list[Row] = []
    for rgb, mask in crops:
        buffer = io.BytesIO()
        started = time.perf_counter()
        Image.fromarray(rgb).save(buffer, format=fmt, quality=quality, **options)
        encoded = time.perf_counter()
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        done = time.perf_counter()
        rows.append(_row(buffer.tell(), rgb, decoded, mask, (started, encoded, done)))
    return _average(fmt.lower(), f"q{quality}", rows)


def _nal_payload_bytes(annex_b: bytes) -> int:
    """Bytes of an Annex B stream without its start codes (BPG-style accounting: NAL units only)."""
    return (
        len(annex_b)
        - 4 * annex_b.count(b"\x00\x00\x00\x01")
        - 3 * (annex_b.count(b"\x00\x00\x01") - annex_b.count(b"\x00\x00\x00\x01"))
    )


def x265_point(crf: int, crops: list[tuple[np.ndarray, np.ndarray]]) -> RDPoint:
    """x265 intra (one IDR picture, 4:4:4, preset medium) with its VPS/SPS/PPS counted and no info SEI."""
    import av

    rows: list[Row] = []
    for rgb, mask in crops:
        started = time.perf_counter()
        encoder = av.CodecContext.create("libx265", "w")
        encoder.width, encoder.height, encoder.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv444p"
        encoder.options = {"crf": str(crf), "preset": "medium", "x265-params": "log-level=error:info=0:keyint=1"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv444p")
        data = b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])
        encoded = time.perf_counter()
        decoder = av.CodecContext.create("hevc", "r")
        picture = [*decoder.decode(av.Packet(data)), *decoder.decode(None)][0]
        decoded = picture.to_ndarray(format="rgb24")
        done = time.perf_counter()
        rows.append(_row(_nal_payload_bytes(data), rgb, decoded, mask, (started, encoded, done)))
    return _average("x265", f"crf{crf}", rows)


def av1_point(crf: int, crops: list[tuple[np.ndarray, np.ndarray]]) -> RDPoint:
    """SVT-AV1 in still-picture mode (avif=1, 4:2:0, preset 4): every OBU counted, sequence header included."""
    import os
    from fractions import Fraction

    import av

    os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints its whole configuration per picture otherwise
    rows: list[Row] = []
    for rgb, mask in crops:
        started = time.perf_counter()
        encoder = av.CodecContext.create("libsvtav1", "w")
        encoder.width, encoder.height, encoder.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        encoder.time_base, encoder.framerate = Fraction(1, 25), Fraction(25, 1)  # SVT-AV1 insists on a rate
        encoder.options = {"crf": str(crf), "preset": "4", "svtav1-params": "avif=1"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
        frame.pts = 0
        data = b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])
        encoded = time.perf_counter()
        decoder = av.CodecContext.create("libdav1d", "r")
        decoded = [*decoder.decode(av.Packet(data)), *decoder.decode(None)][0].to_ndarray(format="rgb24")
        done = time.perf_counter()
        rows.append(_row(len(data), rgb, decoded, mask, (started, encoded, done)))
    return _average("av1", f"crf{crf}", rows)


def interpolate(curve: list[RDPoint], x: float, *, psnr_at_bpp: bool) -> float | None:
    """An anchor's PSNR at a given bpp (or bpp at a given PSNR), linear in log-bpp; None outside its range."""
    points = sorted(curve, key=lambda p: p.bpp)
    log_bpp = np.log([p.bpp for p in points])
    psnr = np.array([p.psnr for p in points])
    if psnr_at_bpp:
        if not log_bpp[0] <= np.log(x) <= log_bpp[-1]:
            return None
        return float(np.interp(np.log(x), log_bpp, psnr))
    order = np.argsort(psnr)
    if not psnr[order][0] <= x <= psnr[order][-1]:
        return None
    return float(np.exp(np.interp(x, psnr[order], log_bpp[order])))


def bd_rate(anchor: list[RDPoint], test: list[RDPoint]) -> float | None:
    """Bjøntegaard delta rate of ``test`` against ``anchor`` in percent (negative: fewer bits for the same PSNR).

    Log-rate as a monotone piecewise-cubic (PCHIP) function of PSNR for each curve, averaged over the PSNR range both
    curves cover; None when they do not overlap or a curve has fewer than two points.
    """
    from scipy.interpolate import PchipInterpolator

    curves = []
    for curve in (anchor, test):
        points = sorted(curve, key=lambda p: p.psnr)
        psnr = np.array([p.psnr for p in points])
        if len(points) < 2 or np.any(np.diff(psnr) <= 0):
            return None
        curves.append((psnr, PchipInterpolator(psnr, np.log([p.bpp for p in points]))))
    low = max(curves[0][0][0], curves[1][0][0])
    high = min(curves[0][0][-1], curves[1][0][-1])
    if high <= low:
        return None
    grid = np.linspace(low, high, 200)
    mean_log_ratio = float(np.mean(curves[1][1](grid) - curves[0][1](grid)))
    return 100.0 * (np.exp(mean_log_ratio) - 1.0)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def comparison_table(learned: list[RDPoint], anchors: dict[str, list[RDPoint]]) -> str:
    """Each learned rate point against each anchor: the anchor's bpp for the same PSNR, and the learned codec's bits
    relative to it (negative: the learned codec needs fewer). "below range" means the anchor cannot go that low in
    PSNR at any setting tried (it spends more bits than its lowest setting even there); "above range" the reverse."""
    names = list(anchors)
    head = "| codec | bpp | PSNR (dB) | enc ms | dec ms | " + " | ".join(f"{n} bpp at same PSNR" for n in names) + " |"
    lines = [head, "|" + "---|" * (5 + len(names))]
    for point in learned:
        cells = [
            point.setting,
            f"{point.bpp:.3f}",
            f"{point.psnr:.2f}",
            f"{point.encode_ms:.1f}",
            f"{point.decode_ms:.1f}",
        ]
        for name in names:
            bpp = interpolate(anchors[name], point.psnr, psnr_at_bpp=False)
            if bpp is not None:
                cells.append(f"{bpp:.3f} ({100 * (point.bpp / bpp - 1):+.0f}% bits)")
            else:
                lowest = min(anchors[name], key=lambda p: p.psnr)
                cells.append("below range" if point.psnr < lowest.psnr else "above range")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def anchor_table(anchors: dict[str, list[RDPoint]]) -> str:
    lines = ["| anchor | setting | bpp | PSNR (dB) |", "|---|---|---|---|"]
    for name, curve in anchors.items():
        lines += [f"| {name} | {p.setting} | {p.bpp:.3f} | {p.psnr:.2f} |" for p in curve]
    return "\n".join(lines)


def plot(path: Path, title: str, learned: list[RDPoint], anchors: dict[str, list[RDPoint]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, curve in anchors.items():
        style = "s-" if name == "generic" else "o--"
        ax.plot([p.bpp for p in curve], [p.psnr for p in curve], style, ms=3, label=name)
    ax.plot(
        [p.bpp for p in learned],
        [p.psnr for p in learned],
        "s-",
        lw=2,
        label=f"surveil {learned[0].setting.split()[0]}",
    )
    ax.set_xscale("log")
    ax.set_xlabel("bits per canvas pixel")
    ax.set_ylabel("PSNR on object pixels (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def held_out_crops(codec_class: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The class's test split (RGB canvas, object mask), cut first if this checkout has not built it yet."""
    if not (DATASETS_ROOT / codec_class / "test" / "index.json").exists():
        logger.warning("building the held-out %s crops first (datasets/%s/test)", codec_class, codec_class)
        build_datasets([codec_class], load_config(None), splits=("test",))
    return load_split_with_masks(codec_class, "test")


def run_codec_evaluation(codec_class: str, qualities: list[int], out: Path | None = None) -> str:
    torch.set_grad_enabled(False)
    crops = held_out_crops(codec_class)
    paths = [weight_file(PROJECT_WEIGHTS, codec_class, q) for q in qualities]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SurveilError(f"no trained weights: {', '.join(missing)} (train them with 'surveil train')")
    learned = [learned_point(p, crops) for p in tqdm(paths, desc=f"{codec_class} learned", unit="quality")]
    anchors: dict[str, list[RDPoint]] = {}
    generic = [p for p in (weight_file(PROJECT_WEIGHTS, "generic", q) for q in qualities) if p.exists()]
    if codec_class != "generic" and generic:
        anchors["generic"] = [learned_point(p, crops) for p in tqdm(generic, desc="generic learned", unit="quality")]
    anchors |= {
        "jpeg": [pillow_point("JPEG", q, crops) for q in tqdm(JPEG_QUALITIES, desc="jpeg", unit="quality")],
        "webp": [pillow_point("WEBP", q, crops) for q in tqdm(WEBP_QUALITIES, desc="webp", unit="quality")],
        "x265": [x265_point(crf, crops) for crf in tqdm(X265_CRFS, desc="x265 intra", unit="crf")],
        "av1": [av1_point(crf, crops) for crf in tqdm(AV1_CRFS, desc="svt-av1 intra", unit="crf")],
    }
    pixels = sum(mask.size for _, mask in crops)
    title = f"{codec_class}: {len(crops)} held-out crops, {pixels / len(crops):.0f} canvas pixels on average"
    bd = "BD-rate of the learned codec (PSNR on object pixels): " + ", ".join(
        f"vs {name} {_fmt(bd_rate(curve, learned), '+.1f')}%" for name, curve in anchors.items()
    )
    text = "\n\n".join([title, comparison_table(learned, anchors), bd, anchor_table(anchors)])
    target = out or REPO_ROOT / "out" / f"eval_{codec_class}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")
    plot(target.with_suffix(".png"), title, learned, anchors)
    return text + f"\n\nwritten to {target} and {target.with_suffix('.png')}"
