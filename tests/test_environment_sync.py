"""environment.yml (conda, Binder) and pyproject.toml must name the same packages and lower bounds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(>=\s*[0-9][^\s#]*)?")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> tuple[str, str]:
    match = REQUIREMENT.match(requirement.strip())
    assert match, f"cannot read requirement {requirement!r}"
    return _normal(match.group(1)), (match.group(2) or "").replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        project = tomllib.loads(text)["project"]
        # The bench extra (make bench's contenders) is not part of the learner's install.
        listed = project["dependencies"] + [r for name, group in project["optional-dependencies"].items()
                                            if name != "bench" for r in group]
        listed.append(f"python{project['requires-python']}")
    else:
        project_table = text.split("[project]", 1)[1].split("\n[tool.", 1)[0]
        project_table = re.sub(r"\nbench = \[.*?\]", "", project_table, flags=re.S)
        listed = re.findall(r'^\s*"([^"]+)",?\s*$', project_table, re.M) + [
            "python" + re.search(r'requires-python\s*=\s*"([^"]+)"', text).group(1)
        ]
    return dict(parse(r) for r in listed)


def environment_requirements() -> dict[str, str]:
    found = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        item = re.match(r"^\s*-\s+([^#]+?)\s*(#.*)?$", line)
        if not item or item.group(1).endswith(":") or item.group(1).startswith("-e"):
            continue
        name, bound = parse(item.group(1))
        if name in {"pip", "conda-forge"}:
            continue
        found[name] = bound
        assert item.group(2), f"environment.yml: say what {name} is for in a comment"
    return found


def test_every_package_and_lower_bound_agree():
    assert environment_requirements() == pyproject_requirements()


def test_every_pyproject_requirement_has_a_lower_bound():
    missing = [name for name, bound in pyproject_requirements().items() if not bound]
    assert not missing, f"pin a lower bound for: {missing}"


def test_parser_notices_a_difference():
    # Guard against a parser that reads nothing and so compares two empty dicts.
    assert {"pocketflow", "looptime", "ipywidgets", "nbval", "python"} <= set(environment_requirements())
    assert parse("matplotlib>=3.7  ") == ("matplotlib", ">=3.7")
