"""The command line, run as a real subprocess: it prints its URL, serves, stops on Ctrl-C with status 0, refuses bad flags."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from pocket_parallel.server.cli import main
from tests.http_support import chat_body

COMMAND = [sys.executable, "-m", "pocket_parallel.server"]


def test_it_prints_its_url_serves_and_stops_cleanly_on_ctrl_c():
    process = subprocess.Popen(COMMAND + ["--port", "0", "--latency", "0.02", "--rpm", "600", "--max-concurrent", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, f"no URL in {first!r} (stderr: {process.stderr.read() if process.poll() is not None else ''})"
        response = httpx.post(url.group() + "/v1/chat/completions", json=chat_body(), timeout=10)
        assert response.status_code == 200 and response.headers["x-ratelimit-limit-requests"] == "600"
        token = next(re.search(r"admin token: (\S+)", line) for line in iter(process.stdout.readline, "")
                     if "admin token" in line).group(1)
        refill = httpx.post(url.group() + "/admin/reset", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert refill.status_code == 200 and refill.json()["limits"]["requests_per_minute"] == 600
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped after 0 requests" in out and "Traceback" not in err


@pytest.mark.parametrize("flags, named", [
    (["--latency", "0"], "--latency"),
    (["--rpm", "0"], "--rpm"),
    (["--max-concurrent", "many"], "--max-concurrent"),
    (["--algorithm", "fixed"], "--algorithm"),
    (["--failure-rate", "1"], "--failure-rate"),
    (["--port", "70000"], "--port"),
    (["--colour", "blue"], "--colour"),
    (["--quantum", "0"], "--quantum"),
    (["--quantum", "2", "--algorithm", "sliding_window"], "--quantum"),
    (["--slots", "0"], "--slots"),
    (["--ttft", "-1"], "--ttft"),
    (["--tpot", "61"], "--tpot"),
    (["--ttft", "0.5"], "--ttft"),
    (["--latency", "1", "--ttft", "0.5", "--tpot", "0.01"], "latency"),
    (["--input-tpm", "0"], "--input-tpm"),
    (["--output-tpm", "lots"], "--output-tpm"),
    (["--profile", "azure"], "--profile"),
    (["--answer-tokens", "400-100"], "--answer-tokens"),
    (["--allow-origin", "example.com"], "--allow-origin"),
    (["--allow-origin", "http://host/path"], "--allow-origin"),
])
def test_bad_flags_print_the_usage_and_exit_2(flags, named, capsys):
    with pytest.raises(SystemExit) as exited:
        main(flags)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: python -m pocket_parallel.server")
    assert named in err.splitlines()[-1]


def test_a_bad_flag_exits_2_from_a_real_process_too():
    done = subprocess.run(COMMAND + ["--tpm", "-5"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: ") and "--tpm: must be an integer in [1, 1,000,000,000]" in done.stderr


def test_a_profile_fills_in_what_no_flag_gives_and_any_flag_overrides_it():
    from pocket_parallel.server.cli import parser, settings_from

    plain = settings_from(["--port", "0"], parser())
    assert (plain.latency, plain.quantum, plain.requests_per_minute, plain.profile) == (0.5, 60.0, None, None)
    openai = settings_from(["--profile", "openai"], parser())
    assert (openai.requests_per_minute, openai.tokens_per_minute, openai.quantum) == (500, 200_000, 1.0)
    assert (openai.latency, openai.ttft, openai.tpot) == (None, 0.5, 0.01)
    overridden = settings_from(["--profile", "openai", "--rpm", "none", "--quantum", "60", "--latency", "0.2"], parser())
    assert (overridden.requests_per_minute, overridden.quantum, overridden.latency, overridden.ttft) == (None, 60.0, 0.2, None)
    hosted = settings_from(["--profile", "self-hosted", "--slots", "3", "--input-tpm", "900", "--output-tpm", "300"],
                           parser())
    assert (hosted.slots, hosted.input_tokens_per_minute, hosted.output_tokens_per_minute) == (3, 900, 300)
    assert "8 slots" not in hosted.describe() and "3 slots (the rest queue)" in hosted.describe()
