"""The package's map (docs/architecture.md) holds: the rules import-linter cannot check, and the map's own text.

import-linter checks the layers, circles and private modules (``lint-imports`` in ``make
test``); these tests check what it does not see: private *names* imported across modules,
what the notebooks import, and that the document draws the layers the contract enforces.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pocket_parallel"
TEACHING = {"plots", "limits", "journal", "widgets", "server", "cluster", "checks", "lecture"}

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def private_names_imported(source: str) -> list[str]:
    """``module:_name`` for every ``from X import _name`` where ``_name`` is not itself a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{'.' * node.level}{node.module or ''}:{alias.name}")
    return found


def is_module(importer: Path, spelled: str) -> bool:
    """Whether ``.x:_name`` (relative to ``importer``) names a module or package rather than a name in one."""
    dots = len(spelled) - len(spelled.lstrip("."))
    module, name = spelled.lstrip(".").split(":")
    base = importer.parent
    for _ in range(dots - 1):
        base = base.parent
    target = base.joinpath(*module.split(".")) if module else base
    return (target / f"{name}.py").exists() or (target / name / "__init__.py").exists()


def test_no_module_imports_another_modules_private_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for spelled in private_names_imported(path.read_text()):
            if not is_module(path, spelled):
                offenders.append(f"{path.relative_to(ROOT)} takes {spelled}")
    assert offenders == [], "make the name public in its module, or move it to a module of its own"


def test_the_private_name_rule_notices_one():
    assert private_names_imported("from ..plots import _INK, PALETTE\nfrom . import _format") == \
        ["..plots:_INK", ".:_format"]
    assert not is_module(PACKAGE / "widgets" / "picture.py", "..plots:_INK")
    assert is_module(PACKAGE / "widgets" / "picture.py", "..:_format")


def notebook_imports(path: Path) -> list[str]:
    modules = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                match = re.match(r"\s*(?:from|import)\s+(pocket_parallel[\w.]*)", line)
                if match:
                    modules.append(match.group(1))
    return modules


NOTEBOOKS = sorted([*ROOT.glob("notebooks/**/*.ipynb"), *ROOT.glob("instructor/**/*.ipynb"), *ROOT.glob("present/*.ipynb")])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_import_from_the_top_level_and_the_teaching_submodules(path):
    outside = [m for m in notebook_imports(path) if m != "pocket_parallel" and m.split(".")[1] not in TEACHING]
    assert outside == [], f"import these from the top level or a teaching submodule ({', '.join(sorted(TEACHING))})"


def test_the_readme_names_the_teaching_submodules():
    readme = (ROOT / "README.md").read_text()
    for name in TEACHING:
        assert f"pocket_parallel.{name}" in readme, name


def contract_layers() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is None:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    contracts = tomllib.loads(text)["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [" | ".join(sorted(part.strip() for part in layer.split("|"))) for layer in layers]


def documented_layers() -> list[str]:
    """The modules column of the layer table in docs/architecture.md, one layer a row."""
    layers = []
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = line.replace("\\|", "\0").split("|")
        if len(cells) == 5 and "`" in cells[2]:
            layers.append(" | ".join(sorted(re.findall(r"`([\w.]+)`", cells[2]))))
    return layers


def test_the_architecture_page_draws_the_layers_the_contract_enforces():
    assert documented_layers()[: len(contract_layers())] == contract_layers()
    assert len(contract_layers()) >= 8
