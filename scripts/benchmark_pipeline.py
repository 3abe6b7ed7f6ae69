"""End-to-end benchmark: every shared video through encode -> recording -> decode, against x264 on the same frames.

For each video it prints, and writes into the output folder (``--out``, default ``out/benchmark``) beside the
recordings and recomposed videos as ``benchmark.md`` (rewritten after each video, so a run cut short keeps its rows;
``--table FILE`` writes the same report there too, e.g. ``docs/benchmark_q1.md``, which the README's tables are
copied from by ``scripts/sync_readme_tables.py``), under a line naming the run (rate point, date, CPU, threads and
the class codec files used):
- frames and size of the recomposed video (read back from the decoder's output file) against the source;
- the region stream's kbps (total, background, each class, signalling) and x264's kbps (crf 23, preset medium, the
  same frames, encoded in this process) with x264's own person fidelity on its decoded frames, for reference;
- person-detection fidelity: YOLO (the detection model ``yolov8n.pt``, not the segmenter the edge uses) on the
  recomposed frames against YOLO on the original frames, matched one-to-one at IoU >= 0.5: precision, recall, F1.

Usage: .venv/bin/python scripts/benchmark_pipeline.py [--max-frames N] [--videos NAME ...] [--quality Q]
       [--refine-steps N] [--out OUT] [--table FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from surveil.codecs.library import FALLBACK_CLASS, build_library
from surveil.codecs.model import file_sha256
from surveil.config import CODEC_QUALITIES, Config, load_config
from surveil.encode import run_encode
from surveil.ingest import open_source
from surveil.paths import REPO_ROOT, find_data
from surveil.regions.detector import resolve_detector_weights
from surveil.station.run import run_decode

VIDEOS = (
    "videos/vtest_pets_480x360.mp4",
    "videos/towncentre_pedestrians_1080p.mp4",
    "videos/intel_one-by-one-person-detection.mp4",
    "videos/intel_car-detection.mp4",
)
PERSON = 0  # COCO class id
EVAL_CONF = 0.25
IOU_MATCH = 0.5


@dataclass
class Fidelity:
    true_pos: int = 0
    reference: int = 0  # detections on original frames
    test: int = 0  # detections on recomposed frames

    @property
    def precision(self) -> float:
        return self.true_pos / self.test if self.test else 1.0

    @property
    def recall(self) -> float:
        return self.true_pos / self.reference if self.reference else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


class PersonDetector:
    def __init__(self) -> None:
        from ultralytics import YOLO

        self.model = YOLO(resolve_detector_weights("yolov8n.pt"), task="detect")

    def boxes(self, rgb: np.ndarray) -> np.ndarray:
        result = self.model.predict(
            np.ascontiguousarray(rgb[..., ::-1]), conf=EVAL_CONF, classes=[PERSON], verbose=False, device="cpu"
        )[0]
        return result.boxes.xyxy.cpu().numpy()


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match(reference: np.ndarray, test: np.ndarray) -> int:
    """True positives of a greedy one-to-one matching by descending IoU, pairs at IoU >= 0.5."""
    iou = iou_matrix(reference, test)
    matched = 0
    while iou.size and iou.max() >= IOU_MATCH:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        iou[i, :] = -1
        iou[:, j] = -1
        matched += 1
    return matched


@dataclass
class Anchor:
    kbps: float
    fidelity: Fidelity


def x264_anchor(frames: list[np.ndarray], fps: float, score: Callable[[int, np.ndarray, Fidelity], None]) -> Anchor:
    """x264 crf 23 preset medium on these frames, in memory (container overhead not counted), decoded back and scored
    with the same detector, so its person F1 stands beside surveil's."""
    height, width = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 1000)
    encoder.framerate = Fraction(fps).limit_denominator(1001)
    encoder.options = {"crf": "23", "preset": "medium"}
    decoder = av.CodecContext.create("h264", "r")
    fidelity = Fidelity()
    total = 0
    decoded = 0

    def consume(packets: list[av.Packet]) -> None:
        nonlocal total, decoded
        for packet in packets:
            total += packet.size
            for picture in decoder.decode(packet):
                score(decoded, picture.to_ndarray(format="rgb24"), fidelity)
                decoded += 1

    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = round(index * 1000 / fps)
        consume(encoder.encode(frame))
    consume(encoder.encode(None))
    for picture in decoder.decode(None):
        score(decoded, picture.to_ndarray(format="rgb24"), fidelity)
        decoded += 1
    if decoded != len(frames):
        raise SystemExit(f"error: x264 anchor decoded {decoded} of {len(frames)} frames")
    return Anchor(8 * total / (len(frames) / fps) / 1000, fidelity)


def video_facts(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.codec_context.width, stream.codec_context.height


def benchmark_video(name: str, max_frames: int | None, detector: PersonDetector, out_dir: Path, config: Config) -> dict:
    source = find_data(name)
    if source is None:
        raise SystemExit(f"error: video not found on the data path: {name}")
    stem = source.stem
    recording, video = out_dir / f"{stem}.rec", out_dir / f"{stem}.mp4"

    originals: list[np.ndarray] = []
    reference: dict[int, np.ndarray] = {}
    with open_source(str(source)) as src:
        fps = src.fps
        for frame in src:
            originals.append(frame.image)
            reference[frame.seq] = detector.boxes(frame.image)
            if max_frames is not None and len(originals) >= max_frames:
                break

    encoded = run_encode(config, str(source), record=recording, max_frames=max_frames)
    fidelity = Fidelity()

    def score(seq: int, image: np.ndarray, into: Fidelity) -> None:
        boxes = detector.boxes(image)
        ref = reference.get(seq, np.zeros((0, 4)))
        into.true_pos += match(ref, boxes)
        into.reference += len(ref)
        into.test += len(boxes)

    decoded = run_decode(config, str(recording), output=video, on_frame=lambda f: score(f.seq, f.image, fidelity))
    out_frames, out_w, out_h = video_facts(video)
    baseline = x264_anchor(originals, fps, score)
    kbps = encoded.stats.kbps(encoded.media_seconds)
    total = 8 * encoded.stats.total_bytes / encoded.media_seconds / 1000
    return {
        "video": stem,
        "frames": f"{encoded.frames} -> {out_frames}",
        "size": f"{originals[0].shape[1]}x{originals[0].shape[0]} -> {out_w}x{out_h}",
        "same": encoded.frames == out_frames == len(originals) and (out_w, out_h) == originals[0].shape[1::-1],
        "total_kbps": total,
        "streams": kbps,
        "x264_kbps": baseline.kbps,
        "x264_fidelity": baseline.fidelity,
        "fidelity": fidelity,
        "encode_fps": encoded.frames / encoded.wall_seconds,
        "decode_fps": decoded.frames / max(decoded.wall_seconds, 1e-9),
        "problems": decoded.problems,
    }


def _score(f: Fidelity) -> str:
    counts = f"({f.true_pos}/{f.reference}, {f.test})"
    if f.reference == 0:  # F1 is undefined without a reference person; report the false detections instead
        return f"no person in the original; {f.test} false detections {counts}"
    return f"{f.precision:.3f} / {f.recall:.3f} / {f.f1:.3f} {counts}"


def table(rows: list[dict]) -> str:
    lines = [
        "| video | frames | size | surveil kbps | per stream kbps | x264 crf23 kbps | surveil / x264 | "
        "person P / R / F1 (matched/reference, test detections) | x264 person P / R / F1 | encode fps | decode fps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["fidelity"]
        streams = ", ".join(f"{k} {v:.1f}" for k, v in r["streams"].items())
        lines.append(
            f"| {r['video']} | {r['frames']} | {r['size']} | {r['total_kbps']:.1f} | {streams} | "
            f"{r['x264_kbps']:.1f} | "
            f"{r['total_kbps'] / r['x264_kbps']:.2f} | {_score(f)} | {_score(r['x264_fidelity'])} | "
            f"{r['encode_fps']:.1f} | {r['decode_fps']:.1f} |"
        )
    return "\n".join(lines)


def below_target(rows: list[dict]) -> list[str]:
    """Videos whose frames or size differ, whose decode reported problems, or whose person F1 is under 0.9."""
    return [
        r["video"]
        for r in rows
        if not r["same"] or r["problems"] or (r["fidelity"].reference and r["fidelity"].f1 < 0.9)
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_facts(config: Config, max_frames: int | None) -> str:
    """One line naming what produced a report: the rate point, the date, the machine and, for each codec class, the
    weight file the edge's library picks and the sha256 prefix that identifies it on the wire."""
    import torch

    library = build_library(config)
    paths = {name: library.path_for(name) for name in sorted({*config.classes, FALLBACK_CLASS})}
    codecs = ", ".join(f"{name} {path.name} {file_sha256(path)[:16]}" for name, path in paths.items())
    length = "every frame" if max_frames is None else f"the first {max_frames} frames"
    return (
        f"q{config.codec.quality} {config.codec.tier}, {config.codec.refine_steps} refinement steps, {length}; "
        f"{datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads; codecs: {codecs}"
    )


def report(facts: str, rows: list[dict], videos: int, seconds: float) -> str:
    """`facts`, the table of `rows` and a summary line; names the videos still to come when `rows` is not all."""
    done = f"{len(rows)} videos" if len(rows) == videos else f"{len(rows)} of {videos} videos so far"
    failures = ", ".join(below_target(rows)) or "none"
    return (
        f"{facts}\n\n{table(rows)}\n\n{done} in {seconds:.0f} s; "
        f"below target (frames/size mismatch, F1 < 0.9 or decode problems): {failures}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-frames", type=int, default=None, help="frames per video (default: all)")
    parser.add_argument("--videos", nargs="+", default=list(VIDEOS))
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "out" / "benchmark",
        help="folder for the recordings, the recomposed videos and benchmark.md (default: out/benchmark)",
    )
    parser.add_argument(
        "--table", type=Path, metavar="FILE", help="also write the report here (the README copies docs/benchmark_qQ.md)"
    )
    parser.add_argument(
        "--quality", type=int, choices=CODEC_QUALITIES, help="codec rate point (default: config.yaml's)"
    )
    parser.add_argument(
        "--refine-steps", type=int, metavar="N", help="per-region latent refinement steps (default: config.yaml's)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = load_config(None)
    if args.quality is not None:
        config.codec.quality = args.quality
    if args.refine_steps is not None:
        config.codec.refine_steps = args.refine_steps
    facts = run_facts(config, args.max_frames)
    print(facts, file=sys.stderr, flush=True)
    detector = PersonDetector()
    rows = []
    started = time.monotonic()
    for name in args.videos:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows.append(benchmark_video(name, args.max_frames, detector, args.out, config))
        print(table(rows[-1:]), flush=True)
        # Rewritten after every video, so a run cut short still leaves the rows it measured.
        text = report(facts, rows, len(args.videos), time.monotonic() - started)
        for target in (args.out / "benchmark.md", args.table):
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text + "\n")
    failures = below_target(rows)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
