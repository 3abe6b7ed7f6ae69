"""The ``surveil`` command: edge encoding, station decoding and the offline pipelines."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from surveil.config import CODEC_QUALITIES
from surveil.errors import SurveilError
from surveil.paths import PROJECT_WEIGHTS

logger = logging.getLogger("surveil")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="configuration file (default: config.yaml)")


def _cmd_encode(args: argparse.Namespace) -> int:
    from surveil.config import load_config
    from surveil.encode import run_encode

    config = load_config(args.config)
    if not args.publish and not args.record:
        raise SurveilError("nothing to do: give --publish ADDR and/or --record FILE")
    result = run_encode(
        config,
        args.input or config.input,
        publish=args.publish,
        record=args.record,
        max_frames=args.max_frames,
        realtime=args.realtime,
        wait_subscriber_s=args.wait_subscriber,
        progress=sys.stderr.isatty(),
    )
    print(result.summary())
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from surveil.config import load_config
    from surveil.station.run import run_decode

    config = load_config(args.config)
    result = run_decode(
        config,
        args.input,
        output=args.output,
        events=args.events,
        max_frames=args.max_frames,
        topics=args.topics,
        idle_timeout_s=args.idle_timeout,
        progress=sys.stderr.isatty(),
    )
    print(result.summary())
    if result.problems:
        print("error: " + "; ".join(result.problems), file=sys.stderr)
        return 2
    return 0


def _cmd_build_dataset(args: argparse.Namespace) -> int:
    from surveil.config import load_config
    from surveil.pipelines.dataset import build_datasets

    for index in build_datasets(args.codec_classes, load_config(args.config)):
        print(f"{index['codec_class']}/{index['split']}: {index['total']} images from {index['sources']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from surveil.codecs.library import quality_lambda, weight_file
    from surveil.paths import REPO_ROOT
    from surveil.pipelines.train import TrainSettings, train

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or weight_file(PROJECT_WEIGHTS, args.codec_class, args.quality, args.tier)
    lmbda = args.lmbda if args.lmbda is not None else quality_lambda(args.codec_class, args.tier, args.quality)
    if lmbda is None:
        ladder = f"{args.codec_class} {args.tier}"
        raise SurveilError(f"quality {args.quality} has no default lambda on the {ladder} ladder: give --lambda")
    settings = TrainSettings(
        codec_class=args.codec_class,
        quality=args.quality,
        lmbda=lmbda,
        steps=args.steps,
        out=out,
        run_dir=args.run_dir or REPO_ROOT / "runs" / out.stem,
        init=args.init,
        dataset=args.dataset,
        batch=args.batch,
        patch=args.patch,
        lr=args.lr,
        device=args.device,
        object_loss=args.object_loss,
        tier=args.tier,
        precision=args.precision,
        seed=args.seed,
    )
    print(f"wrote {train(settings)}")
    return 0


def _cmd_eval_codec(args: argparse.Namespace) -> int:
    from surveil.paths import REPO_ROOT
    from surveil.pipelines.evaluate_codec import run_codec_evaluation

    cache_dir = None if args.no_cache else args.cache_dir or REPO_ROOT / "out" / "eval_cache"
    print(
        run_codec_evaluation(
            args.codec_class,
            args.qualities,
            args.out,
            tuple(args.tiers),
            args.weights_dir,
            args.refine_steps,
            cache_dir,
            args.refine_rounding,
            args.workers,
        )
    )
    return 0


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``, else a usage error saying so."""
    wanted = "a positive whole number" if minimum == 1 else f"a whole number, {minimum} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surveil", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="encode a video source into a region stream")
    enc.add_argument("--input", help="file, rtsp:// URL or data-path name (default: config 'input')")
    _add_config(enc)
    enc.add_argument("--publish", help="ZeroMQ address to publish on, e.g. tcp://127.0.0.1:5555")
    enc.add_argument("--record", type=Path, help="recording file to write")
    enc.add_argument("--max-frames", type=_whole_number(1), default=None)
    enc.add_argument("--realtime", action="store_true", help="pace a file replay at its frame rate")
    enc.add_argument(
        "--wait-subscriber",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --publish: wait up to this long for a subscriber before the first frame",
    )
    enc.set_defaults(func=_cmd_encode)

    dec = sub.add_parser("decode", help="decode a recording or a live stream into recomposed video")
    dec.add_argument("--input", required=True, help="recording file or ZeroMQ address (tcp://host:port)")
    dec.add_argument("--output", type=Path, required=True, help="recomposed video to write (.mp4)")
    dec.add_argument("--events", type=Path, default=None, help="per-frame JSON lines")
    dec.add_argument("--max-frames", type=_whole_number(1), default=None)
    dec.add_argument("--topics", nargs="*", default=None, help="topic prefixes to subscribe to (default: all)")
    dec.add_argument("--idle-timeout", type=float, default=15.0, help="live input: stop after this long silent")
    _add_config(dec)
    dec.set_defaults(func=_cmd_decode)

    ds = sub.add_parser("build-dataset", help="cut class crops from the shared videos and images")
    ds.add_argument("--class", dest="codec_classes", nargs="+", required=True, help="e.g. generic person")
    _add_config(ds)
    ds.set_defaults(func=_cmd_build_dataset)

    tr = sub.add_parser("train", help="train a region codec (resumes from its run folder)")
    tr.add_argument("--class", dest="codec_class", required=True)
    tr.add_argument("--quality", type=int, required=True)
    tr.add_argument("--tier", choices=("fast", "high"), default="fast", help="model family (default: fast)")
    tr.add_argument(
        "--lambda",
        dest="lmbda",
        type=float,
        default=None,
        help="rate-distortion trade-off (default: the class and tier's ladder, see codecs/library.py quality_lambda)",
    )
    tr.add_argument(
        "--steps",
        type=int,
        required=True,
        help="0 writes the --init weights unchanged under this class and quality (their lambda must be its own)",
    )
    tr.add_argument("--init", type=Path, default=None, help="weights to fine-tune from")
    tr.add_argument("--dataset", default=None, help="dataset class folder (default: --class)")
    tr.add_argument("--out", type=Path, default=None)
    tr.add_argument("--run-dir", type=Path, default=None)
    tr.add_argument("--batch", type=int, default=8)
    tr.add_argument("--patch", type=int, default=128)
    tr.add_argument("--lr", type=float, default=3e-4)
    tr.add_argument("--device", default="cpu")
    tr.add_argument(
        "--seed", type=int, default=0, help="patch sampling and noise (another seed gives a continuation new patches)"
    )
    tr.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: transforms under bfloat16 autocast, entropy models in float32 (about 1.75x faster on a CPU "
        "with AVX-512 BF16; emulated, and many times slower than fp32, on a CPU without it)",
    )
    loss = tr.add_mutually_exclusive_group()
    loss.add_argument(
        "--whole-patch-loss",
        dest="object_loss",
        action="store_false",
        default=None,
        help="judge distortion on every pixel, fill included (the default for the generic dataset)",
    )
    loss.add_argument(
        "--object-loss",
        dest="object_loss",
        action="store_true",
        default=None,
        help="judge distortion on the object's pixels only (the default for every class dataset but generic)",
    )
    tr.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is far faster on a busy machine)",
    )
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "eval-codec", help="RD (PSNR, MS-SSIM) of a class's codecs against generic, JPEG, WebP, x265, AV1"
    )
    ev.add_argument("--class", dest="codec_class", default="person")
    ev.add_argument("--qualities", type=int, nargs="+", choices=CODEC_QUALITIES, default=list(CODEC_QUALITIES))
    ev.add_argument("--tiers", nargs="+", choices=("fast", "high"), default=["fast", "high"])
    ev.add_argument(
        "--weights-dir", type=Path, default=PROJECT_WEIGHTS, help="where the codecs are (default: the project's)"
    )
    ev.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    ev.add_argument(
        "--refine-steps",
        type=_whole_number(0),
        default=0,
        metavar="N",
        help="also evaluate each tier with each crop's latents refined for N steps (the edge's codec.refine_steps)",
    )
    ev.add_argument(
        "--refine-rounding",
        choices=("sga", "ste"),  # codecs/refine.py ROUNDINGS, spelled out: the parser does not import torch
        default="sga",
        help="how refinement rounds the latents (codecs/refine.py): sga, the edge's (default), or ste, the "
        "straight-through rounding of reports measured before SGA",
    )
    ev.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="reuse learned-codec points measured before with the same weights, crops and code (out/eval_cache)",
    )
    ev.add_argument("--no-cache", action="store_true", help="measure every point again, and store none")
    ev.add_argument(
        "--workers",
        type=_whole_number(1),
        default=1,
        metavar="N",
        help="measure the points in N processes of one torch thread each (default 1: in this process, with its "
        "threads); the cache keys points by the thread count, so runs reuse each other's points only with the same "
        "--workers setting, or with OMP_NUM_THREADS=1 in place of it",
    )
    ev.set_defaults(func=_cmd_eval_codec)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    if not args.verbose and not sys.warnoptions:
        # Libraries' deprecation notices (torch warns on every compressai import) are for developers, not operators:
        # stderr stays for the one-line error.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except SurveilError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
