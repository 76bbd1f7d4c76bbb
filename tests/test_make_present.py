"""``make present`` as an instructor runs it: the lecture app served by Voilà, on loopback, without code.

The test starts the real ``make present PRESENT_PORT=<free port> PRESENT_ARGS="--no-browser
--Voila.port_retries=0"`` in a session of its own, with Jupyter's per-user folders and the
temporary folder (where Voilà keeps its kernels' connection files) in a folder of the test's.
Then:

- it printed ``http://127.0.0.1:PORT/`` and listens on 127.0.0.1 only;
- the page it serves carries no code;
- in headless Chromium (when /usr/bin/chromium exists), at 1280×720 and at 1920×1080: no
  code cell is visible, the text is at least 1/40 of the screen's height and nothing runs
  off the side; a key press on the explorer's semaphore slider brings a new picture (the time
  it took is printed, as is the time from ``make`` to a page with its widgets drawn); the race
  runs once and its verdict agrees with the times it shows; the knee's server-limit slider
  redraws its picture. Screenshots of each panel go to a temporary folder, and the race at
  1280×720 also to ``$PP_LECTURE_SCREENSHOT`` (``make test-browser`` sets docs/lecture.png);
- Ctrl-C (SIGINT to the process group, as a terminal sends it) stops make, Voilà and every
  kernel Voilà started.

A bad ``PRESENT_PORT`` makes ``make present`` fail at once, naming the port, leaving nothing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pocket_parallel import find_knee, measure_throughput
from pocket_parallel.lecture.knee_panel import CONCURRENCY
from tests.processes import descendants, kill, process_group, processes_using
from tests.support import free_port, jupyter_environment, printed_addresses

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 120  # make checks the venv, Voilà starts, the first page starts a kernel: slow on a busy machine
CHROMIUM = Path(os.environ.get("PP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
APP_SOURCE = "lecture_app()"  # the app notebook's code: it must never reach the page
APP_NOTEBOOK_SOURCE = [line.strip() for cell in json.loads((ROOT / "present" / "lecture.ipynb").read_text())["cells"]
                       for line in cell["source"] if line.strip()]
MIN_FONT_SHARE = 1 / 40  # of the screen's height: 18 px at 720, 27 px at 1080
SCREENS = ((1280, 720), (1920, 1080))


@dataclass
class Present:
    """A running ``make present``: where it listens, what it printed, and when it was started."""

    process: subprocess.Popen
    home: Path
    log: Path
    port: int
    started: float
    printed: list[str] = field(default_factory=list)
    listening_after: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def kernels(self) -> dict[int, str]:
        """The kernels Voilà has running (its processes whose command line names ipykernel)."""
        return {pid: command for pid, command in descendants(self.process.pid).items() if "ipykernel" in command}


def _start(home: Path, port: int, extra: str = "") -> Present:
    log = home / "make-present.log"
    command = ["make", "--no-print-directory", "-C", str(ROOT), "present", f"PRESENT_PORT={port}",
               f"PRESENT_ARGS=--no-browser --Voila.port_retries=0 {extra}".strip()]
    with open(log, "wb") as output:
        # A session of its own: a terminal's Ctrl-C reaches its whole process group, and so can the test's.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=jupyter_environment(home, TMPDIR=str(home)),
                                   start_new_session=True)
    return Present(process, home, log, port, time.monotonic())


def _wait_for_address(present: Present) -> None:
    present.printed = printed_addresses(present.process, present.log, present.port, banner="Voilà is running at",
                                        command="make present", deadline=present.started + STARTUP_SECONDS)
    present.listening_after = time.monotonic() - present.started


def _interrupt(present: Present) -> tuple[int | None, list[str]]:
    """Ctrl-C as a terminal sends it; returns make's exit status and what had to be killed after."""
    status: int | None = present.process.poll()
    if status is None:
        os.killpg(present.process.pid, signal.SIGINT)
        try:
            status = present.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            status = None
    time.sleep(0.5)  # a kernel told to shut down takes a moment to exit
    left = {**process_group(present.process.pid), **processes_using(present.home)}
    kill(left)
    if present.process.poll() is None:
        os.killpg(present.process.pid, signal.SIGKILL)
        present.process.wait(timeout=10)
    return status, [f"pid {pid}: {command}" for pid, command in left.items()]


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(_address(address, width))
    return found


def _address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # /proc prints each 32-bit word little-endian
    return socket.inet_ntop(socket.AF_INET6, words)


# One make present for the module: its fixture checks, when it stops it with Ctrl-C, that nothing is left.
pytestmark = pytest.mark.shares_resources


@pytest.fixture(scope="module")
def present(tmp_path_factory) -> Iterator[Present]:
    """``make present`` on a free port, without a browser, as INSTRUCTORS.md shows."""
    running = _start(tmp_path_factory.mktemp("make-present"), free_port())
    try:
        _wait_for_address(running)
        yield running
    finally:
        _status, leftovers = _interrupt(running)
        if leftovers:
            pytest.fail("make present left processes running after Ctrl-C:\n" + "\n".join(leftovers))


def test_it_prints_its_address_on_loopback(present: Present):
    assert present.printed == [present.url]
    print(f"\nmake present listened after {present.listening_after:.1f} s")


def test_it_listens_on_127_0_0_1_only(present: Present):
    assert _listening_addresses(present.port) == {"127.0.0.1"}


def test_the_page_carries_no_code(present: Present):
    with urllib.request.urlopen(present.url, timeout=STARTUP_SECONDS) as response:
        page = response.read().decode()
    assert response.status == 200
    for line in APP_NOTEBOOK_SOURCE:
        assert line not in page, f"the page carries the app's code: {line!r}"


# -- in a browser ---------------------------------------------------------------------------------


def _sync_api():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"browser test skipped: chromium not installed at {CHROMIUM} (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _open(page, present: Present) -> float:
    """Open the app and wait until the explorer's picture is drawn; returns the seconds it took."""
    # Only the app's own server: the template's icon font on a CDN must not make the test depend on a network.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(present.url)
               else route.abort())
    opened = time.monotonic()
    page.goto(present.url, timeout=STARTUP_SECONDS * 1000)
    _picture_drawn(page, ".pp-explorer .pp-picture")
    return time.monotonic() - opened


def _picture_drawn(page, selector: str) -> None:
    page.wait_for_function(
        "selector => { const img = document.querySelector(selector);"
        " return img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0; }",
        arg=selector, timeout=STARTUP_SECONDS * 1000)


def _explorer_settled(page) -> None:
    page.wait_for_function("() => !document.querySelector('.pp-explorer').classList.contains('pp-measuring')",
                           timeout=60_000)


def _check_no_code_and_large_type(page, where: str, height: int) -> None:
    code = page.locator(".jp-InputArea, .jp-CodeMirrorEditor, .cm-editor, .jp-InputPrompt")
    visible = [i for i in range(code.count()) if code.nth(i).is_visible()]
    assert not visible, f"{where}: a code cell is visible"
    assert APP_SOURCE not in page.inner_text("body"), f"{where}: the app's code shows"
    # Every visible piece of text in the app, sliders' labels and readouts included.
    smallest = page.evaluate(
        """() => {
            const walker = document.createTreeWalker(document.querySelector('.pp-lecture'), NodeFilter.SHOW_TEXT);
            let smallest = [1e9, ''];
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const element = node.parentElement;
                if (!node.textContent.trim() || !element || element.closest('style')) continue;
                const box = element.getBoundingClientRect();
                if (box.width === 0 || box.height === 0) continue;
                const size = parseFloat(getComputedStyle(element).fontSize);
                if (size < smallest[0]) smallest = [size, node.textContent.trim().slice(0, 40)];
            }
            return smallest;
        }""")
    assert smallest[0] >= MIN_FONT_SHARE * height, f"{where}: text {smallest[1]!r} is {smallest[0]} px high"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{where}: the page is {overflow} px wider than the screen"


def _screenshot(page, name: str, tmp_path: Path) -> Path:
    """Save the screen; the race at 1280×720 also goes to ``$PP_LECTURE_SCREENSHOT`` (README's picture)."""
    page.mouse.move(0, 0)
    path = tmp_path / name
    page.screenshot(path=str(path))
    wanted = os.environ.get("PP_LECTURE_SCREENSHOT")
    if wanted and name == "lecture-race-1280.png":
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        Path(wanted).write_bytes(path.read_bytes())
        print(f"screenshot of the lecture app: {wanted}")
    return path


@pytest.mark.browser
def test_in_a_browser_the_app_answers_without_code_in_large_type(present: Present, tmp_path: Path):
    sync_api = _sync_api()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for width, height in SCREENS:
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                try:
                    _drive(page, present, width, height, tmp_path)
                except Exception as error:
                    failure = tmp_path / f"failure-{width}.png"
                    page.screenshot(path=str(failure))
                    raise AssertionError(f"{error}\n(page at {failure}; make present's log ends:\n"
                                         f"{present.log.read_text(errors='replace')[-2000:]})") from error
                finally:
                    page.close()  # Voilà shuts the page's kernel down when its page goes
        finally:
            browser.close()


def _drive(page, present: Present, width: int, height: int, tmp_path: Path) -> None:
    where = f"{width}×{height}"
    took = _open(page, present)
    print(f"\n{where}: page opened -> widgets drawn {took:.1f} s; with make present -> address printed "
          f"({present.listening_after:.1f} s), {present.listening_after + took:.1f} s from make to a ready page")
    _explorer_settled(page)
    _check_no_code_and_large_type(page, f"{where}, explorer", height)
    _screenshot(page, f"lecture-explorer-{width}.png", tmp_path)

    # The explorer: a key press on the semaphore slider brings a new picture.
    picture = page.locator(".pp-explorer .pp-picture")
    times = []
    for step in range(3):
        before = picture.get_attribute("src")
        page.locator(".pp-concurrency .noUi-handle").click()
        pressed = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([src, c]) => document.querySelector('.pp-explorer .pp-picture').getAttribute('src') !== src"
            " && document.querySelector('.pp-summary').innerText.includes('at most ' + c + ' in flight')",
            arg=[before, 5 + step], timeout=30_000)
        times.append(time.perf_counter() - pressed)
        _explorer_settled(page)
    print(f"{where}: explorer key press to new picture: " + ", ".join(f"{1000 * t:.0f} ms" for t in times))

    # The race: once, and the verdict agrees with the times shown beside the bars.
    page.get_by_text("2 · Live race").click()
    page.locator(".pp-race-button").click()
    page.locator(".pp-verdict").wait_for(timeout=60_000)
    sequential = _seconds(page.locator(".pp-race-sequential").inner_text())
    parallel = _seconds(page.locator(".pp-race-parallel").inner_text())
    verdict = page.locator(".pp-verdict").inner_text()
    assert f"{parallel:.3g} s against {sequential:.3g} s" in verdict, verdict
    assert "12 of 12 calls" in page.locator(".pp-race-sequential").inner_text()
    assert "12 of 12 calls" in page.locator(".pp-race-parallel").inner_text()
    shown = float(re.search(r"Parallel finished ([\d.]+)× sooner", verdict).group(1))
    assert shown == pytest.approx(sequential / parallel, rel=0.02, abs=0.06), verdict
    _check_no_code_and_large_type(page, f"{where}, race", height)
    _screenshot(page, f"lecture-race-{width}.png", tmp_path)

    # The knee: the slots slider redraws the curve.
    page.get_by_text("3 · Throughput knee").click()
    knee = page.locator(".pp-knee .pp-figure")
    _picture_drawn(page, ".pp-knee .pp-figure")
    before, line = knee.get_attribute("src"), page.locator(".pp-knee-line").inner_text()
    page.locator(".pp-knee-slots .noUi-handle").click()
    page.keyboard.press("ArrowLeft")  # the server's slots from 8 to 7
    page.wait_for_function(
        "([src, line]) => document.querySelector('.pp-knee .pp-figure').getAttribute('src') !== src"
        " && document.querySelector('.pp-knee-line').innerText !== line",
        arg=[before, line], timeout=30_000)
    assert page.locator(".pp-knee-slots .widget-readout").inner_text().strip() == "7"
    seven = find_knee(measure_throughput(CONCURRENCY, 200, profile="self-hosted", slots=7))
    assert f"no client gets more than {seven.max_throughput:.3g} calls/s there" in page.locator(".pp-knee-line").inner_text()
    _check_no_code_and_large_type(page, f"{where}, knee", height)
    _screenshot(page, f"lecture-knee-{width}.png", tmp_path)


def _seconds(text: str) -> float:
    return float(re.search(r"([\d.]+) s\b", text.split("·")[-1]).group(1))


# -- stopping it ------------------------------------------------------------------------------------


def test_ctrl_c_stops_make_voila_and_every_kernel(present: Present):
    # A page opened over plain HTTP starts a kernel that no browser will close: Ctrl-C must stop it.
    with urllib.request.urlopen(present.url, timeout=STARTUP_SECONDS) as response:
        response.read()
    kernels = present.kernels()
    assert kernels, "opening the page should have started a kernel"
    status, leftovers = _interrupt(present)
    assert not leftovers, "left running after Ctrl-C:\n" + "\n".join(leftovers)
    assert status is not None, "make present did not stop within 60 s of Ctrl-C"
    assert not any(Path(f"/proc/{pid}").exists() for pid in kernels)
    assert "Kernel shutdown" in present.log.read_text(errors="replace")


# -- bad usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["abc", "0", "70000", "80.5"])
def test_a_bad_port_is_refused_naming_it_and_leaves_nothing(port: str, tmp_path: Path):
    before = set(descendants())
    finished = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "present", f"PRESENT_PORT={port}"],
                              capture_output=True, text=True, timeout=STARTUP_SECONDS, env=jupyter_environment(tmp_path, TMPDIR=str(tmp_path)))
    assert finished.returncode != 0
    assert f"PRESENT_PORT must be a port number from 1 to 65535; got '{port}'" in finished.stdout
    assert "Starting the lecture app" not in finished.stdout  # refused before Voilà starts
    assert set(descendants()) <= before and not processes_using(tmp_path)
