"""Video input: open files and network streams as iterators of RGB frames."""

from surveil.ingest.source import VideoSource, open_source, probe_source

__all__ = ["VideoSource", "open_source", "probe_source"]
