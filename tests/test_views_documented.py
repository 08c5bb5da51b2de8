"""dashboards/README.md documents the analyst views: every view the store has is there,
with every one of its columns named, and nothing named that the view lacks."""

import re
from pathlib import Path

import pytest

from kubeopera.sinks.clickhouse import Store

DOC = Path(__file__).resolve().parents[1] / "dashboards" / "README.md"
ROWS = {m[1]: m[0] for m in re.finditer(r"^\| `(v_\w+)` \|.*$", DOC.read_text(), re.M)}


def test_every_view_of_the_store_is_documented(store: Store) -> None:
    views = store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine = 'View' AND startsWith(name, 'v_')"
    )
    assert set(views["name"]) == set(ROWS)


@pytest.mark.parametrize("view", sorted(ROWS))
def test_the_documented_columns_are_the_views_columns(store: Store, view: str) -> None:
    columns = set(store.query(f"DESCRIBE TABLE {view}")["name"])
    named = set(re.findall(r"`(\w+)`", ROWS[view])) - {view, "__idle__"}
    named -= {v for v in named if v.startswith("v_")}  # other views it points to
    assert columns == named
