"""The terminal demo: python -m pocket_parallel."""


from __future__ import annotations

import subprocess
import sys

import pytest

from pocket_parallel.__main__ import main


def test_virtual_demo_prints_the_table(capsys):
    assert main(["--items", "20", "--latency", "0.2", "--concurrency", "5", "--virtual"]) == 0
    out = capsys.readouterr().out
    assert "20 calls of 0.2 s" in out and "virtual clock" in out
    assert "sequential         4.000 s    1.00x  measured" in out
    assert "parallel           0.800 s    5.00x  measured" in out
    assert "in-order schedule  0.800 s    5.00x" in out and "lower bound        0.800 s    5.00x" in out
    assert "efficiency: 100% of the in-order schedule's pace (the rest is overhead); peak in flight: 5 calls" in out


def test_real_demo_and_plot(tmp_path, capsys):
    picture = tmp_path / "speedup.png"
    assert main(["--items", "6", "--latency", "0.01", "--concurrency", "3", "--plot", str(picture)]) == 0
    assert "real clock" in capsys.readouterr().out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unlimited_concurrency_is_spelled_none(capsys):
    assert main(["--items", "8", "--concurrency", "none", "--virtual"]) == 0
    assert "no limit" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, mentions",
    [
        (["--concurrency", "0"], "concurrency"),
        (["--concurrency", "-3"], "concurrency"),
        (["--concurrency", "2.5"], "concurrency"),
        (["--items", "0"], "items"),
        (["--items", "many"], "items"),
        (["--latency", "-1"], "latency"),
        (["--latency", "nan"], "latency"),
        (["--jitter", "9"], "jitter"),
        (["--plot", "out.jpg"], "png"),
        (["--unknown"], "unrecognized"),
    ],
)
def test_bad_arguments_exit_2_with_usage(argv, mentions):
    process = subprocess.run(
        [sys.executable, "-m", "pocket_parallel", *argv, "--virtual"], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 2
    assert "usage:" in process.stderr and mentions in process.stderr
    assert "Traceback" not in process.stderr
