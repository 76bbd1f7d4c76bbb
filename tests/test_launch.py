"""Launching the course elsewhere: Binder and Colab links, Binder's scripts, Colab's install cell.

- README.md and INSTRUCTORS.md show Binder and Colab badges whose links point at the repository
  named in pyproject.toml's ``[project.urls]`` and at ``notebooks/00_start_here.ipynb``;
- ``notebooks/00_start_here.ipynb`` has a cell that installs the course from that repository where
  it is missing (Colab) and does nothing where it is installed. Its code is transformed as IPython
  does and run with a stand-in for IPython that records the ``%pip`` lines: here, where the course
  is installed, it runs none and prints nothing; with the course missing it installs what the
  course needs and Colab lacks (every runtime dependency with pyproject's lower bound, except
  those Colab has) and then the course, without dependencies;
- Binder's ``start`` puts ``jupyter-config/`` on Jupyter's search path and runs its command, and
  ``postBuild`` trusts every student notebook (checked with nbformat's own notary).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.sign import NotebookNotary

ROOT = Path(__file__).resolve().parent.parent
START_HERE = ROOT / "notebooks" / "00_start_here.ipynb"
INSTALL_CELL = "colab-install"
# Runtime dependencies Colab already has (its own Jupyter, kernel and plotting); the install cell
# leaves them alone so as not to replace what Colab runs on.
COLAB_HAS = {"matplotlib", "ipykernel", "jupyterlab"}


def repository() -> str:
    """The ``Repository`` address in pyproject.toml's ``[project.urls]``."""
    table = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("[project.urls]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^Repository\s*=\s*"(https://github\.com/[\w.-]+/[\w.-]+)"\s*$', table, re.MULTILINE)
    assert match, "pyproject.toml: [project.urls] needs Repository = \"https://github.com/OWNER/REPO\""
    return match.group(1)


def runtime_requirements() -> dict[str, str]:
    """{name: lower bound} of pyproject.toml's runtime dependencies."""
    table = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("dependencies = [", 1)[1].split("]", 1)[0]
    return dict(re.findall(r'"([A-Za-z0-9_.-]+)(>=[^"]+)"', table))


def binder_link(repo: str) -> str:
    owner_and_name = repo.removeprefix("https://github.com/")
    return f"https://mybinder.org/v2/gh/{owner_and_name}/HEAD?urlpath=lab/tree/notebooks/00_start_here.ipynb"


def colab_link(repo: str) -> str:
    owner_and_name = repo.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/00_start_here.ipynb"


def install_cell() -> str:
    cells = [cell for cell in nbformat.read(START_HERE, as_version=4).cells if cell.get("id") == INSTALL_CELL]
    assert len(cells) == 1 and cells[0].cell_type == "code", f"{START_HERE.name}: one code cell with id {INSTALL_CELL!r}"
    assert not cells[0].outputs, "the install cell must show nothing where the course is installed"
    return cells[0].source


class FakeIPython:
    """Records the line magics a cell runs, expanding ``{name}`` from the cell's namespace as IPython does."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace, self.magics = namespace, []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append((name, line.format(**self.namespace)))


def run_install_cell(course_installed: bool) -> tuple[list[tuple[str, str]], str]:
    """(magics run, text printed) when the cell runs with the course installed or missing."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shell = FakeIPython(namespace)
    namespace["get_ipython"] = lambda: shell
    code = TransformerManager().transform_cell(install_cell())
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "pocket_parallel" and not course_installed else real_find_spec(name, *args)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        importlib.util.find_spec = find_spec
        try:
            exec(compile(code, "<install cell>", "exec"), namespace)
        finally:
            importlib.util.find_spec = real_find_spec
    return shell.magics, printed.getvalue()


def test_the_install_cell_does_nothing_where_the_course_is_installed():
    assert importlib.util.find_spec("pocket_parallel") is not None
    assert run_install_cell(course_installed=True) == ([], "")


def test_the_install_cell_installs_the_course_where_it_is_missing():
    magics, printed = run_install_cell(course_installed=False)
    assert printed == "" and [name for name, _ in magics] == ["pip", "pip"]
    needs, course = (shlex.split(line) for _, line in magics)
    assert needs[:2] == ["install", "--quiet"]
    expected = {name: bound for name, bound in runtime_requirements().items() if name not in COLAB_HAS}
    assert dict(re.fullmatch(r"([A-Za-z0-9_.-]+)(>=.+)", r).groups() for r in needs[2:]) == expected
    assert course == ["install", "--quiet", "--no-deps", f"pocket-parallel @ git+{repository()}"]


def test_readme_and_guide_link_binder_and_colab_to_the_first_notebook():
    repo = repository()
    for guide in ("README.md", "INSTRUCTORS.md"):
        text = (ROOT / guide).read_text(encoding="utf-8")
        assert f"({binder_link(repo)})" in text, f"{guide}: no Binder link {binder_link(repo)}"
        assert f"({colab_link(repo)})" in text, f"{guide}: no Colab link {colab_link(repo)}"
        assert "https://mybinder.org/badge_logo.svg" in text and "https://colab.research.google.com/assets/colab-badge.svg" in text


def test_binder_start_script_adds_the_course_settings_and_runs_its_command():
    env = {key: value for key, value in os.environ.items() if key != "JUPYTER_CONFIG_PATH"}
    shown = subprocess.run([str(ROOT / "start"), sys.executable, "-c", "import os; print(os.environ['JUPYTER_CONFIG_PATH'])"],
                           env=env, capture_output=True, text=True, timeout=30, check=True)
    assert shown.stdout.strip() == str(ROOT / "jupyter-config")
    env["JUPYTER_CONFIG_PATH"] = "/elsewhere"
    shown = subprocess.run([str(ROOT / "start"), "sh", "-c", "echo $JUPYTER_CONFIG_PATH; exit 3"],
                           env=env, capture_output=True, text=True, timeout=30)
    assert shown.stdout.strip() == f"{ROOT / 'jupyter-config'}:/elsewhere" and shown.returncode == 3
    assert (ROOT / "jupyter-config" / "labconfig" / "default_setting_overrides.json").is_file()


def test_binder_post_build_trusts_every_student_notebook(tmp_path: Path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_DATA_DIR": str(tmp_path)}
    subprocess.run([str(ROOT / "postBuild")], cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
    notary = NotebookNotary(data_dir=str(tmp_path))
    try:
        untrusted = [p.name for p in notebooks if not notary.check_signature(nbformat.read(p, as_version=4))]
        assert len(notebooks) > 10 and not untrusted, f"postBuild left these untrusted: {untrusted}"
        stranger = json.loads(json.dumps(nbformat.read(notebooks[0], as_version=4)))
        stranger["cells"][0]["source"] = "changed"
        assert not notary.check_signature(nbformat.from_dict(stranger)), "a changed notebook must not be trusted"
    finally:
        notary.close()


@pytest.mark.parametrize("path", ["postBuild", "start"])
def test_binder_scripts_are_executable(path: str):
    assert os.access(ROOT / path, os.X_OK), f"chmod +x {path} (and commit the mode)"
