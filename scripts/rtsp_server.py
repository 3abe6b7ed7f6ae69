#!/usr/bin/python3
"""Serve an H.264 MP4 file over RTSP on 127.0.0.1, for tests.

Run with the system Python (``/usr/bin/python3``), where GStreamer's GObject bindings live; install them with
``scripts/install_rtsp_test_server.sh``. Each client gets its own pipeline that demuxes the file from the start and
plays it once at its native rate (no loop). Prints ``ready rtsp://127.0.0.1:PORT/PATH`` on stdout once listening
(``--port 0`` picks a free port) and exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HOST = "127.0.0.1"


def launch_string(path: Path) -> str:
    """gst-launch pipeline for one client: demux the MP4's H.264 track and packetise it as RTP."""
    location = str(path).replace("\\", "\\\\").replace('"', '\\"')
    # config-interval=-1 repeats SPS/PPS before every keyframe so a decoder can start without the SDP's copy.
    return f'( filesrc location="{location}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, type=Path, help="H.264 MP4 file to serve")
    parser.add_argument("--port", type=int, default=8554, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--path", default="stream", help="mount path, e.g. 'stream' or '/cam1'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.file.expanduser().resolve()
    if not path.is_file():
        print(f"rtsp_server: file not found: {path}", file=sys.stderr)
        return 2
    mount = "/" + args.path.strip("/")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_string(path))
    factory.set_shared(False)  # a fresh pipeline per client, so each one starts at the first frame
    server.get_mount_points().add_factory(mount, factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {HOST}:{args.port}", file=sys.stderr)
        return 1

    def stop() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)

    print(f"ready rtsp://{HOST}:{server.get_bound_port()}{mount}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
