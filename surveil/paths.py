"""Search paths for data and third-party weights that live outside the repository.

The shared folder beside the checkout (``../shared``) is the default; ``SURVEIL_DATA_PATH`` and
``SURVEIL_WEIGHTS_PATH`` (``os.pathsep``-separated) put other folders first.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_ROOT = REPO_ROOT.parent / "shared"
PROJECT_WEIGHTS = REPO_ROOT / "weights"


def _search_path(env_var: str, default: Path) -> list[Path]:
    extra = [Path(p).expanduser() for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    return [*extra, default]


def data_path() -> list[Path]:
    return _search_path("SURVEIL_DATA_PATH", SHARED_ROOT / "data")


def weights_path() -> list[Path]:
    return _search_path("SURVEIL_WEIGHTS_PATH", SHARED_ROOT / "weights")


def find_in(search_path: list[Path], name: str | Path) -> Path | None:
    """First existing ``dir / name`` on the search path; an absolute or existing relative path is returned as is."""
    candidate = Path(name).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate if candidate.exists() else None
    for folder in search_path:
        if (folder / candidate).exists():
            return folder / candidate
    return None


def find_data(name: str | Path) -> Path | None:
    return find_in(data_path(), name)
