"""Links between the chapter notebooks: the start page lists every chapter, and no link is broken.

Only relative links to ``.ipynb`` files are checked (a web address is not ours to test). A link
counts wherever Markdown or HTML puts one in a text cell: ``[text](target)``, ``[text](<target>
"title")``, a reference definition ``[label]: target``, or ``<a href="target">``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
START_HERE = NOTEBOOKS / "00_start_here.ipynb"

_LINK_TARGETS = re.compile(
    r"""\]\(\s*(?:<([^>]*)>|([^)\s]+))(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)"""  # [text](target "title")
    r"""|^[ ]{0,3}\[[^\]]+\]:\s*(?:<([^>]*)>|(\S+))"""                     # [label]: target
    r"""|\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""",                          # <a href="target">
    re.MULTILINE | re.IGNORECASE,
)


def all_notebooks() -> list[Path]:
    """Every notebook of the course, checkpoints left out."""
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def chapter_notebooks() -> list[Path]:
    """The numbered chapters 01_... to 09_..., and their second parts such as 06b_..., that exist now (00 is the start page)."""
    return sorted([*NOTEBOOKS.glob("0[1-9]_*.ipynb"), *NOTEBOOKS.glob("0[1-9][a-z]_*.ipynb")])


def notebook_links(markdown: str) -> list[str]:
    """The relative links to notebooks in ``markdown``, without their #anchor or ?query."""
    found = []
    for match in _LINK_TARGETS.finditer(markdown):
        target = next(group for group in match.groups() if group is not None).strip()
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path.lower().endswith(".ipynb"):
            continue  # a web address, a mail link, a same-page anchor, or not a notebook
        found.append(unquote(parts.path))
    return found


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def linked_paths(notebook: dict[str, Any], location: Path) -> list[tuple[str, Path]]:
    """(link as written, file it points at) for each notebook link in the text cells of ``notebook``."""
    return [
        (link, (location.parent / link).resolve())
        for cell in notebook.get("cells", [])
        if cell.get("cell_type") == "markdown"
        for link in notebook_links(_source(cell))
    ]


def broken_links(notebook: dict[str, Any], location: Path) -> list[str]:
    """The links in ``notebook`` (stored at ``location``) whose target notebook does not exist."""
    return [link for link, target in linked_paths(notebook, location) if not target.is_file()]


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_start_here_links_every_chapter_notebook():
    chapters = chapter_notebooks()
    assert chapters, "no chapter notebooks (notebooks/0[1-9]_*.ipynb) found"
    linked = {target for _, target in linked_paths(_read(START_HERE), START_HERE)}
    missing = [chapter.name for chapter in chapters if chapter.resolve() not in linked]
    assert not missing, f"{START_HERE.name}: the table of contents does not link {missing}"


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_every_notebook_link_resolves(path: Path):
    broken = broken_links(_read(path), path)
    assert not broken, f"{path.name}: these links point at notebooks that do not exist: {broken}"


# -- the checks themselves can fail ---------------------------------------------------------------


def test_link_finder_reads_every_link_form_and_skips_the_rest():
    markdown = (
        "See [one](01_why_parallel.ipynb) and [two](02_parallel_batch_node.ipynb#the-roles \"title\").\n"
        "A spaced one: [three](<03 under the hood.ipynb>), an escaped one: [four](04%20flow.ipynb).\n"
        "[five]: ../notebooks/05_gil_io_vs_cpu.ipynb\n"
        '<a href="06_rate_limits_and_semaphores.ipynb">six</a>\n'
        "Not checked: [web](https://example.org/07.ipynb), [anchor](#summary), [file](data.csv),\n"
        "[mail](mailto:someone@example.org).\n"
    )
    assert notebook_links(markdown) == [
        "01_why_parallel.ipynb",
        "02_parallel_batch_node.ipynb",
        "03 under the hood.ipynb",
        "04 flow.ipynb",
        "../notebooks/05_gil_io_vs_cpu.ipynb",
        "06_rate_limits_and_semaphores.ipynb",
    ]


def test_a_missing_target_is_reported_and_a_present_one_is_not(tmp_path: Path):
    (tmp_path / "01_exists.ipynb").write_text("{}", encoding="utf-8")
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["[ok](01_exists.ipynb)\n", "[gone](02_missing.ipynb)"]},
            {"cell_type": "code", "source": "# [in code](03_not_a_link.ipynb)", "outputs": []},
        ]
    }
    assert broken_links(notebook, tmp_path / "00_start.ipynb") == ["02_missing.ipynb"]
