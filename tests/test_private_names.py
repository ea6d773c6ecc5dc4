"""No module reaches into another's private names: neither `from x import _y` nor
`x._y` on a module or class it imported. A name with a leading underscore is free to
change with its own module; what others use is public."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "projections", "service", "drafting", "bench", "tools")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def reaches(source: str) -> list[str]:
    """Where a module uses another's private names, as `line: name`."""
    tree = ast.parse(source)
    imported: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_check_finds_both_forms() -> None:
    # A private name imported, and one reached through an imported module or class.
    source = "from a import _b\nimport c\nfrom d import E\nc._f()\nE._g()\nself._h()\n"
    assert reaches(source) == ["1: from a import _b", "4: c._f", "5: E._g"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_uses_another_s_private_names(package: str) -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := reaches(path.read_text()))
    }
    assert found == {}
