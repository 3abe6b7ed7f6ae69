"""Recompute the golden md5s the codec tests pin, from the committed weights, and optionally write them in.

New weights in ``weights/`` make the golden tests in ``tests/test_codecs.py`` and ``tests/test_codecs_refine.py``
fail by design. This script codes the tests' own crop (``conftest.person_window``) exactly as those tests do, prints
every pinned entry with whether it changed, and with ``--write`` replaces the changed md5s in the test files. Run
it only after a deliberate change of weights: a changed md5 otherwise means recorded streams no longer decode the same.

    .venv/bin/python scripts/print_goldens.py [--write]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

import test_codecs  # noqa: E402  (the pinned names and values live in the tests)
import test_codecs_refine  # noqa: E402
from conftest import golden_of, person_window, reference_decode, reference_encode  # noqa: E402

from surveil.codecs.model import load_codec  # noqa: E402
from surveil.paths import PROJECT_WEIGHTS  # noqa: E402

Golden = dict[str, str]


def golden_entry(
    weights: Path, canvas: np.ndarray, mask: np.ndarray | None = None, refine_steps: int = 0, rounding: str = "sga"
) -> Golden:
    """md5s of the float64 reference encode and of its float64 reference decode, as the golden tests compute them."""
    codec = load_codec(weights)
    strings, shape = reference_encode(codec, canvas, mask, refine_steps, rounding)
    return golden_of(strings, reference_decode(codec, strings, shape))


def _replace_in(path: Path, old: Golden, new: Golden) -> None:
    text = path.read_text()
    for key in ("bitstream_md5", "decoded_md5"):
        if old[key] == new[key]:
            continue
        if text.count(old[key]) != 1:
            raise SystemExit(f"{path}: expected {old[key]} exactly once")
        text = text.replace(old[key], new[key])
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the changed md5s in the test files")
    args = parser.parse_args()
    window = person_window()
    if window is None:
        print("shared data not found: people/inria_person_96x160_train_pos", file=sys.stderr)
        return 1
    canvas, mask = window

    checks: list[tuple[str, Path, Golden, Golden]] = []
    for name, pinned in sorted(test_codecs.GOLDEN.items()):
        checks.append((name, Path(test_codecs.__file__), pinned, golden_entry(PROJECT_WEIGHTS / name, canvas)))
    steps = test_codecs_refine.STEPS
    for rounding, goldens in (
        ("sga", test_codecs_refine.GOLDEN_REFINED),
        ("ste", test_codecs_refine.GOLDEN_REFINED_STE),
    ):
        for name, pinned in sorted(goldens.items()):
            now = golden_entry(PROJECT_WEIGHTS / name, canvas, mask, steps, rounding)
            checks.append((f"{name} refined {steps} steps {rounding}", Path(test_codecs_refine.__file__), pinned, now))

    changed = 0
    for label, path, pinned, now in checks:
        status = "same" if now == pinned else "CHANGED"
        changed += now != pinned
        print(f"{label:40s} {status:8s} bitstream {now['bitstream_md5']}  decoded {now['decoded_md5']}")
        if args.write and now != pinned:
            _replace_in(path, pinned, now)
    print(f"{changed} of {len(checks)} pinned entries changed" + (" and written" if args.write and changed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
