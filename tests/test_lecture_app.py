"""The lecture app: three panels in tabs, a style sheet that touches nothing outside the app, its notebook."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import ipywidgets
import PIL.Image
import pytest

from pocket_parallel import explorer
from pocket_parallel.lecture import KneePanel, LectureApp, RacePanel, knee_panel, lecture_app, race_panel
from pocket_parallel.lecture.style import PROJECTOR_CSS, projector_style
from pocket_parallel.widgets.explorer_widget import Explorer

ROOT = Path(__file__).resolve().parent.parent
APP_NOTEBOOK = ROOT / "present" / "lecture.ipynb"


def _picture_size(widget: ipywidgets.Image) -> tuple[int, int]:
    return PIL.Image.open(io.BytesIO(bytes(widget.value))).size


def test_the_app_shows_the_three_panels_in_tabs():
    app = lecture_app(knee=knee_panel(items=20))
    assert isinstance(app, LectureApp) and "pp-lecture" in app._dom_classes
    assert isinstance(app.explorer, Explorer) and isinstance(app.race, RacePanel) and isinstance(app.knee, KneePanel)
    assert list(app.tabs.children) == [app.explorer, app.race, app.knee]
    assert app.tabs.titles == ("1 · Explorer", "2 · Live race", "3 · Throughput knee")
    assert app.explorer.settings()["items"] == 40 and app.explorer.settings()["max_concurrency"] == 4
    # A sharper explorer picture than in a notebook: same figure, more pixels per inch.
    assert _picture_size(app.explorer.picture) == (1320, 528)
    assert _picture_size(explorer(items=40).picture) == (880, 352)


def test_panels_of_your_own_are_used_and_checked():
    race = race_panel(items=3, latency=0.05)
    assert lecture_app(race=race, knee=knee_panel(items=20)).race is race
    with pytest.raises(TypeError, match="race must be a RacePanel; got str"):
        lecture_app(race="a race")  # type: ignore[arg-type]


@pytest.mark.parametrize("dpi", [0, 10, 1000, "high"])
def test_the_explorer_refuses_a_bad_picture_dpi(dpi):
    with pytest.raises(ValueError, match=r"picture_dpi must be a finite number in \[40, 300\]"):
        explorer(items=5, picture_dpi=dpi)


def test_every_style_rule_stays_inside_the_app_or_a_voila_page():
    rules = re.findall(r"([^{}]+)\{[^{}]*\}", PROJECTOR_CSS)
    assert len(rules) > 5
    for rule in rules:
        for selector in rule.split(","):
            assert selector.strip().startswith((".pp-lecture", "body[data-voila]")), selector
    style = projector_style()
    assert style.value == f"<style>{PROJECTOR_CSS}</style>" and style.layout.display == "none"


def test_the_app_notebook_is_one_short_cell_with_its_kernel_named():
    notebook = json.loads(APP_NOTEBOOK.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"  # no "Select Kernel" question
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(code) == 1 and not code[0]["outputs"]
    source = "".join(code[0]["source"])
    assert source.rstrip().endswith("lecture_app()") and len(source.splitlines()) <= 5
