"""``make lab`` as a learner runs it: the first notebook's own address, and no pop-ups on the way.

The test starts the real ``make lab LAB_PORT=<free port> LAB_ARGS="--no-browser
--ServerApp.port_retries=0 ..."``, with Jupyter's and IPython's per-user folders (config, data,
runtime) and the notebook checkpoints in a temporary folder, so that the user's own settings
cannot change what it sees and it leaves nothing behind. Then:

- the addresses printed are ``http://localhost:PORT/lab/tree/00_start_here.ipynb?token=...`` (and
  the same on 127.0.0.1), and the file a browser is sent to redirects there;
- the page served opens that notebook, with nbgrader's JupyterLab extension disabled, and
  nbgrader's server extensions are not loaded (no /formgrader): they are for instructors;
- the news setting served defaults to ``"false"``, so JupyterLab never asks "Would you like to
  get notified about official Jupyter news?";
- in headless Chromium (when /usr/bin/chromium exists), the notebook opens and that question
  does not appear.

JupyterLab and the kernel the browser starts are stopped at the end; the test fails at teardown
if any process is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.processes import kill, process_group, processes_using
from tests.support import free_port, jupyter_environment, printed_addresses

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 90  # make checks the venv, then JupyterLab starts; a busy 2-core machine is slow
FIRST_NOTEBOOK = "00_start_here.ipynb"
NEWS_QUESTION = "official Jupyter news"
CHROMIUM = Path(os.environ.get("PP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@dataclass
class Lab:
    """A running ``make lab``: the addresses it printed, and how to reach and stop it."""

    process: subprocess.Popen
    home: Path
    log: Path
    port: int
    printed: list[str]
    token: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _wait_for_addresses(lab: Lab) -> None:
    """Read the log until the server has printed where it is; fail if it dies or takes too long."""
    found = printed_addresses(lab.process, lab.log, lab.port, banner="To access the server", command="make lab",
                              deadline=time.monotonic() + STARTUP_SECONDS, at_least=2)  # the log line and the banner
    lab.printed = sorted(set(found))
    lab.token = parse_qs(urlsplit(found[0]).query).get("token", [""])[0]


def _stop(lab: Lab) -> list[str]:
    """Stop kernels and server politely, then by signal; return what had to be killed."""
    try:
        status, body = lab.get("/api/kernels")
        for kernel in json.loads(body) if status == 200 else []:
            lab.get(f"/api/kernels/{kernel['id']}", method="DELETE")
        lab.get("/api/shutdown", method="POST")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass  # never came up, or already gone: the signals below make sure
    try:
        lab.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGTERM)
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait(timeout=10)
    time.sleep(0.5)  # a kernel being shut down takes a moment to exit
    left = {**process_group(lab.process.pid), **processes_using(lab.home)}
    kill(left)
    return [f"pid {pid}: {command}" for pid, command in left.items()]


# One make lab for the module: its fixture checks, when it stops, that nothing was left running.
pytestmark = pytest.mark.shares_resources


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """``make lab`` on a free port, without a browser, as README.md shows."""
    home = tmp_path_factory.mktemp("make-lab")
    port = free_port()
    log = home / "make-lab.log"
    # JupyterLab keeps a checkpoint of each notebook it opens: here, not beside the course's notebooks.
    command = ["make", "--no-print-directory", "-C", str(ROOT), "lab", f"LAB_PORT={port}",
               f"LAB_ARGS=--no-browser --ServerApp.port_retries=0 --FileCheckpoints.checkpoint_dir={home / 'checkpoints'}"]
    with open(log, "wb") as output:
        # A session of its own, so that make, the shell and JupyterLab can be stopped together.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=jupyter_environment(home),
                                   start_new_session=True)
    running = Lab(process, home, log, port, printed=[])
    try:
        _wait_for_addresses(running)
        yield running
    finally:
        leftovers = _stop(running)
        if leftovers:
            pytest.fail("make lab left processes running after it was shut down:\n" + "\n".join(leftovers))


def test_it_prints_and_opens_the_first_notebooks_own_address(lab: Lab):
    assert lab.token, lab.printed
    assert {urlsplit(url).netloc for url in lab.printed} == {f"localhost:{lab.port}", f"127.0.0.1:{lab.port}"}
    for url in lab.printed:
        assert urlsplit(url).path == f"/lab/tree/{FIRST_NOTEBOOK}", url
        assert parse_qs(urlsplit(url).query) == {"token": [lab.token]}, url
    # What a browser is given to open (also without --no-browser): a page that redirects there.
    opened = list((lab.home / "runtime").glob("jpserver-*-open.html"))
    assert len(opened) == 1 and f"/lab/tree/{FIRST_NOTEBOOK}?token={lab.token}" in opened[0].read_text()


def test_the_page_opens_the_first_notebook_without_nbgrader(lab: Lab):
    status, body = lab.get(f"/lab/tree/{FIRST_NOTEBOOK}")
    assert status == 200
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                  body.decode(), re.DOTALL).group(1))
    assert config["treePath"] == FIRST_NOTEBOOK
    assert "@jupyter/nbgrader" in config["disabledExtensions"]
    assert lab.get(f"/api/contents/{FIRST_NOTEBOOK}?content=0")[0] == 200, "the server must serve notebooks/"
    assert lab.get("/formgrader")[0] == 404, "nbgrader's server extensions must be off for the course's server"
    assert "nbgrader" not in lab.log.read_text(errors="replace")


def test_the_news_question_is_answered_never(lab: Lab):
    status, body = lab.get("/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert status == 200
    setting = json.loads(body)
    assert setting["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert not json.loads(setting["raw"] or "{}"), "the test must see the course's default, not a user's choice"


@pytest.mark.browser
def test_in_a_browser_the_notebook_opens_with_no_news_popup(lab: Lab, tmp_path: Path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"browser test skipped: chromium not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    local = next(url for url in lab.printed if "127.0.0.1" in url)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            try:
                page.goto(local, timeout=STARTUP_SECONDS * 1000)
                page.locator(".jp-RenderedMarkdown h1", has_text="Start here").first.wait_for(timeout=STARTUP_SECONDS * 1000)
                # The question would come once the settings are loaded; by the time the kernel is idle, they are.
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=STARTUP_SECONDS * 1000)
                page.wait_for_timeout(2000)
                assert page.get_by_text(NEWS_QUESTION).count() == 0, "JupyterLab asked about Jupyter news"
                assert page.locator(".lm-TabBar-tab.lm-mod-current", has_text=FIRST_NOTEBOOK).count() >= 1, (
                    "the first notebook is not the tab shown")
            except Exception:
                page.screenshot(path=str(tmp_path / "make-lab.png"))
                raise
        finally:
            browser.close()
