"""Learned-codec rate points kept between evaluations, so a re-run measures only the curves whose inputs changed.

A point is reused only when everything that decides its numbers is the same: the weight file's bytes, the crops'
pixels and masks, the refinement steps, the source of the code that encodes, decodes and scores (the codec package,
fidelity.py and the caller's own measuring functions), the versions of torch, CompressAI and numpy, and the torch
thread count (the times depend on it). Anything else changes the key, and the point is measured again. Times of a
reused point are those of the run that measured it; the report says how many points were reused.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from surveil.codecs.model import file_sha256

logger = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[1]
_CODE_FILES = (*sorted((_PACKAGE / "codecs").glob("*.py")), _PACKAGE / "pipelines" / "fidelity.py")


def crops_digest(crops: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """sha256 over every crop's pixels, mask and shapes, in order."""
    digest = hashlib.sha256()
    for rgb, mask in crops:
        for array in (rgb, mask):
            digest.update(repr((array.shape, array.dtype.str)).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def code_digest(measuring: tuple[Callable[..., Any], ...] = ()) -> str:
    """sha256 over the codec package's and fidelity.py's sources and the given functions' sources."""
    digest = hashlib.sha256()
    for path in _CODE_FILES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for function in measuring:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import compressai
    import torch

    return {"torch": torch.__version__, "compressai": compressai.__version__, "numpy": np.__version__}


@dataclass
class PointCache:
    """One evaluation's view of the cache folder: the crops and code are fixed for the run, the weights vary."""

    directory: Path
    crops: str  # crops_digest
    code: str  # code_digest
    reused: int = 0  # points this run took from the folder
    measured: int = 0  # points this run measured and stored
    threads: int | None = None  # torch threads the points are measured with; None: this process's

    def key(self, weights: Path, refine_steps: int, rounding: str = "sga") -> dict[str, Any]:
        import torch

        return {
            "weights_sha256": file_sha256(weights),
            "crops_sha256": self.crops,
            "code_sha256": self.code,
            "refine_steps": refine_steps,
            "rounding": rounding if refine_steps else None,
            "torch_threads": self.threads or torch.get_num_threads(),
            **_versions(),
        }

    def _path(self, key: dict[str, Any]) -> Path:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.directory / f"{name}.json"

    def get(self, weights: Path, refine_steps: int, rounding: str = "sga") -> dict[str, Any] | None:
        """The stored point's fields (as ``put`` was given them), or None when this key was never measured or its
        file cannot be read (then it is measured again)."""
        key = self.key(weights, refine_steps, rounding)
        path = self._path(key)
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cached point %s: %s", path, exc)
            return None
        if entry.get("key") != key:  # a hash-prefix collision or a hand-edited file
            return None
        logger.info("reusing %s (refine %d) measured %s: %s", weights.name, refine_steps, entry.get("measured"), path)
        self.reused += 1
        return entry["point"]

    def put(self, weights: Path, refine_steps: int, point: Any, rounding: str = "sga") -> None:
        key = self.key(weights, refine_steps, rounding)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "measured": datetime.now(UTC).isoformat(timespec="seconds"), "point": asdict(point)}
        temporary = path.with_suffix(f".{os.getpid()}.tmp")  # evaluations run side by side may store one point
        temporary.write_text(json.dumps(entry, indent=1) + "\n")
        temporary.replace(path)  # a run killed mid-write leaves no half entry behind
        self.measured += 1
