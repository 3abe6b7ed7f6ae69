"""surveil: a smart-surveillance region-stream pipeline (edge encoder and monitoring station)."""

__version__ = "0.1.0"
