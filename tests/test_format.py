"""The one place numbers and times are written: every module prints them the same way."""

from __future__ import annotations

import pytest

from pocket_parallel import _format


@pytest.mark.parametrize("value, text", [(0.25, "0.25 s"), (12.34, "12.3 s"), (99.96, "100 s"), (1128.4, "1,128 s"),
                                         (999.6, "1,000 s")])
def test_seconds_keep_three_digits_and_never_turn_scientific(value, text):
    assert _format.seconds(value) == text


def test_the_small_formats():
    assert _format.exact_seconds(0.2500001) == "0.25 s" and _format.exact_seconds(3.5) == "3.5 s"
    assert _format.times(5.434) == "5.43×" and _format.percent(0.974) == "97 %"
    assert (_format.plural(1, "call"), _format.plural(3, "call"), _format.plural(2, "retry", "retries")) == (
        "1 call", "3 calls", "2 retries")
    assert (_format.limit(None), _format.limit(5)) == ("no limit", "C = 5")
    assert _format.latency(1.0, 0.0) == "latency 1 s" and _format.latency(0.5, 0.3) == "latency 0.5 s, jitter 0.3"
    assert (_format.plain(0.5), _format.plain(20.0), _format.plain(50_000.0)) == ("0.5", "20", "50,000")
    assert _format.clip("short", 10) == "short" and _format.clip("one two three four", 9) == "one two…"


def test_the_warning_line_escapes_its_text():
    shown = _format.warning_html("items must be <= 500; got 9000 & more")
    assert shown.startswith('<span style="') and shown.endswith("</span>")
    assert "⚠ items must be &lt;= 500; got 9000 &amp; more" in shown
