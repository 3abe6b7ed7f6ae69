"""Video ingest against real files from the shared data folder and a real RTSP server (scripts/rtsp_server.py)."""

from __future__ import annotations

import logging
import os
import random
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from itertools import islice, pairwise
from pathlib import Path

import av
import numpy as np
import pytest

from surveil.errors import SourceError
from surveil.ingest import VideoSource, open_source, probe_source
from surveil.paths import REPO_ROOT, find_data

VTEST = "videos/vtest_pets_480x360.mp4"  # h264, 480x360, 10 fps, 795 frames
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = REPO_ROOT / "scripts" / "rtsp_server.py"
INSTALL_SCRIPT = "scripts/install_rtsp_test_server.sh"


@pytest.fixture(scope="session")
def vtest() -> Path:
    path = find_data(VTEST)
    if path is None:
        pytest.skip(f"shared data not found: {VTEST} (expected under ../shared/data or SURVEIL_DATA_PATH)")
    return path


def _gst_rtsp_available() -> bool:
    check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", check], check=False, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rtsp_server(vtest: Path, tmp_path: Path) -> Iterator[Callable[[], tuple[str, subprocess.Popen[str]]]]:
    """Factory starting scripts/rtsp_server.py on a free loopback port; returns (url, process)."""
    if not _gst_rtsp_available():
        pytest.skip(f"GStreamer RTSP server not importable by {SYSTEM_PYTHON}; run {INSTALL_SCRIPT}")
    procs: list[subprocess.Popen[str]] = []

    def start() -> tuple[str, subprocess.Popen[str]]:
        # --port 0 lets the server pick the port and report it, so there is no race for a free one.
        log = tmp_path / f"rtsp_server_{len(procs)}.log"  # a file, so GStreamer's chatter cannot fill a pipe
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(RTSP_SERVER), "--file", str(vtest), "--port", "0", "--path", "cam1"],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        procs.append(proc)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=30):
                pytest.fail(f"rtsp_server.py printed no ready line within 30 s: {log.read_text()}")
        line = proc.stdout.readline().strip()
        if not line.startswith("ready rtsp://"):
            proc.kill()
            proc.wait()
            pytest.fail(f"rtsp_server.py did not start: {line!r} {log.read_text()}")
        return line.split(" ", 1)[1], proc

    yield start
    for proc in procs:
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.poll() is not None:  # already reaped by a failed start
            continue
        proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
        proc.terminate()
        try:
            assert proc.wait(timeout=10) == 0, "rtsp_server.py did not exit cleanly on SIGTERM"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


def _check_frames(frames: list, camera: str, width: int, height: int) -> None:
    assert [f.seq for f in frames] == list(range(len(frames)))
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in pairwise(pts)), pts
    for f in frames:
        assert f.camera == camera
        assert f.image.shape == (height, width, 3)
        assert f.image.dtype == np.uint8
        assert f.size == (width, height)
    assert frames[0].image.std() > 10, "decoded picture is flat"


def test_file_first_frames(vtest: Path) -> None:
    with open_source(str(vtest), camera="gate") as source:
        assert isinstance(source, VideoSource)
        assert (source.width, source.height) == (480, 360)
        assert source.fps == pytest.approx(10.0, rel=0.01)
        assert not source.is_live
        frames = list(islice(source, 20))
    _check_frames(frames, "gate", 480, 360)
    assert frames[0].pts == pytest.approx(0.0)
    assert frames[19].pts == pytest.approx(1.9, abs=1e-6)
    assert source.closed
    assert next(source, None) is None


def test_data_path_name_and_probe(vtest: Path) -> None:
    assert probe_source(VTEST) == (480, 360, pytest.approx(10.0, rel=0.01))
    assert probe_source(vtest.as_uri()) == probe_source(str(vtest))


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_video.mp4"
    with pytest.raises(SourceError, match="input not found") as info:
        open_source(str(missing))
    assert str(missing) in str(info.value)


def test_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError) as info:
        open_source(str(text))
    assert str(text) in str(info.value)
    assert "\n" not in str(info.value)


def test_file_without_video_stream(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    with av.open(str(wav), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = (np.sin(np.arange(800) / 5) * 3000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(SourceError, match="no video stream"):
        open_source(str(wav))


def test_corrupt_packets_are_skipped(vtest: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with av.open(str(vtest)) as container:
        spans = [(p.pos, p.size) for p in islice(container.demux(video=0), 12) if p.size]
    data = bytearray(vtest.read_bytes())
    rng = random.Random(0)
    for pos, size in spans[5:8]:  # three inter-coded packets after the first keyframe
        data[pos : pos + size] = rng.randbytes(size)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(data)

    with caplog.at_level(logging.WARNING, logger="surveil.ingest.source"), open_source(str(corrupt)) as source:
        frames = list(islice(source, 40))
    assert len(frames) == 40
    _check_frames(frames, "cam1", 480, 360)
    assert any("undecodable packet" in r.getMessage() for r in caplog.records)


def test_realtime_pacing(vtest: Path) -> None:
    def time_frames(realtime: bool) -> float:
        with open_source(str(vtest), realtime=realtime) as source:
            next(source)  # the clock starts with the first frame
            start = time.monotonic()
            frames = list(islice(source, 10))
            elapsed = time.monotonic() - start
        assert frames[-1].pts == pytest.approx(1.0, abs=1e-6)
        return elapsed

    paced = time_frames(realtime=True)
    assert 0.8 <= paced < 5.0, f"10 frames at 10 fps took {paced:.2f} s"
    assert time_frames(realtime=False) < 0.8


def test_rtsp_reads_frames(rtsp_server: Callable[[], tuple[str, subprocess.Popen[str]]]) -> None:
    url, _ = rtsp_server()
    with open_source(url, camera="rtsp", realtime=True, open_timeout_s=10.0) as source:
        assert source.is_live
        assert (source.width, source.height) == (480, 360)
        assert source.fps == pytest.approx(10.0, rel=0.05)
        frames = list(islice(source, 20))
    assert len(frames) == 20
    _check_frames(frames, "rtsp", 480, 360)
    assert frames[0].pts == pytest.approx(0.0)


def test_rtsp_read_timeout(rtsp_server: Callable[[], tuple[str, subprocess.Popen[str]]]) -> None:
    url, proc = rtsp_server()
    with open_source(url, open_timeout_s=10.0, read_timeout_s=1.5) as source:
        next(source)
        os.kill(proc.pid, signal.SIGSTOP)  # the server freezes mid-stream with the connection still open
        try:
            start = time.monotonic()
            with pytest.raises(SourceError, match="no data from"):
                for _ in source:
                    pass
            assert time.monotonic() - start < 10.0
        finally:
            os.kill(proc.pid, signal.SIGCONT)


def test_rtsp_connection_refused() -> None:
    url = f"rtsp://127.0.0.1:{_free_port()}/cam1"
    start = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source(url, open_timeout_s=2.0)
    assert time.monotonic() - start < 5.0
    assert url in str(info.value)


def test_rtsp_silent_server_times_out() -> None:
    # A socket that accepts connections (via the kernel's backlog) but never answers the RTSP handshake.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        url = f"rtsp://127.0.0.1:{sock.getsockname()[1]}/cam1"
        start = time.monotonic()
        with pytest.raises(SourceError, match="no answer") as info:
            open_source(url, open_timeout_s=2.0)
        elapsed = time.monotonic() - start
    assert 1.5 <= elapsed < 5.0
    assert url in str(info.value)
