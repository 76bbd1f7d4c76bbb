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

#: Body text of the app, in CSS pixels: about 1/36 of a 720-pixel-high projector image.
FONT_PX = 20

#: matplotlib settings for the app's figures: drawn at :data:`FIGURE_DPI`, a figure 12 inches
#: wide is 1,200 pixels, and 15-point text in it is about 21 pixels high before the browser
#: scales it to the page width.
FIGURE_RC: dict[Any, Any] = {
    "font.size": 15,
    "axes.titlesize": 16,
    "axes.labelsize": 15,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 14,
    "lines.linewidth": 2.5,
    "lines.markersize": 9,
}
FIGURE_DPI = 100

PROJECTOR_CSS = f"""
body[data-voila] {{
  --jp-content-font-size1: {FONT_PX}px;
  --jp-ui-font-size1: {FONT_PX}px;
}}
body[data-voila] #rendered_cells {{
  padding: 8px 16px;
}}
.pp-lecture {{
  --jp-widgets-font-size: {FONT_PX}px;
  --jp-widgets-inline-height: 40px;
  --jp-widgets-inline-label-width: 170px;
  --jp-widgets-inline-width: 380px;
  --jp-widgets-slider-handle-size: 24px;
  --jp-widgets-slider-track-thickness: 6px;
  --jp-widgets-progress-thickness: 40px;
  --jp-widgets-horizontal-tab-height: 48px;
  --jp-widgets-horizontal-tab-width: 260px;
  font-size: {FONT_PX}px;
  line-height: 1.35;
  width: 100%;
}}
.pp-lecture .lm-TabBar-tab {{
  font-size: {FONT_PX + 2}px;
  line-height: 44px;
}}
.pp-lecture .widget-label, .pp-lecture .widget-label-basic, .pp-lecture .widget-html-content,
.pp-lecture input, .pp-lecture button, .pp-lecture .widget-readout {{
  font-size: {FONT_PX}px;
}}
.pp-lecture .widget-label {{
  width: auto !important;
  min-width: 130px;
}}
.pp-lecture .widget-slider {{
  width: 380px !important;
}}
.pp-lecture .widget-text input {{
  height: 36px;
}}
.pp-lecture .widget-text {{
  width: 110px !important;
}}
.pp-lecture .pp-text-seed {{
  display: none !important;
}}
.pp-lecture .pp-unlimited {{
  width: 150px !important;
}}
.pp-lecture button {{
  height: 44px;
  width: auto !important;
  padding: 0 24px;
}}
.pp-lecture .pp-picture, .pp-lecture .pp-figure {{
  display: block;
  width: 100%;
  max-height: calc(100vh - 330px);
  min-height: 260px;
  object-fit: contain;
  object-position: left top;
}}
.pp-lecture .pp-summary-line, .pp-lecture .pp-verdict, .pp-lecture .pp-knee-summary {{
  font-size: {FONT_PX}px;
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
