"""CONTRIBUTING.md's table of the code's layers names every module where tests/test_layout.py puts it."""

from __future__ import annotations

import re

from _helpers import REPO
from test_layout import LAYERS, PACKAGE


def _table():
    """{layer: set of module names} from CONTRIBUTING.md's layer table (a blank layer cell continues the one above)."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = text[text.index("| layer | module | what |"):].split("\n\n")[0]
    rows = re.findall(r"^\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|[^\n]*\|$", block, flags=re.M)
    table, layer = {}, None
    for first, modules in rows[2:]:  # after the header and its rule
        layer = first.strip() or layer
        for name in re.findall(r"`([\w/]+?)(?:\.py|/)`", modules):
            table.setdefault(layer, set()).add(name)
    return table


def test_every_module_is_in_the_table_under_its_layer():
    table = _table()
    assert [layer for layer, _ in LAYERS] == list(table), "the table's layers, bottom first"
    for layer, names in LAYERS:
        assert table[layer] == names, f"CONTRIBUTING.md's {layer} row: {sorted(table[layer])}, test_layout: {sorted(names)}"


def test_the_table_names_no_module_that_is_gone():
    for names in _table().values():
        for name in names:
            assert (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir(), name
