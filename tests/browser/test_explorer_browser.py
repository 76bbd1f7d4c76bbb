"""The explorer in a real browser: JupyterLab on loopback, driven by headless Debian Chromium.

Runs with ``make test-browser`` (and within ``make test`` when /usr/bin/chromium exists).
Playwright's Python package drives the system Chromium through ``executable_path``: no
browser is downloaded. The test opens a notebook that shows the explorer, runs its cell,
moves the semaphore slider with the keyboard, and checks that the summary and the picture
changed (printing how long each key press took to a new picture; nothing is asserted about
time); it also types a bad value and checks the message. A screenshot of the explorer is
saved to ``$PP_SCREENSHOT`` (``make test-browser`` sets docs/explorer.png), else to a
temporary folder. JupyterLab and its kernel are stopped at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = [pytest.mark.browser, pytest.mark.shares_resources]  # one JupyterLab for the module, stopped at its end

CHROMIUM = Path(os.environ.get("PP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"browser test skipped: chromium not installed at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

# The explorer's cell, as a learner would write it. The semaphore starts at 4 of 1..100.
CELL = "from pocket_parallel import explorer\n\nexplorer(items=40, max_concurrency=4, latency=0.5, jitter=0.3)"
STARTUP_SECONDS = 45  # JupyterLab's first start on a busy 2-core machine takes a while


def _notebook() -> dict:
    # Without kernelspec metadata JupyterLab asks which kernel to use, and the dialog
    # swallows every click meant for the notebook.
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "explorer", "metadata": {},
                   "outputs": [], "source": CELL}],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab from this venv on 127.0.0.1, a free port and a token, with only our notebook."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    root.mkdir()
    (root / "explorer.ipynb").write_text(json.dumps(_notebook(), indent=1))
    # No "Would you like to get notified about Jupyter news?" toast over the page.
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        # Keep JupyterLab's state (settings, workspaces, runtime files) out of the user's home.
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLBACKEND": "Agg",
    }
    log = home / "lab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
    ]
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses that unless told
        command.append("--allow-root")
    with open(log, "wb") as output:
        # A session of its own: if the server does not stop when asked, its whole group
        # (the server and the kernel it started) can be stopped at once.
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    running = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with status {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                running.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield running
    finally:
        _stop(server, running)


def _stop(server: subprocess.Popen, lab: Lab) -> None:
    """Shut the kernels and the server down politely, then by signal if they linger."""
    try:
        for kernel in lab.api("/api/kernels") or []:  # type: ignore[union-attr]
            lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        lab.api("/api/shutdown", method="POST")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass  # already gone, or never came up: the signals below make sure
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
    try:
        os.killpg(server.pid, signal.SIGKILL)  # anything the server left behind in its group
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def _settled(page, timeout_ms: int = 30_000) -> None:
    """Wait until the picture is drawn and no measurement of the curve is pending."""
    page.wait_for_function(
        """() => {
            const box = document.querySelector('.pp-explorer');
            const img = document.querySelector('.pp-picture');
            return box && !box.classList.contains('pp-measuring') && img && img.complete && img.naturalWidth > 0;
        }""",
        timeout=timeout_ms,
    )


def _picture(page) -> tuple[str, bytes]:
    picture = page.locator(".pp-picture")
    return picture.get_attribute("src") or "", picture.screenshot()


def _run_first_cell(page) -> None:
    """Click the cell's editor and press Shift+Enter, until the kernel takes the cell.

    The kernel can report idle a moment before the page's connection to it carries an
    execution; a cell sent in that moment never runs, so it is sent again.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").first
    for _ in range(3):
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "() => /\\[(\\*|\\d+)\\]/.test(document.querySelector('.jp-Notebook .jp-Cell .jp-InputPrompt').innerText)",
                timeout=10_000)
            return
        except sync_api.TimeoutError:
            continue
    pytest.fail("the notebook's cell never started running")


def test_explorer_runs_and_redraws_in_jupyterlab(lab: Lab, page, tmp_path):
    try:
        _explore(lab, page, tmp_path)
    except Exception as error:
        failure = tmp_path / "failure.png"
        page.screenshot(path=str(failure))
        raise AssertionError(f"{error}\n(page at {failure}; JupyterLab log ends:\n{lab.log.read_text()[-2000:]})") from error


def _explore(lab: Lab, page, tmp_path: Path) -> None:
    page.goto(f"{lab.url}/lab/tree/explorer.ipynb?token={lab.token}", timeout=STARTUP_SECONDS * 1000)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for(timeout=STARTUP_SECONDS * 1000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=STARTUP_SECONDS * 1000)

    _run_first_cell(page)
    page.locator(".pp-explorer").wait_for(timeout=STARTUP_SECONDS * 1000)
    _settled(page)
    summary = page.locator(".pp-summary")
    before_text = summary.inner_text()
    before_src, before_pixels = _picture(page)
    assert "40 calls, at most 4 in flight" in before_text and "speedup" in before_text and " s," in before_text

    # The live widget shows, not the still picture stored beside it for notebook viewers.
    assert page.locator(".jp-Notebook .jp-OutputArea-output img").count() == 1

    # Click the semaphore's handle and press the arrow key: C goes from 4 to 5, then on to 9.
    page.locator(".pp-concurrency .noUi-handle").click()
    waits = []
    src = before_src
    for c in range(5, 10):
        pressed = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            """([src, c]) => document.querySelector('.pp-summary').innerText.includes(`at most ${c} in flight`)
                             && document.querySelector('.pp-picture').getAttribute('src') !== src""",
            arg=[src, c], timeout=20_000)
        waits.append(time.perf_counter() - pressed)
        src = page.locator(".pp-picture").get_attribute("src") or ""
        if c == 5:
            _settled(page)
            five_text = summary.inner_text()
            five_src, five_pixels = _picture(page)
            assert "40 calls, at most 5 in flight" in five_text and five_text != before_text
            assert page.locator(".pp-text-max-concurrency input").input_value() == "5"
            assert five_src != before_src and five_pixels != before_pixels, "the picture must be redrawn"
    print(f"\nkey press to new picture in the browser (C = 5 to 9): {', '.join(f'{1000 * w:.0f}' for w in waits)} ms; "
          f"median {1000 * statistics.median(waits):.0f} ms")
    _settled(page)
    after_text = summary.inner_text()
    after_src = page.locator(".pp-picture").get_attribute("src") or ""
    assert "40 calls, at most 9 in flight" in after_text

    page.locator(".pp-concurrency .noUi-handle").blur()
    page.mouse.move(0, 0)  # no hover or focus marks in the screenshot for the README
    shot = Path(os.environ.get("PP_SCREENSHOT") or tmp_path / "explorer.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.locator(".pp-explorer").screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot of the explorer: {shot}")

    # A bad value typed into a box is refused with a message, and nothing else changes.
    box = page.locator(".pp-text-items input")
    box.fill("lots")
    box.press("Enter")
    message = page.locator(".pp-message")
    message.get_by_text("items must be an integer").wait_for(timeout=10_000)
    assert "'lots'" in message.inner_text()
    assert summary.inner_text() == after_text
    assert box.input_value() == "40"
    assert _picture(page)[0] == after_src
