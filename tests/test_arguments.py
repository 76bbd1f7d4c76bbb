"""The command lines' shared argument types: every bad number is refused with its flag and range, exit 2."""

from __future__ import annotations

import argparse
import math

import pytest

from pocket_parallel import _arguments as arg
from pocket_parallel.__main__ import build_parser as demo_parser
from pocket_parallel.cluster.cli import parser as cluster_parser
from pocket_parallel.server.cli import parser as server_parser

PARSERS = {"demo": demo_parser, "server": server_parser, "cluster": cluster_parser}


@pytest.mark.parametrize(("kind", "text"), [
    (arg.items(), "0"), (arg.items(), "1000001"), (arg.items(), "10000000000"), (arg.items(), "2.5"),
    (arg.items(), "ten"), (arg.items(), ""), (arg.items(), "9" * 5000),
    (arg.latency(), "0"), (arg.latency(), "1e-320"), (arg.latency(), "-1"), (arg.latency(), "nan"),
    (arg.latency(), "inf"), (arg.latency(), "86401"), (arg.latency(), "1" + "0" * 400),
    (arg.probability("--failure-rate"), "1"), (arg.probability("--failure-rate"), "-0.1"),
    (arg.probability("--failure-rate"), "nan"),
    (arg.limit("--rpm"), "0"), (arg.limit("--rpm"), "-5"), (arg.limit("--rpm"), "1000000001"), (arg.limit("--rpm"), "1.5"),
    (arg.seconds("--timeout"), "0"), (arg.seconds("--timeout"), "86400.5"),
    (arg.port(), "65536"), (arg.port(), "-1"), (arg.seed(), "-1"), (arg.seed(), str(2**32)),
    (arg.quantum(), "0"), (arg.quantum(), "0.0009"), (arg.quantum(), "60.5"), (arg.quantum(), "nan"),
    (arg.ttft(), "-0.1"), (arg.ttft(), "86401"), (arg.ttft(), "inf"), (arg.tpot(), "60.01"), (arg.tpot(), "-1"),
    (arg.limit("--slots", high=arg.MAX_IN_FLIGHT), "100001"), (arg.limit("--input-tpm"), "0"),
])
def test_each_type_refuses_out_of_range_and_garbage_naming_the_range(kind, text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be .* in [\[(].*; got "):
        kind(text)


@pytest.mark.parametrize("text", ["5-1", "0-10", "10", "1-1000001", "a-b", "-5", "1--2", ""])
def test_a_token_range_is_low_dash_high_or_none(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be a range LOW-HIGH of integers with 1 <= LOW <= HIGH"):
        arg.token_range("--answer-tokens")(text)
    assert arg.token_range("--answer-tokens")("100-400") == (100, 400)
    assert arg.token_range("--answer-tokens")("7-7") == (7, 7) and arg.token_range("--answer-tokens")("none") is None


def test_each_type_takes_its_bounds():
    assert arg.items()("1") == 1 and arg.items()("1000000") == 1_000_000
    assert arg.latency()("0.000001") == 1e-6 and arg.latency()("86400") == 86_400.0
    assert arg.probability("--stall-rate")("0") == 0.0
    assert arg.limit("--rpm")("none") is None and arg.limit("--rpm")("NONE") is None and arg.limit("--rpm")("7") == 7
    assert arg.seconds("--timeout")("86400") == 86_400.0
    assert arg.port()("0") == 0 and arg.seed()(str(2**32 - 1)) == 2**32 - 1
    assert arg.quantum()("0.001") == 0.001 and arg.quantum()("60") == 60.0
    assert arg.ttft()("0") == 0.0 and arg.tpot()("60") == 60.0


@pytest.mark.parametrize("command", sorted(PARSERS))
@pytest.mark.parametrize(("flag", "value"), [("--items", "10000000000"), ("--latency", "1e-320"), ("--latency", "nan")])
def test_absurd_numbers_exit_2_with_one_line_naming_the_flag(command, flag, value, capsys):
    parser = PARSERS[command]()
    if flag not in parser._option_string_actions:
        pytest.skip(f"{command} has no {flag}")
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([flag, value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}: must be" in last and "Traceback" not in last


def test_the_three_commands_share_one_latency_range():
    latencies = {name: PARSERS[name]().parse_args(["--latency", "86400"]).latency for name in PARSERS}
    assert set(latencies.values()) == {86_400.0}


def test_the_cluster_timeout_takes_a_day_as_cluster_run_does():
    assert cluster_parser().parse_args(["--timeout", "86400"]).timeout == 86_400.0


# Every flag of the three commands that takes free text rather than a number.
TEXT_FLAGS = {"--host", "--model", "--scheduler", "--server", "--plot", "--cap", "--algorithm", "--allow-origin", "--profile"}
ABSURD = ["1e-320", "1e10", "-1e10", "nan", "inf", "-inf", "9" * 5000, "1" + "0" * 400, "0x10", "1_000", " ", "1e"]


def _numeric_actions(parser):
    return [action for action in parser._actions
            if action.option_strings and action.type is not None and action.option_strings[0] not in TEXT_FLAGS]


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_numeric_flag_takes_its_number_through_the_shared_types(command):
    parser = PARSERS[command]()
    flags = {action.option_strings[0] for action in parser._actions if action.option_strings} - {"-h", "--help"}
    numeric = _numeric_actions(parser)
    untyped = {action.option_strings[0] for action in parser._actions
               if action.option_strings and action.type is None and action.nargs != 0 and action.choices is None}
    assert untyped <= TEXT_FLAGS, f"flags read as plain text: {untyped - TEXT_FLAGS}"
    assert flags == {a.option_strings[0] for a in numeric} | (flags & TEXT_FLAGS) | {
        a.option_strings[0] for a in parser._actions if a.option_strings and a.nargs == 0} - {"-h"}
    for action in numeric:
        assert action.type.__module__ == "pocket_parallel._arguments", action.option_strings


@pytest.mark.parametrize("command", sorted(PARSERS))
@pytest.mark.parametrize("value", ABSURD, ids=lambda v: v if len(v) < 20 else f"{len(v)} characters")
def test_absurd_values_of_every_numeric_flag_are_refused_or_within_bounds(command, value, capsys):
    parser = PARSERS[command]()
    for action in _numeric_actions(parser):
        flag = action.option_strings[0]
        try:
            parsed = getattr(parser.parse_args([f"{flag}={value}"]), action.dest)
        except SystemExit as exited:
            assert exited.code == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1].startswith(f"{parser.prog}: error: argument {flag}: must be"), err[-1]
            assert len(err[-1]) < 300  # one short line, whatever the value's length
            continue
        # Accepted: a finite number within the shared bounds, or "no limit".
        assert parsed is None and value in ("inf",) or (
            isinstance(parsed, (int, float)) and math.isfinite(parsed) and 0 <= parsed <= arg.MAX_PER_MINUTE), (flag, value)


def test_the_demo_with_a_tiny_latency_exits_2_instead_of_dividing_by_zero(capsys):
    from pocket_parallel.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["--latency", "1e-320", "--virtual"])
    assert exited.value.code == 2 and "--latency" in capsys.readouterr().err


def test_the_cluster_refuses_ten_billion_items_before_starting_anything(capsys):
    from pocket_parallel.cluster.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--items", "10000000000"])
    assert exited.value.code == 2 and "--items: must be an integer in [1, 1,000,000]" in capsys.readouterr().err
