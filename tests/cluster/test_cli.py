"""python -m pocket_parallel.cluster: a usage line and status 2 on bad arguments; a table and status 0 on a run."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pocket_parallel.cluster.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    (["--items", "0"], "--items: must be an integer in [1, 1,000,000]"),
    (["--items", "ten"], "--items: must be an integer in [1, 1,000,000]"),
    (["--max-in-flight", "0"], "--max-in-flight: must be an integer in [1, 100,000], or 'none'"),
    (["--latency", "-1"], "--latency: must be a number of seconds in [1e-06, 86400]"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
    (["--workers", "65"], "--workers: must be an integer in [1, 64]"),
    (["--cap", "global"], "--cap: invalid choice"),
    (["--cap", "static_split", "--max-in-flight", "none"], "--cap static_split needs --max-in-flight"),
    (["--max-per-minute", "1"], "--max-per-minute: must be an integer in [2, 1,000,000,000]"),
    (["--server", "127.0.0.1:8000"], "--server must be an http:// URL"),
    (["--kill-worker-after", "5", "--scheduler", "tcp://127.0.0.1:8786"], "not with --scheduler"),
])
def test_bad_arguments_print_the_usage_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv, out=io.StringIO())
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m pocket_parallel.cluster") and message in err


def test_a_run_prints_what_the_server_counted_and_exits_0():
    done = subprocess.run(
        [sys.executable, "-m", "pocket_parallel.cluster", "--workers", "2", "--items", "64", "--max-in-flight", "8",
         "--latency", "0.05"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    table = dict(line.split(None, 1) if "  " not in line else [part.strip() for part in line.split("  ", 1)]
                 for line in done.stdout.splitlines()[1:])
    assert table["answers"] == "64" and table["failures"] == "0"
    assert table["peak in flight (server)"].endswith("(cap held: yes)")
    assert int(table["peak in flight (server)"].split()[0]) <= 8
    assert table["429s (server)"] == "0"
    assert "ideal ceil(N/C) x L" in table and "0.40 s" in table["ideal ceil(N/C) x L"]
