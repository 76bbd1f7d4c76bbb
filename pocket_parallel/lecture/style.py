"""How the lecture app reads on a projector: large type for the widgets, pictures that fill the width.

:func:`projector_style` is a widget carrying the app's style sheet. Every rule applies inside
``.pp-lecture`` (the app's own box) or to a Voilà page (``body[data-voila]``), so the same
notebook opened in JupyterLab changes nothing around it. ipywidgets size their controls from
CSS variables (``--jp-widgets-font-size``, ``--jp-widgets-inline-height``...), which the sheet
raises; a few controls carry fixed inline widths, which it overrides.

:data:`FIGURE_RC` holds the matplotlib settings of the app's own figures (the knee), and
:func:`figure_png` draws one as PNG bytes.
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

#: Body text of the app: 1/36 of the screen's height (20 pixels on a 1280 × 720 projector image,
#: 30 on 1920 × 1080), never below 20 pixels. Every other size in the sheet is in ``em`` of it,
#: so the app looks the same at any projector resolution of the same shape.
FONT_SIZE = "max(20px, 2.8vh)"

#: matplotlib settings for the app's figures: drawn at :data:`FIGURE_DPI`, a figure 12 inches
#: wide is 1,200 pixels, and 15-point text in it is about 21 pixels high before the browser
#: scales it to the page width.
FIGURE_RC: dict[Any, Any] = {
    "font.size": 15,
    "axes.labelsize": 15,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "lines.linewidth": 2.5,
    "lines.markersize": 9,
}
FIGURE_DPI = 100

PROJECTOR_CSS = f"""
body[data-voila] #rendered_cells {{
  padding: 0.4em 0.8em;
}}
.pp-lecture {{
  font-size: {FONT_SIZE};
  line-height: 1.35;
  width: 100%;
  --jp-widgets-font-size: 1em;
  --jp-ui-font-size1: 1em;
  --jp-content-font-size1: 1em;
  --jp-widgets-inline-height: 2em;
  --jp-widgets-inline-label-width: 6.5em;
  --jp-widgets-inline-width: 19em;
  --jp-widgets-slider-handle-size: 1.2em;
  --jp-widgets-slider-track-thickness: 0.3em;
  --jp-widgets-progress-thickness: 2em;
  --jp-widgets-horizontal-tab-height: 2.4em;
  --jp-widgets-horizontal-tab-width: 13em;
}}
.pp-lecture .lm-TabBar-tab {{
  font-size: 1.1em;
  line-height: 2.2em;
}}
.pp-lecture .widget-label, .pp-lecture .widget-label-basic, .pp-lecture .widget-html-content,
.pp-lecture input, .pp-lecture button, .pp-lecture .widget-readout, .pp-lecture .widget-inline-hbox {{
  font-size: 1em;
}}
.pp-lecture .widget-label {{
  width: auto !important;
  min-width: 6.5em;
}}
.pp-lecture .widget-slider {{
  width: 19em !important;
}}
.pp-lecture .widget-readout {{
  min-width: 2.5em;
}}
.pp-lecture .widget-text input {{
  height: 1.8em;
}}
.pp-lecture .widget-text {{
  width: 5.5em !important;
}}
.pp-lecture .pp-text-seed {{
  display: none !important;
}}
.pp-lecture .widget-checkbox {{
  width: 7.5em !important;
}}
.pp-lecture .widget-checkbox input {{
  width: 0.9em;
  height: 0.9em;
}}
.pp-lecture button {{
  height: 2.2em;
  width: auto !important;
  padding: 0 1.2em;
}}
.pp-lecture .pp-race-row > :first-child {{
  width: 9.5em !important;
}}
.pp-lecture .pp-race-row > :last-child {{
  width: 16.5em !important;
}}
.pp-lecture .pp-picture, .pp-lecture .pp-figure {{
  display: block;
  width: 100%;
  min-height: 13em;
  object-fit: contain;
  object-position: left top;
}}
.pp-lecture .pp-picture {{
  max-height: calc(100vh - 15em);
}}
.pp-lecture .pp-figure {{
  max-height: calc(100vh - 16.5em);
}}
.pp-lecture .pp-race-row .widget-html-content {{
  font-variant-numeric: tabular-nums;
}}
"""


def projector_style() -> widgets.HTML:
    """A widget holding the app's style sheet (:data:`PROJECTOR_CSS`); put it anywhere in the app."""
    style = widgets.HTML(f"<style>{PROJECTOR_CSS}</style>", layout=widgets.Layout(display="none"))
    style.add_class("pp-style")
    return style


def figure_png(figure: Figure, dpi: float = FIGURE_DPI) -> bytes:
    """``figure`` as PNG bytes at ``dpi`` (white background, as the course's figures have)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
