"""CallLog: the trace and counters of a simulated service."""

from __future__ import annotations

from pocket_parallel.trace import CallLog, CallRecord, LLMStats


def test_calls_are_counted_as_they_open_close_or_are_refused():
    log = CallLog()
    log.opened()
    log.opened()
    log.refused("p", 1, 0.0, "rate_limited")
    log.refused("q", 1, 0.0, "overloaded")
    log.closed("a", 1, 0.0, 1.0, "ok")
    log.closed("b", 2, 0.0, 0.5, "error")
    assert log.snapshot() == LLMStats(calls=4, ok=1, transient_errors=1, cancelled=0, in_flight=0,
                                      peak_in_flight=2, rate_limited=1, overloaded=1)
    assert [r.outcome for r in log.records] == ["rate_limited", "overloaded", "ok", "error"]
    assert log.records[2] == CallRecord("a", 1, 0.0, 1.0, "ok") and log.records[2].duration == 1.0


def test_a_snapshot_does_not_change_with_the_log():
    log = CallLog()
    before = log.snapshot()
    log.opened()
    assert before.in_flight == 0 and log.snapshot().in_flight == 1
