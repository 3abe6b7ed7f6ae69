"""scripts/sync_readme_tables.py: the README's measured tables and BD-rates are the ones their commands wrote."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from surveil.paths import REPO_ROOT

_spec = importlib.util.spec_from_file_location("sync_readme_tables", REPO_ROOT / "scripts" / "sync_readme_tables.py")
sync_readme_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_readme_tables)

SOURCE = "intro\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n\n| c |\n|---|\n| 3 |\n"


def test_readme_tables_match_their_sources() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    # three tables for each of person and face, one for each benchmarked rate point
    assert len(sync_readme_tables.MARKED.findall(readme)) >= 10
    # every current BD-rate the person and face prose quotes
    assert len(sync_readme_tables.FIGURE.findall(readme)) >= 50
    assert sync_readme_tables.synced(readme, REPO_ROOT) == readme, "run scripts/sync_readme_tables.py"


def test_stale_table_is_replaced_and_text_around_it_kept(tmp_path: Path) -> None:
    (tmp_path / "eval.md").write_text(SOURCE)
    readme = "# r\n\n<!-- table: eval.md 2 -->\n\n| c |\n|---|\n| old |\n\n<!-- /table -->\n\nafter\n"
    assert sync_readme_tables.synced(readme, tmp_path) == (
        "# r\n\n<!-- table: eval.md 2 -->\n\n| c |\n|---|\n| 3 |\n\n<!-- /table -->\n\nafter\n"
    )


@pytest.mark.parametrize("marker", ["<!-- table: eval.md 3 -->", "<!-- table: missing.md 1 -->"])
def test_marker_naming_no_table_is_an_error(tmp_path: Path, marker: str) -> None:
    (tmp_path / "eval.md").write_text(SOURCE)
    with pytest.raises(sync_readme_tables.StaleSourceError):
        sync_readme_tables.synced(f"{marker}\n\n| x |\n\n<!-- /table -->\n", tmp_path)


EVAL_REPORT = (
    "face: crops\n\n| codec | bpp |\n|---|---|\n| face fast q0 | 0.1 |\n\n"
    "| codec | vs x265 | vs face fast |\n|---|---|---|\n"
    "| face fast | -21.1% / -29.5% | - |\n| face high | +3.0% / -37.6% | -20.4% / -17.3% |\n"
)


def _eval_dir(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "eval_face.md").write_text(EVAL_REPORT)
    return tmp_path


def test_figures_are_rewritten_from_the_bd_rate_table_in_the_readmes_own_format(tmp_path: Path) -> None:
    root = _eval_dir(tmp_path)
    readme = (
        "needs <!--bd face fast; x265; psnr-->9.9%<!--/bd--> fewer bits"
        " (<!--bd face fast; x265; ms-ssim-->-1%<!--/bd-->)"
        " and <!--bd face high; face fast; both-->x<!--/bd--> against the fast tier\n"
    )
    assert sync_readme_tables.synced(readme, root) == (
        "needs <!--bd face fast; x265; psnr-->21.1%<!--/bd--> fewer bits"
        " (<!--bd face fast; x265; ms-ssim-->-29.5%<!--/bd-->)"
        " and <!--bd face high; face fast; both-->-20.4% / -17.3%<!--/bd--> against the fast tier\n"
    )


def test_unsigned_figure_whose_direction_word_turned_false_is_an_error(tmp_path: Path) -> None:
    root = _eval_dir(tmp_path)
    with pytest.raises(sync_readme_tables.DirectionError, match="face high vs x265"):
        sync_readme_tables.synced("needs <!--bd face high; x265; psnr-->30.3%<!--/bd--> fewer bits\n", root)
    # signed, or followed by neither word, the figure carries its own direction
    assert "+3.0%<!--/bd--> fewer" in sync_readme_tables.synced(
        "<!--bd face high; x265; psnr-->-1%<!--/bd--> fewer\n", root
    )


def test_a_figure_may_name_its_report(tmp_path: Path) -> None:
    root = _eval_dir(tmp_path)
    (root / "docs" / "eval_face_long.md").write_text(EVAL_REPORT.replace("-21.1%", "-30.0%"))
    readme = (
        "<!--bd face fast; x265; psnr; docs/eval_face_long.md-->1%<!--/bd--> and "
        "<!--bd face fast; x265; psnr-->1%<!--/bd-->\n"
    )
    assert sync_readme_tables.synced(readme, root) == (
        "<!--bd face fast; x265; psnr; docs/eval_face_long.md-->30.0%<!--/bd--> and "
        "<!--bd face fast; x265; psnr-->21.1%<!--/bd-->\n"
    )
    with pytest.raises(sync_readme_tables.StaleSourceError, match=r"eval_face_none\.md"):
        sync_readme_tables.synced("<!--bd face fast; x265; psnr; docs/eval_face_none.md-->1%<!--/bd-->\n", root)


@pytest.mark.parametrize(
    "marker",
    [
        "<!--bd face low; x265; psnr-->",
        "<!--bd face fast; jpeg; psnr-->",
        "<!--bd car fast; x265; psnr-->",
        "<!--bd face fast; face fast; psnr-->",  # a "-" cell: no such comparison
    ],
)
def test_figure_naming_no_cell_is_an_error(tmp_path: Path, marker: str) -> None:
    root = _eval_dir(tmp_path)
    with pytest.raises(sync_readme_tables.StaleSourceError):
        sync_readme_tables.synced(f"a {marker}1%<!--/bd--> b\n", root)
