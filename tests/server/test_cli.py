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
