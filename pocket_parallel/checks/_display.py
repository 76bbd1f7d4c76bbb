"""How a check's answer looks: a verdict line, then the explanation, wrapped between words.

JupyterLab shows a long line of plain text by breaking it wherever the output area ends, in
the middle of a word ("docu/ments"). So a check's answer is never one long line:

- as plain text (what a terminal, ``print`` and nbval's comparison see), it is wrapped at
  word boundaries to :data:`WIDTH` columns;
- as Markdown (what JupyterLab, Notebook, VS Code and Colab render when they can), it is a
  bold verdict and ordinary paragraphs, which the browser wraps between words by itself.

The text of a message is taken literally: every character Markdown would read as markup is
escaped, so ``_run_async`` or ``shared['summary']`` show exactly as written.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

#: Columns of plain text: narrower than a notebook's output area at its default font size.
WIDTH = 88

_MARKUP = re.compile(r"([\\`*_{}\[\]<>#|~&])")
_FIRST_WORD = re.compile(r"[a-z]+ ")


def wrap(text: str, width: int = WIDTH, indent: str = "", first_indent: str | None = None) -> str:
    """``text`` wrapped at word boundaries to ``width`` columns, keeping its own line breaks.

    Words longer than a line stay whole. ``indent`` starts every line after the first of
    each paragraph; ``first_indent`` (default: ``indent``) starts the first.
    """
    if width < 20:
        raise ValueError(f"width must be at least 20 columns; got {width!r}")
    first = indent if first_indent is None else first_indent
    return "\n".join(
        textwrap.fill(line, width, initial_indent=first, subsequent_indent=indent,
                      break_long_words=False, break_on_hyphens=False) if line.strip() else ""
        for line in text.split("\n")
    )


def sentence_case(text: str, name: str | None = None) -> str:
    """``text`` with its first letter capitalised when it starts with a plain lowercase word.

    "at most C = 2 calls" becomes "At most C = 2 calls"; code at the start, such as
    ``shared['summary']``, ``predict_makespan(...)`` or the ``name`` of the student's function
    (even a plain word such as ``simulate``), is left exactly as it is.
    """
    if name and text.startswith(name):
        return text
    return text[0].upper() + text[1:] if _FIRST_WORD.match(text) else text


def plain_text(verdict: str, label: str, paragraphs: Sequence[str], width: int = WIDTH) -> str:
    """``"{verdict} · {label}"`` on a line of its own, then each paragraph wrapped, a blank line between."""
    return "\n\n".join([f"{verdict} · {label}", *(wrap(p, width) for p in paragraphs if p)])


def markdown(verdict: str, label: str, paragraphs: Sequence[str]) -> str:
    """The verdict in bold beside its label, then each paragraph, every markup character escaped."""
    heading = f"**{escape_markdown(verdict)}** · {escape_markdown(label)}"
    return "\n\n".join([heading, *(escape_markdown(p) for p in paragraphs if p)])


def escape_markdown(text: str) -> str:
    """``text`` with every character Markdown would treat as markup backslash-escaped."""
    return _MARKUP.sub(r"\\\1", text)
