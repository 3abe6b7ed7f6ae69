"""Copy measured tables and BD-rates into README.md from the files their commands wrote, so it never drifts from them.

A table in the README that comes from a file sits between two markers naming the file and the table's position in it
(1 for its first Markdown table), with blank lines around the table so that Markdown renders it:

    <!-- table: docs/eval_person.md 1 -->

    | codec | bpp | ...

    <!-- /table -->

This script replaces everything between each pair with that table as the file holds it now.

A BD-rate quoted in prose sits between two inline markers naming the row and column of the BD-rate table in
docs/eval_CLASS.md (the table whose columns are "vs ANCHOR"; CLASS is the row's first word) and the measure, and
optionally another report (a fourth field ending in .md, relative to the repository):

    The high tier needs <!--bd face high; face fast; psnr-->20.4%<!--/bd--> fewer bits than the face fast codec
    and <!--bd person high+refine200; x265; psnr; docs/eval_person_refine200.md-->+5%<!--/bd--> ...

`psnr` and `ms-ssim` give one figure, written unsigned when the README's figure is unsigned (the words around it give
its direction) and signed otherwise; `both` gives the whole cell ("-33.6% / -39.4%"). An unsigned figure followed by
"fewer" or "more" whose sign no longer matches that word is an error: the sentence needs rewriting, not a new number.

Run it after `surveil eval-codec` has rewritten docs/eval_CLASS.md; `--check` changes nothing and exits 1 when a table
or figure is stale (tests/test_readme_tables.py runs it).

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
FIGURE = re.compile(
    r"<!--bd (?P<row>[^;>]+); (?P<column>[^;>]+); (?P<measure>psnr|ms-ssim|both)(?:; (?P<source>[^;>\s]+\.md))?-->"
    r"(?P<value>[^<]*)<!--/bd-->"
    r"(?P<after> (?:fewer|more)\b)?"
)
MEASURE_INDEX = {"psnr": 0, "ms-ssim": 1}


class StaleSourceError(ValueError):
    """A marker names a file, a table, a row or a column that does not exist."""


class DirectionError(ValueError):
    """An unsigned figure's sign no longer matches the "fewer" or "more" that follows it."""


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

    reports: dict[Path, dict[tuple[str, str], str]] = {}  # each report's BD-rate table, parsed once
    return FIGURE.sub(lambda marked: figure_replacement(marked, root, reports), MARKED.sub(replacement, readme))


def bd_rate_cells(source: Path) -> dict[tuple[str, str], str]:
    """The BD-rate table of an eval report, keyed by (row label, anchor) with the anchor's "vs " dropped."""
    for table in markdown_tables(source.read_text()):
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()]
        header = rows[0]
        if len(header) > 1 and all(column.startswith("vs ") for column in header[1:]):
            return {
                (row[0], column.removeprefix("vs ")): cell
                for row in rows[2:]
                for column, cell in zip(header[1:], row[1:], strict=True)
            }
    raise StaleSourceError(f"{source.name} has no BD-rate table (a table whose columns are 'vs ANCHOR')")


def figure_replacement(marked: re.Match[str], root: Path, reports: dict[Path, dict[tuple[str, str], str]]) -> str:
    """The marked figure, rewritten from its report's BD-rate table in the format the README already uses
    (``reports``: the tables parsed so far, by report)."""
    row, column, measure = marked["row"], marked["column"], marked["measure"]
    named = marked["source"] or f"docs/eval_{row.split()[0]}.md"
    source = root / named
    if not source.is_file():
        raise StaleSourceError(f"{source.relative_to(root)}: no such file (named by a README figure for {row!r})")
    if source not in reports:
        reports[source] = bd_rate_cells(source)
    cells = reports[source]
    if cells.get((row, column), "-") == "-":  # "-": the report compares that row with another anchor
        raise StaleSourceError(f"{source.relative_to(root)}: no BD-rate of {row!r} against {column!r}")
    cell = cells[(row, column)]
    after = marked["after"] or ""
    if measure == "both":
        value = cell
    else:
        value = cell.split(" / ")[MEASURE_INDEX[measure]]
        if not marked["value"].startswith(("+", "-")):
            unsigned = value.lstrip("+-")
            if after and value.startswith("-") != (after.strip() == "fewer"):
                raise DirectionError(
                    f"{row} vs {column} ({measure}) is now {value}: the README's '{unsigned}{after}' needs rewording"
                )
            value = unsigned
    suffix = f"; {marked['source']}" if marked["source"] else ""
    return f"<!--bd {row}; {column}; {measure}{suffix}-->{value}<!--/bd-->{after}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a table or figure is out of date"
    )
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md")
    args = parser.parse_args()
    before = args.readme.read_text()
    try:
        after = synced(before, REPO_ROOT)
    except (StaleSourceError, DirectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if after == before:
        counts = f"{len(MARKED.findall(before))} marked tables and {len(FIGURE.findall(before))} marked figures"
        print(f"{args.readme.name}: {counts}, all up to date", file=sys.stderr)
        return 0
    if args.check:
        diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "README.md", "synced", lineterm="")
        print("\n".join(diff))
        print(f"{args.readme.name}: stale tables or figures; run scripts/sync_readme_tables.py", file=sys.stderr)
        return 1
    args.readme.write_text(after)
    print(f"{args.readme.name}: marked tables and figures updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
