"""The walls between the parts, as docs/architecture.md states them: every import of every file
of a part (at module level or inside a function) is checked against the parts its row there
allows, so the table and the code cannot drift apart."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO / "docs" / "architecture.md"
FIRST_PARTY = {"bench", "tests"}
"""First-party code outside the table: nothing in a part may import it."""


def import_rules(markdown: str) -> dict[str, tuple[set[str], tuple[str, ...]]]:
    """part -> (the parts it may import, modules it must never import), from the table under
    "## Import rules"."""
    section = markdown.split("## Import rules", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        part, allowed, never = (re.findall(r"`([\w.]+)`", cell) for cell in cells)
        rules[part[0]] = (set(allowed), tuple(never))
    return rules


RULES = import_rules(ARCHITECTURE.read_text(encoding="utf-8"))


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def violations(root: Path, part: str, rules=RULES) -> list[str]:
    allowed, never = rules[part]
    parts = set(rules) | FIRST_PARTY
    found = []
    for path in sorted((root / part).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in parts and top != part and top not in allowed:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
            if any(module == banned or module.startswith(banned + ".") for banned in never):
                found.append(f"{path.relative_to(root)}:{line} imports {module} (never)")
    return found


def test_the_table_names_every_part():
    folders = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert folders - FIRST_PARTY == set(RULES), "every package needs a row in the table"
    assert RULES["asr_core"] == (set(), ())
    assert "callscribe" not in {name for allowed, _ in RULES.values() for name in allowed}


@pytest.mark.parametrize("part", sorted(RULES))
def test_each_part_imports_only_what_it_may(part):
    assert violations(REPO, part) == []


def test_a_forbidden_import_is_caught(tmp_path):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "task.py").write_text(
        "import json\nfrom worker.app import app\n\n\ndef run():\n"
        "    from callscribe.config import Settings\n    import admin_api.models\n"
    )
    (tmp_path / "admin_api").mkdir()
    (tmp_path / "admin_api" / "keys.py").write_text("from asr_core.engines import load_engine\n")
    assert violations(tmp_path, "worker") == ["worker/task.py:6 imports callscribe.config"]
    assert violations(tmp_path, "admin_api") == [
        "admin_api/keys.py:1 imports asr_core.engines (never)"
    ]
