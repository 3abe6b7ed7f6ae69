"""Copy measured tables into README.md from the files their commands wrote, so the README never drifts from them.

A table in the README that comes from a file sits between two markers naming the file and the table's position in it
(1 for its first Markdown table), with blank lines around the table so that Markdown renders it:

    <!-- table: docs/eval_person.md 1 -->

    | codec | bpp | ...

    <!-- /table -->

This script replaces everything between each pair with that table as the file holds it now. Run it after
`surveil eval-codec` has rewritten docs/eval_CLASS.md; `--check` changes nothing and exits 1 when a table is stale
(tests/test_readme.py runs it).

Usage: .venv/bin/python scripts/sync_readme_tables.py [--check] [--readme README.md]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"^<!-- table: (?P<source>\S+) (?P<index>\d+) -->\n(?P<body>.*?)^<!-- /table -->$", re.M | re.S)
TABLE = re.compile(r"(?:^\|.*\n)+", re.M)


class StaleSourceError(ValueError):
    """A marker names a file or a table that does not exist."""


def markdown_tables(text: str) -> list[str]:
    """Every Markdown table in `text` (runs of lines starting with '|'), each with its final newline."""
    return TABLE.findall(text)


def synced(readme: str, root: Path) -> str:
    """`readme` with every marked table replaced by the table its marker names."""

    def replacement(marked: re.Match[str]) -> str:
        source = root / marked["source"]
        if not source.is_file():
            raise StaleSourceError(f"{marked['source']}: no such file (named by a README table marker)")
        tables = markdown_tables(source.read_text())
        index = int(marked["index"])
        if not 1 <= index <= len(tables):
            raise StaleSourceError(f"{marked['source']} has {len(tables)} tables; a README marker names table {index}")
        return f"<!-- table: {marked['source']} {index} -->\n\n{tables[index - 1]}\n<!-- /table -->"

    return MARKED.sub(replacement, readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is out of date")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md")
    args = parser.parse_args()
    before = args.readme.read_text()
    try:
        after = synced(before, REPO_ROOT)
    except StaleSourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if after == before:
        print(f"{args.readme.name}: {len(MARKED.findall(before))} marked tables, all up to date", file=sys.stderr)
        return 0
    if args.check:
        diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "README.md", "synced", lineterm="")
        print("\n".join(diff))
        print(f"{args.readme.name}: marked tables are out of date; run scripts/sync_readme_tables.py", file=sys.stderr)
        return 1
    args.readme.write_text(after)
    print(f"{args.readme.name}: marked tables updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
