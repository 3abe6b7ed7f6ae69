"""The ``surveil`` command's failure paths, run as a user runs it: a subprocess, exit status 2, one ``error:`` line.

Every case runs the real CLI (``python -m surveil.cli``) in a subprocess and checks that the user gets a one-line
message naming the problem, never a traceback. The decode cases work on a short recording made by the real encoder
with the untrained codecs of ``conftest.py``, cut short or with one byte flipped; decoding those may also log WARNING
lines on stderr before the closing ``error:`` line.

Starting the CLI costs several seconds (torch, compressai, YOLO), so the independent cases of this file are started
together in one pool (``cli_runs``) and each test checks its own case.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import yaml

from surveil.stream import decode_packet
from surveil.types import FrameEnd, FrameRegions

CLI = [sys.executable, "-m", "surveil.cli"]
FRAMES = 6
PARALLEL = 3  # CLI processes at once: enough to overlap start-up, few enough for a 2-core machine
_U32 = struct.Struct(">I")
MAGIC_LEN = 8  # b"SURVREC1"


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # One torch thread: on a busy machine, OpenMP threads waiting on each other make decoding many times slower.
    env = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Record:
    """Where one record of a recording sits in the file, and its parts."""

    start: int
    end: int
    parts: list[bytes]
    part_offsets: list[int]  # file offset of each part's first byte

    @property
    def topic(self) -> str:
        return self.parts[0].decode()


def _records(data: bytes) -> list[Record]:
    """Parse a recording independently of the reader under test (layout in surveil/stream/recording.py)."""
    assert data[:MAGIC_LEN] == b"SURVREC1"
    records, pos = [], MAGIC_LEN
    while pos < len(data):
        start = pos
        (n_parts,) = _U32.unpack_from(data, pos)
        pos += _U32.size
        parts, offsets = [], []
        for _ in range(n_parts):
            (length,) = _U32.unpack_from(data, pos)
            pos += _U32.size
            offsets.append(pos)
            parts.append(data[pos : pos + length])
            pos += length
        records.append(Record(start, pos, parts, offsets))
    assert pos == len(data)
    return records


def _events(path: Path) -> dict[int, dict]:
    return {e["seq"]: e for e in map(json.loads, path.read_text().splitlines())}


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit status 2, no traceback, and stderr exactly one ``error:`` line holding every needle."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _error_line_after_warnings(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Like ``_one_error_line``, but the problem may also have been logged (as WARNING records) while decoding."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert all(" WARNING surveil." in line for line in lines[:-1]), result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.fixture(scope="session")
def encoded(
    untrained_codec_config: Path, vtest: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A short recording of vtest made by ``surveil encode`` with the untrained codecs, and that run's result."""
    folder = tmp_path_factory.mktemp("cli_recording")
    path = folder / "vtest.rec"
    args = ["--input", str(vtest), "--record", str(path), "--max-frames", str(FRAMES)]
    result = _run(["encode", "--config", str(untrained_codec_config), *args], cwd=folder)
    assert result.returncode == 0, result.stderr
    return path, result


@pytest.fixture(scope="session")
def recording(encoded: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return encoded[0]


@pytest.fixture(scope="session")
def clean_events(recording: Path, untrained_codec_config: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Per-frame events of the intact recording, decoded in this process (the reference for the damaged copies)."""
    import torch

    from surveil.config import load_config
    from surveil.station.run import run_decode

    events = tmp_path_factory.mktemp("cli_clean") / "events.jsonl"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses (see _run)
    try:
        result = run_decode(load_config(untrained_codec_config), str(recording), output=None, events=events)
    finally:
        torch.set_num_threads(threads)
    assert result.problems == []
    assert result.frames == FRAMES
    return _events(events)


@dataclass
class Truncated:
    path: Path
    whole_frames: list[int]  # seqs of the frames whose FrameEnd lies wholly before the cut


def _frame_ends(records: list[Record]) -> list[Record]:
    return [r for r in records if r.topic.endswith("/frame")]


def _cut_copy(recording: Path, cut: int, path: Path) -> Truncated:
    data = recording.read_bytes()
    whole = [decode_packet(r.parts).seq for r in _frame_ends(_records(data)) if r.end <= cut]
    assert 0 < len(whole) < FRAMES
    path.write_bytes(data[:cut])
    return Truncated(path, whole)


@pytest.fixture(scope="session")
def truncated(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Truncated:
    """The recording cut in the middle of the first record after the end of frame 2."""
    records = _records(recording.read_bytes())
    after = records.index(_frame_ends(records)[2]) + 1
    cut = (records[after].start + records[after].end) // 2
    return _cut_copy(recording, cut, tmp_path_factory.mktemp("cli_truncated") / "cut.rec")


@pytest.fixture(scope="session")
def cut_at_record(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Truncated:
    """The recording cut right after the end of frame 3, as an encoder killed between two writes leaves it."""
    cut = _frame_ends(_records(recording.read_bytes()))[3].end
    return _cut_copy(recording, cut, tmp_path_factory.mktemp("cli_cut_at_record") / "cut.rec")


@dataclass
class Flipped:
    path: Path
    seq: int  # the frame whose region packet was damaged
    codec_class: str


@pytest.fixture(scope="session")
def flipped(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Flipped:
    """The recording with one byte flipped in the middle of a region packet (with coded pixels) of a middle frame."""
    data = bytearray(recording.read_bytes())
    candidates = []
    for record in _records(bytes(data)):
        packet = decode_packet(record.parts)
        if isinstance(packet, FrameRegions) and any(region.strings for region in packet.regions):
            candidates.append((abs(packet.seq - FRAMES // 2), record, packet))
    assert candidates, "vtest shows people in every frame: some region must carry coded pixels"
    _, target, packet = min(candidates, key=lambda c: c[0])
    biggest = max(range(1, len(target.parts)), key=lambda i: len(target.parts[i]))
    data[target.part_offsets[biggest] + len(target.parts[biggest]) // 2] ^= 0xFF
    path = tmp_path_factory.mktemp("cli_flipped") / "flipped.rec"
    path.write_bytes(bytes(data))
    return Flipped(path, packet.seq, packet.codec_class)


@dataclass
class CliRuns:
    """The results of the CLI cases, by name, and the folder their outputs went to."""

    work: Path
    results: dict[str, subprocess.CompletedProcess[str]]

    def __getitem__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.results[name]

    def output(self, name: str, ext: str) -> Path:
        """A file a decode case wrote: ``output("decode_truncated", "mp4")``."""
        return self.work / f"{name}.{ext}"


@pytest.fixture(scope="session")
def cli_runs(
    untrained_codec_config: Path,
    truncated: Truncated,
    cut_at_record: Truncated,
    flipped: Flipped,
    vtest: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> CliRuns:
    """Every failure case of this file run through the CLI, a few at a time."""
    work = tmp_path_factory.mktemp("cli_cases")
    config = str(untrained_codec_config)

    not_a_video = work / "notes.mp4"
    not_a_video.write_text("this is not a video\n" * 100)

    no_detector = work / "no_detector.yaml"
    values = yaml.safe_load(untrained_codec_config.read_text())
    values["detector"]["weights"] = str(work / "nowhere" / "yolo-missing-seg.pt")
    no_detector.write_text(yaml.safe_dump(values))

    unknown_key = work / "unknown_key.yaml"
    unknown_key.write_text(untrained_codec_config.read_text() + "\nbackground_codec: libx265\n")

    corrupt_weights = work / "corrupt_weights"
    corrupt_weights.mkdir()
    corrupt_config = work / "corrupt_weights.yaml"
    values = yaml.safe_load(untrained_codec_config.read_text())
    values["codec"]["weights_dir"] = str(corrupt_weights)
    (corrupt_weights / f"generic_q{values['codec']['quality']}.pt").write_bytes(b"PK\x03\x04 not a torch file")
    corrupt_config.write_text(yaml.safe_dump(values))

    def encode(source: str, cfg: str = config) -> list[str]:
        return ["encode", "--config", cfg, "--input", source, "--record", str(work / "out.rec")]

    def decode(source: Path, name: str) -> list[str]:
        outputs = ["--output", str(work / f"{name}.mp4"), "--events", str(work / f"{name}.jsonl")]
        return ["decode", "--config", config, "--input", str(source), *outputs]

    cases: dict[str, list[str]] = {
        # The slow decodes first, so the quick cases fill the pool around them.
        "decode_flipped": decode(flipped.path, "decode_flipped"),
        "decode_truncated": decode(truncated.path, "decode_truncated"),
        "decode_cut_at_record": decode(cut_at_record.path, "decode_cut_at_record"),
        "missing_input": encode(str(work / "no_such_video.mp4")),
        "not_a_video": encode(str(not_a_video)),
        "rtsp_refused": encode(f"rtsp://127.0.0.1:{_free_port()}/x"),
        "missing_detector": encode(str(vtest), str(no_detector)),
        "unknown_key": encode(str(vtest), str(unknown_key)),
        "decode_missing": decode(work / "no_such.rec", "decode_missing"),
        "decode_not_recording": decode(vtest, "decode_not_recording"),
        "decode_bad_output": [
            "decode",
            "--config",
            config,
            "--input",
            str(truncated.path),
            "--output",
            str(work / "frames.txt"),
        ],
        "corrupt_weights": encode(str(vtest), str(corrupt_config)),
    }
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {name: pool.submit(_run, args, work) for name, args in cases.items()}
        return CliRuns(work, {name: future.result() for name, future in futures.items()})


def test_missing_input(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["missing_input"], "input not found", "no_such_video.mp4")


def test_input_not_a_video(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["not_a_video"], "not a video", "notes.mp4")


def test_rtsp_nobody_answers(cli_runs: CliRuns) -> None:
    line = _one_error_line(cli_runs["rtsp_refused"], "rtsp://127.0.0.1:")
    assert "cannot open" in line or "no answer" in line, line


def test_missing_detector_weights(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["missing_detector"], "detector weights not found", "yolo-missing-seg.pt")


def test_config_with_unknown_key(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["unknown_key"], "unknown config key 'background_codec'")


def test_decode_to_an_unknown_video_type(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["decode_bad_output"], "unknown video type", "frames.txt")


def test_corrupt_codec_weights(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["corrupt_weights"], "cannot load codec weights", "generic_q")


def test_decode_missing_recording(cli_runs: CliRuns) -> None:
    _one_error_line(cli_runs["decode_missing"], "input not found", "no_such.rec")
    assert cli_runs["decode_missing"].stdout == ""


def test_decode_not_a_recording(cli_runs: CliRuns, vtest: Path) -> None:
    _one_error_line(cli_runs["decode_not_recording"], "not a surveil recording", vtest.name)


def _check_whole_frames(cli_runs: CliRuns, case: str, cut: Truncated, clean_events: dict[int, dict]) -> None:
    """The frames before the cut are decoded, written to the video and identical to those of the intact recording."""
    result = cli_runs[case]
    frames = len(cut.whole_frames)
    assert f"decode: {frames} frames" in result.stdout, result.stdout
    assert "recomposed 480x360" in result.stdout
    assert _video_frames(cli_runs.output(case, "mp4")) == frames
    events = _events(cli_runs.output(case, "jsonl"))
    assert sorted(events) == cut.whole_frames
    for seq, event in events.items():
        assert event == clean_events[seq], seq


def test_decode_truncated_recording(cli_runs: CliRuns, truncated: Truncated, clean_events: dict[int, dict]) -> None:
    _error_line_after_warnings(cli_runs["decode_truncated"], truncated.path.name, "ends inside", "whole records")
    _check_whole_frames(cli_runs, "decode_truncated", truncated, clean_events)


def test_decode_recording_cut_between_records(
    cli_runs: CliRuns, cut_at_record: Truncated, clean_events: dict[int, dict]
) -> None:
    """No partial record is left to notice, but the stream end is missing: still reported."""
    _one_error_line(cli_runs["decode_cut_at_record"], cut_at_record.path.name, "end-of-stream")
    _check_whole_frames(cli_runs, "decode_cut_at_record", cut_at_record, clean_events)


def test_decode_flipped_byte(
    cli_runs: CliRuns,
    flipped: Flipped,
    clean_events: dict[int, dict],
) -> None:
    result = cli_runs["decode_flipped"]
    _error_line_after_warnings(result, "1 corrupt packets skipped")
    assert f"decode: {FRAMES} frames" in result.stdout, result.stdout
    assert _video_frames(cli_runs.output("decode_flipped", "mp4")) == FRAMES
    events = _events(cli_runs.output("decode_flipped", "jsonl"))
    assert sorted(events) == sorted(clean_events)
    for seq, event in events.items():
        if seq != flipped.seq:
            assert event == clean_events[seq], seq
    damaged = events[flipped.seq]
    assert damaged["md5"] != clean_events[flipped.seq]["md5"]
    assert all(r["class"] != flipped.codec_class for r in damaged["regions"])
    assert damaged["regions"] == [r for r in clean_events[flipped.seq]["regions"] if r["class"] != flipped.codec_class]


def test_clean_encode_is_quiet(encoded: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The control case: a run that goes well exits 0, prints its summary and nothing on stderr."""
    path, result = encoded
    assert result.stderr == ""
    assert f"encode: {FRAMES} frames" in result.stdout
    records = _records(path.read_bytes())  # also checks this file's own parser on an intact recording
    ends = [decode_packet(r.parts) for r in _frame_ends(records)]
    assert [e.seq for e in ends if isinstance(e, FrameEnd)] == list(range(FRAMES))
    assert records[0].topic.endswith("/bg")
    assert records[-1].topic.endswith("/end")


def test_eval_codec_offers_every_rounding() -> None:
    from surveil.cli import build_parser
    from surveil.codecs.refine import ROUNDINGS

    parser = build_parser()
    for rounding in ROUNDINGS:
        assert parser.parse_args(["eval-codec", "--refine-rounding", rounding]).refine_rounding == rounding
    assert parser.parse_args(["eval-codec"]).refine_rounding == "sga"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval-codec", "--refine-rounding", "noise"])


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_eval_codec_refuses_a_bad_step_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from surveil.cli import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["eval-codec", "--refine-steps", value])
    assert info.value.code == 2
    assert "expected a whole number, 0 or more" in capsys.readouterr().err


def test_eval_codec_takes_a_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    from surveil.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval-codec"]).workers == 1
    assert parser.parse_args(["eval-codec", "--workers", "3"]).workers == 3
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["eval-codec", "--workers", "0"])
    assert info.value.code == 2
    assert "expected a positive whole number" in capsys.readouterr().err
