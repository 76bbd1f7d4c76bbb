"""Every number and time the course prints, formatted one way (and the widgets' warning line): the experiment, plots, widgets and checks share it."""

from __future__ import annotations

import html
from collections.abc import Iterable

_WARNING_STYLE = "background:#fde8e4;color:#8a1c0c;padding:2px 8px;border-radius:4px"


def seconds(value: float) -> str:
    """Seconds to three significant digits, whole seconds from 100 up: ``0.25 s``, ``12.3 s``, ``1,128 s``."""
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"


def exact_seconds(value: float) -> str:
    """Seconds with every digit the virtual clock keeps (microseconds): ``3.5 s``, ``0.250001 s``."""
    return f"{round(value, 6):g} s"


def times(value: float, digits: int = 2) -> str:
    """A ratio such as a speedup: ``5.43×``."""
    return f"{value:.{digits}f}×"


def percent(value: float) -> str:
    """A share as a whole percentage: ``97 %``."""
    return f"{value * 100:.0f} %"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``"1 call"``, ``"3 calls"``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def limit(value: int | None) -> str:
    """A concurrency limit: ``"C = 5"``, or ``"no limit"``."""
    return "no limit" if value is None else f"C = {value}"


def latency(mean: float, jitter: float) -> str:
    """A latency and its spread: ``"latency 1 s"``, ``"latency 1 s, jitter 0.3"``."""
    text = f"latency {mean:g} s"
    return text + (f", jitter {jitter:g}" if jitter else "")


def plain(value: float) -> str:
    """A number as plain digits for an axis: ``0.5``, ``20``, ``5,000`` (never ``5e+03``)."""
    return f"{value:,.0f}" if value >= 10_000 else f"{value:g}"


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def markdown_record(title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A record as a notebook shows it: a bold title, then a two-column table of labelled values."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    table = [f"| {cell(label)} | {cell(value)} |" for label, value in rows]
    return "\n".join([f"**{cell(title)}**", "", "| | |", "|:--|--:|", *table])


def warning_html(text: str) -> str:
    """``text`` (escaped) as the red warning the widgets show under their controls."""
    return f'<span style="{_WARNING_STYLE}">⚠ {html.escape(text)}</span>'


def error_type_name(error: BaseException) -> str:
    """The error's class as a record names it: ``"TimeoutError"``, ``"pocket_parallel.backends.simulated.RateLimitError"``."""
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
