"""scripts/sync_readme_tables.py: the README's measured tables are the ones their commands wrote."""

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
