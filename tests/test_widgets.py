"""pocket_parallel.widgets: the explorer where notebooks and tests have always found it, imported only when asked for."""

from __future__ import annotations

import subprocess
import sys

import pocket_parallel
from pocket_parallel import widgets
from pocket_parallel.widgets import explorer_widget
from pocket_parallel.widgets import runs as explorer_runs


def test_widgets_re_exports_the_explorer():
    assert widgets.explorer is explorer_widget.explorer
    assert widgets.Explorer is explorer_widget.Explorer
    assert widgets.CURVE_LIMITS == explorer_runs.CURVE_LIMITS == (1, 2, 5, 10, 20, 50, 100)
    assert pocket_parallel.explorer is explorer_widget.explorer


def test_importing_the_package_leaves_matplotlib_and_ipywidgets_alone():
    code = ("import sys, pocket_parallel; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'PIL') if m in sys.modules)); "
            "from pocket_parallel import explorer; print(callable(explorer), 'ipywidgets' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.split("\n")[:2] == ["[]", "True True"]
