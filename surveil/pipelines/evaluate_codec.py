"""Rate-distortion of a class's codecs (each tier, and the generic codec of that tier) against conventional image
codecs on the class's held-out crops.

Accounting, the same for every codec: the crop is the masked, centred canvas the edge really sends (``fill``
outside the object); bits are everything the decoder needs for that canvas (a JPEG/WebP file with its headers; the
learned codec's entropy-coded strings plus the 4 bytes of latent shape the signalling carries; x265 intra's NAL units
with its parameter sets, without start codes or its informational SEI, as BPG counts them; SVT-AV1's OBUs in
still-picture mode); bpp divides by the canvas's pixels; fidelity is judged on the object's pixels only (the fill is
never shown): PSNR over the mask, MS-SSIM of the decoded object pasted into the original canvas (see fidelity.py).
Curves are averaged over crops at each quality setting (mean bpp, mean PSNR, mean MS-SSIM). Milliseconds are wall
time per crop on this machine, one crop at a time (with ``workers``, in a process of one torch thread).
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from surveil.codecs.library import FALLBACK_CLASS, decode_canvas, encode_canvases, to_tensor, weight_file
from surveil.codecs.model import TIERS, LoadedCodec, load_codec, tier_of
from surveil.codecs.refine import ROUNDINGS
from surveil.config import load_config
from surveil.errors import SurveilError
from surveil.paths import PROJECT_WEIGHTS, REPO_ROOT
from surveil.pipelines.dataset import DATASETS_ROOT, build_datasets, load_split_with_masks
from surveil.pipelines.eval_cache import PointCache, code_digest, crops_digest
from surveil.pipelines.fidelity import masked_ms_ssim, masked_psnr, ms_ssim_db

logger = logging.getLogger(__name__)

LATENT_SHAPE_BYTES = 4
JPEG_QUALITIES = (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90)
WEBP_QUALITIES = (0, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
X265_CRFS = (20, 24, 28, 32, 36, 40, 44, 48, 51)
AV1_CRFS = (20, 28, 36, 44, 52, 60, 63)


METRICS = ("psnr", "ms_ssim_db")


@dataclass
class RDPoint:
    codec: str
    setting: str
    bpp: float
    psnr: float
    ms_ssim: float = 1.0
    encode_ms: float = 0.0
    decode_ms: float = 0.0

    @property
    def ms_ssim_db(self) -> float:
        return ms_ssim_db(self.ms_ssim)


Row = tuple[float, float, float, float, float]  # bpp, PSNR, MS-SSIM, encode ms, decode ms


def _row(nbytes: int, rgb: np.ndarray, decoded: np.ndarray, mask: np.ndarray, times: tuple[float, float, float]) -> Row:
    started, encoded, done = times
    return (
        8 * nbytes / mask.size,
        masked_psnr(rgb, decoded, mask),
        masked_ms_ssim(rgb, decoded, mask),
        1e3 * (encoded - started),
        1e3 * (done - encoded),
    )


def _average(codec: str, setting: str, rows: list[Row]) -> RDPoint:
    arr = np.array(rows)
    return RDPoint(codec, setting, *(float(v) for v in arr.mean(axis=0)))


def _loaded(codec: Path | LoadedCodec) -> LoadedCodec:
    return codec if isinstance(codec, LoadedCodec) else load_codec(codec)


def learned_point(
    codec: Path | LoadedCodec,
    crops: list[tuple[np.ndarray, np.ndarray]],
    refine_steps: int = 0,
    rounding: str = "sga",
) -> RDPoint:
    """The codec's mean point over the crops; with ``refine_steps``, each crop's latents refined first (the edge's
    ``codec.refine_steps``; ``rounding``: codecs/refine.py's), named ``<class> <tier>+refine<steps>``."""
    codec = _loaded(codec)
    rows: list[Row] = []
    for rgb, mask in crops:
        started = time.perf_counter()
        [(strings, shape)] = encode_canvases(codec, [rgb], [mask], refine_steps, rounding)
        encoded = time.perf_counter()
        decoded = decode_canvas(codec, strings, shape)
        done = time.perf_counter()
        nbytes = sum(len(s) for s in strings) + LATENT_SHAPE_BYTES
        rows.append(_row(nbytes, rgb, decoded, mask, (started, encoded, done)))
    name = f"{codec.codec_id.codec_class} {tier_of(codec.codec_id.arch)}"
    if refine_steps:
        name += f"+refine{refine_steps}"
    return _average(name, f"q{codec.codec_id.quality}", rows)


def rate_check(codec: Path | LoadedCodec, crops: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(estimated, actual) bits per canvas pixel of the learned codec, averaged over crops as ``learned_point``
    averages: the rate its likelihoods promise (what training minimised) against the entropy coder's real strings,
    after the tables were rebuilt (the 4 bytes of latent shape the signalling adds are left out of both)."""
    codec = _loaded(codec)
    estimated, actual = [], []
    for rgb, mask in crops:
        x = to_tensor([rgb], codec.model.device_name)
        with torch.no_grad():
            likelihoods = codec.model(x)["likelihoods"]
        estimated.append(float(sum(-torch.log2(v).sum() for v in likelihoods.values())) / mask.size)
        [(strings, _)] = encode_canvases(codec, [rgb])
        actual.append(8 * sum(len(s) for s in strings) / mask.size)
    return float(np.mean(estimated)), float(np.mean(actual))


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


def bd_rate(anchor: list[RDPoint], test: list[RDPoint], metric: str = "psnr") -> float | None:
    """Bjøntegaard delta rate of ``test`` against ``anchor`` in percent (negative: fewer bits for the same quality).

    Log-rate as a monotone piecewise-cubic (PCHIP) function of the quality (``psnr`` or ``ms_ssim_db``) for each
    curve, averaged over the quality range both curves cover; None when they do not overlap or a curve has fewer
    than two points.
    """
    from scipy.interpolate import PchipInterpolator

    curves = []
    for curve in (anchor, test):
        points = sorted(curve, key=lambda p: getattr(p, metric))
        psnr = np.array([getattr(p, metric) for p in points])
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


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def comparison_table(learned: list[RDPoint], anchors: dict[str, list[RDPoint]]) -> str:
    """Each learned rate point against each anchor: the anchor's bpp for the same PSNR, and the learned codec's bits
    relative to it (negative: the learned codec needs fewer). "below range" means the anchor cannot go that low in
    PSNR at any setting tried (it spends more bits than its lowest setting even there); "above range" the reverse."""
    names = list(anchors)
    head = (
        "| codec | bpp | PSNR (dB) | MS-SSIM | enc ms | dec ms | "
        + " | ".join(f"{n} bpp at same PSNR" for n in names)
        + " |"
    )
    lines = [head, "|" + "---|" * (6 + len(names))]
    for point in learned:
        cells = [
            f"{point.codec} {point.setting}",
            f"{point.bpp:.3f}",
            f"{point.psnr:.2f}",
            f"{point.ms_ssim:.4f}",
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


def bd_table(learned: dict[str, list[RDPoint]], anchors: dict[str, dict[str, list[RDPoint]]]) -> str:
    """BD-rate of each learned curve against each of its anchors, in PSNR and in MS-SSIM (dB); "n/a" where the two
    curves share no quality range (the per-point table then shows which lies above the other)."""
    names = list(dict.fromkeys(name for per_tier in anchors.values() for name in per_tier))
    lines = ["| codec | " + " | ".join(f"vs {n}" for n in names) + " |", "|" + "---|" * (1 + len(names))]
    for tier, curve in learned.items():
        cells = [curve[0].codec]
        for name in names:
            anchor = anchors[tier].get(name)
            if anchor is None:
                cells.append("-")
                continue
            psnr, msssim = (bd_rate(anchor, curve, metric) for metric in METRICS)
            cells.append(f"{_percent(psnr)} / {_percent(msssim)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def anchor_table(anchors: dict[str, list[RDPoint]]) -> str:
    lines = ["| anchor | setting | bpp | PSNR (dB) | MS-SSIM | enc ms | dec ms |", "|---|---|---|---|---|---|---|"]
    for name, curve in anchors.items():
        lines += [
            f"| {name} | {p.setting} | {p.bpp:.3f} | {p.psnr:.2f} | {p.ms_ssim:.4f} | {p.encode_ms:.1f} | "
            f"{p.decode_ms:.1f} |"
            for p in curve
        ]
    return "\n".join(lines)


def plot(path: Path, title: str, learned: dict[str, list[RDPoint]], anchors: dict[str, list[RDPoint]]) -> None:
    """PSNR and MS-SSIM (dB) against bpp, one panel each; learned curves bold, generic square, conventional dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, metric, label in zip(
        axes, METRICS, ("PSNR on object pixels (dB)", "MS-SSIM of the pasted object (dB)"), strict=True
    ):
        for name, curve in anchors.items():
            style = "s-" if name.startswith("generic") else "o--"
            ax.plot([p.bpp for p in curve], [getattr(p, metric) for p in curve], style, ms=3, label=name)
        for curve in learned.values():
            ax.plot([p.bpp for p in curve], [getattr(p, metric) for p in curve], "s-", lw=2, label=curve[0].codec)
        ax.set_xscale("log")
        ax.set_xlabel("bits per canvas pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
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


@dataclass(frozen=True)
class Measurement:
    """One point an evaluation needs: a learned codec's weight file (refined for ``refine_steps`` with
    ``rounding``, or not), or a conventional codec (``jpeg``, ``webp``, ``x265``, ``av1``) at a quality or CRF."""

    codec: str  # "learned" or one of CONVENTIONAL_SETTINGS
    setting: Path | int  # the weight file, or the quality or CRF
    refine_steps: int = 0
    rounding: str = "sga"


CONVENTIONAL_SETTINGS = {"jpeg": JPEG_QUALITIES, "webp": WEBP_QUALITIES, "x265": X265_CRFS, "av1": AV1_CRFS}


def measure(item: Measurement, crops: list[tuple[np.ndarray, np.ndarray]]) -> RDPoint:
    """The item's mean point over the crops."""
    if item.codec == "learned":
        return learned_point(Path(item.setting), crops, item.refine_steps, item.rounding)
    setting = int(item.setting)
    if item.codec in ("jpeg", "webp"):
        return pillow_point(item.codec.upper(), setting, crops)
    return {"x265": x265_point, "av1": av1_point}[item.codec](setting, crops)


_worker_crops: list[tuple[np.ndarray, np.ndarray]] = []


def _start_worker(crops: list[tuple[np.ndarray, np.ndarray]]) -> None:
    global _worker_crops
    _worker_crops = crops
    torch.set_num_threads(1)


@torch.no_grad()
def _measure_in_worker(item: Measurement) -> tuple[Measurement, RDPoint]:
    return item, measure(item, _worker_crops)


def measure_all(
    items: list[Measurement],
    crops: list[tuple[np.ndarray, np.ndarray]],
    cache: PointCache | None = None,
    workers: int = 1,
    desc: str = "points",
) -> dict[Measurement, RDPoint]:
    """Every item's point: learned ones from ``cache`` where it holds them, the rest measured, in this process or,
    with ``workers`` above 1, in that many single-thread processes (new learned points are stored in ``cache``)."""
    points: dict[Measurement, RDPoint] = {}
    for item in items:
        if item.codec == "learned" and cache is not None:
            stored = cache.get(Path(item.setting), item.refine_steps, item.rounding)
            if stored is not None:
                points[item] = RDPoint(**stored)
    # the longest first (refined points take tens of times the others), so that no worker is left with one at the end
    pending = sorted((item for item in items if item not in points), key=lambda item: -item.refine_steps)
    if workers > (os.cpu_count() or 1):
        logger.warning("%d workers on %s cores: the points' times will include waiting", workers, os.cpu_count())
    with contextlib.ExitStack() as stack:
        if workers > 1 and pending:  # even one point: this process may run more threads than the key says
            # spawn, not fork: a forked child would inherit this process's torch thread pool and locks
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(context.Pool(min(workers, len(pending)), _start_worker, (crops,)))
            results = pool.imap_unordered(_measure_in_worker, pending)
        else:
            results = ((item, measure(item, crops)) for item in pending)
        for item, point in tqdm(results, total=len(pending), desc=desc, unit="point"):
            points[item] = point
            if item.codec == "learned" and cache is not None:
                cache.put(Path(item.setting), item.refine_steps, point, item.rounding)
    return points


@torch.no_grad()  # not set_grad_enabled(False): the caller's grad mode must outlive the evaluation
def run_codec_evaluation(
    codec_class: str,
    qualities: list[int],
    out: Path | None = None,
    tiers: tuple[str, ...] = tuple(TIERS),
    weights_dir: Path = PROJECT_WEIGHTS,
    refine_steps: int = 0,
    cache_dir: Path | None = None,
    rounding: str = "sga",
    workers: int = 1,
) -> str:
    """Evaluate every tier of the class that has trained weights in ``weights_dir`` (candidates can be judged before
    they are committed); write the tables (markdown) and the plot (PNG).

    With ``refine_steps``, each tier is also evaluated with its latents refined per crop (codecs/refine.py, with its
    ``rounding``), as a curve of its own against the conventional anchors (not against the generic codec, whose
    encoder is not refined here: that comparison would favour the class codec); the refined high tier is also set
    against the refined fast tier.

    With ``cache_dir``, learned points measured before with the same weights, crops and code are reused from there
    (eval_cache.py), and new ones are stored. With ``workers`` above 1, the points are measured side by side in that
    many processes of one torch thread each (then the cache is keyed by one thread, whatever this process uses)."""
    crops = held_out_crops(codec_class)
    cache = (
        PointCache(
            cache_dir,
            crops_digest(crops),
            code_digest((learned_point, _row, _average)),
            threads=1 if workers > 1 else None,
        )
        if cache_dir is not None
        else None
    )

    def weight_files(of_class: str, tier: str) -> list[Path]:
        return [p for q in qualities if (p := weight_file(weights_dir, of_class, q, tier)).exists()]

    class_files = {tier: files for tier in tiers if (files := weight_files(codec_class, tier))}
    if not class_files:
        wanted = [str(weight_file(weights_dir, codec_class, q, t)) for t in tiers for q in qualities]
        raise SurveilError(f"no trained weights: none of {', '.join(wanted)} (train them with 'surveil train')")
    generic_files = {
        tier: files
        for tier in class_files
        if codec_class != FALLBACK_CLASS and (files := weight_files(FALLBACK_CLASS, tier))
    }
    unrefined = {tier: [Measurement("learned", f) for f in files] for tier, files in class_files.items()}
    refined_items = {
        tier: [Measurement("learned", f, refine_steps, rounding) for f in files]
        for tier, files in class_files.items()
        if refine_steps
    }
    generic_items = {tier: [Measurement("learned", f) for f in files] for tier, files in generic_files.items()}
    conventional_items = {
        codec: [Measurement(codec, s) for s in settings] for codec, settings in CONVENTIONAL_SETTINGS.items()
    }
    every_item = [
        item
        for group in (unrefined, refined_items, generic_items, conventional_items)
        for items in group.values()
        for item in items
    ]
    points = measure_all(every_item, crops, cache, workers, desc=f"{codec_class}: rate points")

    def curve_of(items: list[Measurement]) -> list[RDPoint]:
        return [points[item] for item in items]

    learned = {tier: curve_of(items) for tier, items in unrefined.items()}
    refined = {f"{tier}+refine{refine_steps}": tier for tier in refined_items}
    learned |= {key: curve_of(refined_items[tier]) for key, tier in refined.items()}
    conventional = {codec: curve_of(items) for codec, items in conventional_items.items()}
    anchors: dict[str, dict[str, list[RDPoint]]] = {}
    generic_curves: dict[str, list[RDPoint]] = {}
    for tier in learned:
        anchors[tier] = {}
        if tier in refined:
            if refined[tier] == "high" and (fast_refined := f"fast+refine{refine_steps}") in learned:
                anchors[tier][f"{codec_class} {fast_refined}"] = learned[fast_refined]
            anchors[tier] |= conventional
            continue
        if tier in generic_items:
            anchors[tier][f"generic {tier}"] = generic_curves[f"generic {tier}"] = curve_of(generic_items[tier])
        if tier == "high" and "fast" in learned:  # what the high tier buys over the codec it is fine-tuned from
            anchors[tier][f"{codec_class} fast"] = learned["fast"]
        anchors[tier] |= conventional
    pixels = sum(mask.size for _, mask in crops)
    title = f"{codec_class}: {len(crops)} held-out crops, {pixels / len(crops):.0f} canvas pixels on average"
    sections = [title]
    if cache is not None and cache.reused:
        sections.append(
            f"{cache.reused} of {cache.reused + cache.measured} learned-codec points were reused from earlier runs "
            "with the same weights, crops, code and library versions (their times are those runs'); "
            "`--no-cache` measures every point."
        )
    for tier, curve in learned.items():
        table = comparison_table(curve, anchors[tier])
        label = (
            f"{refined[tier]} tier, latents refined per crop ({refine_steps} steps, {ROUNDINGS[rounding]})"
            if tier in refined
            else f"{tier} tier"
        )
        sections.append(f"{label}, each rate point against each anchor:\n\n{table}")
    sections.append(
        "BD-rate (PSNR / MS-SSIM dB; negative: fewer bits for the same quality):\n\n" + bd_table(learned, anchors)
    )
    sections.append(anchor_table(generic_curves | conventional))
    text = "\n\n".join(sections)
    target = out or REPO_ROOT / "out" / f"eval_{codec_class}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")
    plot(target.with_suffix(".png"), title, learned, generic_curves | conventional)
    return text + f"\n\nwritten to {target} and {target.with_suffix('.png')}"
