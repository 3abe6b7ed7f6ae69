"""End to end on a real video with the committed codecs: encode -> recording / ZeroMQ -> decode -> recomposed video."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import av
import pytest

from surveil.config import load_config
from surveil.paths import find_data

VTEST = "videos/vtest_pets_480x360.mp4"
FRAMES = 8
CLI = [sys.executable, "-m", "surveil.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def vtest() -> Path:
    path = find_data(VTEST)
    if path is None:
        pytest.skip(f"shared data not found: {VTEST}")
    return path


@pytest.fixture(scope="module")
def recorded(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    recording = tmp_path_factory.mktemp("e2e") / "vtest.rec"
    result = _run(["encode", "--input", str(vtest), "--record", str(recording), "--max-frames", str(FRAMES)])
    assert result.returncode == 0, result.stderr
    return recording, result


def test_encode_summary(recorded: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = recorded
    out = result.stdout
    assert f"encode: {FRAMES} frames" in out
    for stream in ("total", "bg", "person", "meta", "stage ms/frame"):
        assert stream in out, out


def test_recording_decodes_to_same_frames(
    recorded: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    recording, _ = recorded
    video, events = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    result = _run(["decode", "--input", str(recording), "--output", str(video), "--events", str(events)])
    assert result.returncode == 0, result.stderr
    assert f"decode: {FRAMES} frames" in result.stdout
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FRAMES
    assert (frames[0].width, frames[0].height) == (480, 360)
    lines = _events(events)
    assert [e["seq"] for e in lines] == list(range(FRAMES))
    people = [r for e in lines for r in e["regions"] if r["class"] == "person"]
    assert len(people) >= 3 * FRAMES, "vtest shows several people in every frame"
    default_person_codec = f"msh-n64m96/person/q{load_config().codec.quality}/"  # the configured rate point
    assert all(r["codec"].startswith(default_person_codec) and r["bytes"] > 0 for r in people)


def test_topic_selection_drops_a_class(recorded: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """A station not cleared for people asks only for the background and vehicles: no person region reaches it."""
    recording, _ = recorded
    events = tmp_path / "events.jsonl"
    result = _run(
        [
            "decode",
            "--input",
            str(recording),
            "--output",
            str(tmp_path / "o.mp4"),
            "--events",
            str(events),
            "--topics",
            "cam1/bg",
            "cam1/obj/vehicle",
        ]
    )
    assert result.returncode == 0, result.stderr
    lines = _events(events)
    assert len(lines) == FRAMES
    assert {r["class"] for e in lines for r in e["regions"]} <= {"vehicle"}
    assert "person" not in result.stdout


def test_live_stream_equals_recording(vtest: Path, tmp_path: Path) -> None:
    """encode --publish and decode --input tcp:// at the same time give bit-identical frames to the recording path."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    live_events, recording, recorded_events = tmp_path / "live.jsonl", tmp_path / "r.rec", tmp_path / "rec.jsonl"
    station = subprocess.Popen(
        [
            *CLI,
            "decode",
            "--input",
            address,
            "--output",
            str(tmp_path / "live.mp4"),
            "--events",
            str(live_events),
            "--idle-timeout",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    try:
        edge = _run(
            [
                "encode",
                "--input",
                str(vtest),
                "--publish",
                address,
                "--record",
                str(recording),
                "--max-frames",
                str(FRAMES),
                "--wait-subscriber",
                "60",
            ]
        )
        assert edge.returncode == 0, edge.stderr
        _, err = station.communicate(timeout=180)
    finally:
        station.kill()
    assert station.returncode == 0, err
    replay = _run(
        ["decode", "--input", str(recording), "--output", str(tmp_path / "r.mp4"), "--events", str(recorded_events)]
    )
    assert replay.returncode == 0, replay.stderr
    live = [(e["seq"], e["md5"]) for e in _events(live_events)]
    assert len(live) == FRAMES
    assert live == [(e["seq"], e["md5"]) for e in _events(recorded_events)]


def test_faces_travel_apart_and_a_station_not_cleared_for_them_never_sees_them(tmp_path: Path) -> None:
    """Town Centre with faces enabled: faces are regions of their own under <camera>/obj/face, children of persons;
    a station that subscribes to everything but faces receives persons with the face pixels left out."""
    video = find_data("videos/towncentre_pedestrians_1080p.mp4")
    if video is None:
        pytest.skip("shared data not found: Town Centre clip")
    config = tmp_path / "faces.yaml"
    config.write_text("faces:\n  enabled: true\n")
    recording = tmp_path / "tc.rec"
    frames = 2
    result = _run(
        ["encode", "--config", str(config), "--input", str(video), "--record", str(recording), "--max-frames", "2"]
    )
    assert result.returncode == 0, result.stderr
    assert "face" in result.stdout  # its own stream in the summary

    def decode(name: str, *topics: str) -> list[dict]:
        events = tmp_path / f"{name}.jsonl"
        args = ["decode", "--config", str(config), "--input", str(recording), "--output", str(tmp_path / f"{name}.mp4")]
        decoded = _run([*args, "--events", str(events), *(["--topics", *topics] if topics else [])])
        assert decoded.returncode == 0, decoded.stderr
        lines = _events(events)
        assert len(lines) == frames
        return [r for e in lines for r in e["regions"]]

    everything = decode("all")
    faces = [r for r in everything if r["class"] == "face"]
    person_ids = {r["id"] for r in everything if r["class"] == "person"}
    assert faces, "Town Centre's first frames show faces"
    assert all(r["parent"] in person_ids and r["codec"].split("/")[1] in ("face", "generic") for r in faces)
    cleared = decode("no_faces", "cam1/bg", "cam1/obj/person", "cam1/obj/generic", "cam1/obj/vehicle", "cam1/obj/bag")
    assert not [r for r in cleared if r["class"] == "face"]
    assert sum(r["class"] == "person" for r in cleared) == sum(r["class"] == "person" for r in everything)


def _person_bytes(recording: Path, tmp_path: Path) -> list[int]:
    """Payload bytes of every person region the station decodes from a recording (all FRAMES frames decoded)."""
    events = tmp_path / f"{recording.stem}.jsonl"
    result = _run(["decode", "--input", str(recording), "--output", str(tmp_path / "o.mp4"), "--events", str(events)])
    assert result.returncode == 0, result.stderr
    assert f"decode: {FRAMES} frames" in result.stdout
    return [r["bytes"] for e in _events(events) for r in e["regions"] if r["class"] == "person"]


def _record(vtest: Path, tmp_path: Path, name: str, codec_yaml: str) -> Path:
    """The first FRAMES frames encoded to a recording with this ``codec:`` section."""
    config = tmp_path / f"{name}.yaml"
    config.write_text("codec:\n" + codec_yaml)
    recording = tmp_path / f"{name}.rec"
    args = ["encode", "--config", str(config), "--input", str(vtest), "--record", str(recording)]
    result = _run([*args, "--max-frames", str(FRAMES)])
    assert result.returncode == 0, result.stderr
    return recording


def _assert_same_regions_fewer_bytes(plain: list[int], better: list[int]) -> None:
    assert len(better) == len(plain) >= 3 * FRAMES
    assert all(b > 0 for b in better)
    assert sum(better) < 0.99 * sum(plain), (sum(plain), sum(better))


def test_refined_regions_cost_fewer_bytes_and_decode(
    vtest: Path, recorded: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """codec.refine_steps changes only the edge's encoder: the same regions, fewer person bytes (6.3% fewer on
    these frames at 20 steps, 2.7% with the straight-through rounding SGA replaced; the refinement lowers the
    rate-distortion cost, of which bytes are one part), the same decoder."""
    refined = _record(vtest, tmp_path, "refined", "  refine_steps: 20\n")
    plain, better = _person_bytes(recorded[0], tmp_path), _person_bytes(refined, tmp_path)
    _assert_same_regions_fewer_bytes(plain, better)


def test_refined_high_tier_regions_cost_fewer_bytes_and_decode(vtest: Path, tmp_path: Path) -> None:
    """The same with the high tier (7.4% fewer): its refinement costs the rate under the mixtures and the checkerboard
    context."""
    plain = _person_bytes(_record(vtest, tmp_path, "high", "  tier: high\n"), tmp_path)
    better = _person_bytes(_record(vtest, tmp_path, "high_refined", "  tier: high\n  refine_steps: 20\n"), tmp_path)
    _assert_same_regions_fewer_bytes(plain, better)
