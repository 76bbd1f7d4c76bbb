"""The HTTP benchmark: N real calls of L = 50 ms to the local server, at most C = 100 in flight, each client stack.

The server (``python -m pocket_parallel.server``) runs in a **separate process**, started
once for the whole benchmark, so the client's CPU time is measured alone: ``time.process_time()``
of this process around each run (the event loop's set-up and tear-down included), and the
server's from ``/proc/PID/stat`` (user + system ticks; Linux only, else not reported). The
server's ``/stats`` is reset before each run and read after it: every run must end with N
answers and no more than C calls in flight at the server (the cookbook-style contender has no
cap of its own, so its peak is reported, not required).

Contenders, each asking the same N prompts:

- ``floor``: plain ``asyncio.gather`` over one coroutine per call, each in
  ``async with asyncio.Semaphore(C)``, posting with one shared ``aiohttp.ClientSession`` and
  reading the JSON by hand: what anyone would write, and the fastest client stack installed.
- ``node``: our ``BoundedParallelBatchNode`` (``max_concurrency=C``) over ``OpenAILLM``.
- ``openai_llm``: ``OpenAILLM`` under gather + Semaphore, without the node: the node's share.
- ``sdk``: the official ``AsyncOpenAI`` as anyone would use it (``chat.completions.create``,
  the client's default HTTP stack) under gather + Semaphore.
- ``sdk_aiohttp``: the same with the client's aiohttp transport (``DefaultAioHttpClient``).
- ``floor_anthropic``: the floor posting to Anthropic's ``/v1/messages`` instead (the floor of
  the two ``AnthropicLLM`` rows).
- ``node_anthropic`` and ``anthropic_llm``: the same as ``node`` and ``openai_llm`` over
  ``AnthropicLLM`` (the official ``anthropic`` client, its aiohttp transport).
- ``node_noop``: our node over an in-process LLM that only sleeps L: the node's own CPU per
  call, with no HTTP at all (the server sees none of its calls).
- ``cookbook``: written by us in the style of the OpenAI cookbook's parallel request processor:
  a queue of requests, a capacity that refills continuously and is checked every millisecond,
  a retry queue, no cap on calls in flight; sized by Little's law to C / L requests per second,
  with a bucket of C requests (the cookbook's holds a whole minute, which would start this
  whole batch at once).

Each repetition runs every contender once, in an order rotated by the repetition, so a burst of
load on the shared machine hits them alike; ratios are taken against the floor of the same
repetition.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from pocketflow import AsyncFlow

from pocket_parallel.backends.anthropic_llm import AnthropicLLM
from pocket_parallel.backends.openai_llm import OpenAILLM
from pocket_parallel.experiment import AskEach
from pocket_parallel.service.model import answer_to

from .machine import load_average
from .standalone import run_alone


@dataclass(frozen=True)
class HttpPlan:
    """What the HTTP benchmark runs: N calls of ``latency`` seconds, at most ``limit`` in flight."""

    name: str
    n: int = 2_000
    limit: int = 100
    latency: float = 0.05
    repetitions: int = 3

    @property
    def ideal(self) -> float:
        """ceil(N / C) × L: no schedule with at most C in flight beats it."""
        return math.ceil(self.n / self.limit) * self.latency


HTTP_PLANS = {
    "full": HttpPlan("full", repetitions=5),
    "quick": HttpPlan("quick", n=300, repetitions=1),
}

Run = Callable[[str, int, int, float], Awaitable[list[str]]]


@dataclass(frozen=True)
class HttpContender:
    """One way of making the calls: a key, a label for tables, whether it is ours, and how it runs."""

    key: str
    label: str
    ours: bool
    run: Run
    capped: bool = True  # whether it promises at most C in flight
    floor: str = "floor"  # the contender whose client CPU it is set against
    remote: bool = True  # whether its calls go to the server (checked there)


def _prompts(n: int) -> list[str]:
    return [f"Summarize: document {i} of {n}" for i in range(1, n + 1)]


def _body(prompt: str) -> dict[str, Any]:
    return {"model": "pocket-parallel-sim", "messages": [{"role": "user", "content": prompt}]}


def _openai_text(answer: dict[str, Any]) -> str:
    text: str = answer["choices"][0]["message"]["content"]
    return text


def _anthropic_text(answer: dict[str, Any]) -> str:
    return "".join(block["text"] for block in answer["content"] if block["type"] == "text")


def _floor(path: str, extra: dict[str, Any], read: Callable[[dict[str, Any]], str]) -> Run:
    async def floor(url: str, n: int, limit: int, latency: float) -> list[str]:
        """gather + Semaphore(C) over one shared aiohttp session, the JSON read by hand."""
        gate = asyncio.Semaphore(limit)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:

            async def one(prompt: str) -> str:
                async with gate:
                    async with session.post(url + path, json={**_body(prompt), **extra}) as response:
                        response.raise_for_status()
                        return read(await response.json())

            return await asyncio.gather(*(one(p) for p in _prompts(n)))

    return floor


floor = _floor("/v1/chat/completions", {}, _openai_text)
floor_anthropic = _floor("/v1/messages", {"max_tokens": 1_024}, _anthropic_text)


def _openai(url: str) -> OpenAILLM:
    return OpenAILLM(url + "/v1")


def _anthropic(url: str) -> AnthropicLLM:
    return AnthropicLLM(url)


async def _in_node(llm: Any, n: int, limit: int) -> list[str]:
    shared: dict[str, Any] = {"prompts": _prompts(n)}
    await AsyncFlow(start=AskEach(llm, max_concurrency=limit)).run_async(shared)
    answers: list[str] = shared["answers"]
    return answers


def _node(backend: Callable[[str], Any]) -> Run:
    async def node(url: str, n: int, limit: int, latency: float) -> list[str]:
        """Our bounded node over the backend."""
        return await _in_node(backend(url), n, limit)

    return node


def _bare(backend: Callable[[str], Any]) -> Run:
    async def bare(url: str, n: int, limit: int, latency: float) -> list[str]:
        """The backend under gather + Semaphore(C), no node."""
        llm, gate = backend(url), asyncio.Semaphore(limit)

        async def one(prompt: str) -> str:
            async with gate:
                answer: str = await llm(prompt)
                return answer

        return await asyncio.gather(*(one(p) for p in _prompts(n)))

    return bare


node, openai_llm = _node(_openai), _bare(_openai)


async def node_noop(url: str, n: int, limit: int, latency: float) -> list[str]:
    """Our node over an in-process LLM that only waits L: the node's own CPU, no HTTP."""

    async def waiting(prompt: str) -> str:
        await asyncio.sleep(latency)
        return answer_to(prompt)

    return await _in_node(waiting, n, limit)


def _sdk(aiohttp_transport: bool) -> Run:
    async def sdk(url: str, n: int, limit: int, latency: float) -> list[str]:
        import openai

        extra: dict[str, Any] = {"http_client": openai.DefaultAioHttpClient()} if aiohttp_transport else {}
        gate = asyncio.Semaphore(limit)
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", **extra) as client:

            async def one(prompt: str) -> str:
                async with gate:
                    completion = await client.chat.completions.create(
                        model="pocket-parallel-sim", messages=[{"role": "user", "content": prompt}])
                    return completion.choices[0].message.content or ""

            return await asyncio.gather(*(one(p) for p in _prompts(n)))

    return sdk


async def cookbook(url: str, n: int, limit: int, latency: float) -> list[str]:
    """The cookbook's loop: a queue, a continuously refilled capacity checked every millisecond, retries."""
    per_second = limit / latency  # Little's law: C calls in flight of L seconds each start C / L per second
    capacity = float(limit)
    last = time.monotonic()
    queue: deque[tuple[int, str, int]] = deque((i, p, 3) for i, p in enumerate(_prompts(n)))
    retries: deque[tuple[int, str, int]] = deque()
    answers: list[str | None] = [None] * n
    in_progress = 0
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def call(index: int, prompt: str, attempts_left: int) -> None:
            nonlocal in_progress
            try:
                async with session.post(url + "/v1/chat/completions", json=_body(prompt)) as response:
                    response.raise_for_status()
                    answers[index] = (await response.json())["choices"][0]["message"]["content"]
            except aiohttp.ClientError:
                if attempts_left > 1:
                    retries.append((index, prompt, attempts_left - 1))
                else:
                    raise
            finally:
                in_progress -= 1

        while queue or retries or in_progress:
            now = time.monotonic()
            capacity = min(float(limit), capacity + per_second * (now - last))
            last = now
            while capacity >= 1 and (retries or queue):
                index, prompt, attempts_left = (retries or queue).popleft()
                capacity -= 1
                in_progress += 1
                task = asyncio.create_task(call(index, prompt, attempts_left))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
    if any(answer is None for answer in answers):
        raise RuntimeError("the cookbook-style contender lost an answer")
    return [answer or "" for answer in answers]


HTTP_CONTENDERS: tuple[HttpContender, ...] = (
    HttpContender("floor", "asyncio.gather + Semaphore over aiohttp (floor)", False, floor),
    HttpContender("node", "BoundedParallelBatchNode + OpenAILLM", True, node),
    HttpContender("openai_llm", "OpenAILLM under gather + Semaphore (no node)", True, openai_llm),
    HttpContender("sdk", "official AsyncOpenAI, chat.completions.create, default HTTP stack", False, _sdk(False)),
    HttpContender("sdk_aiohttp", "official AsyncOpenAI, chat.completions.create, aiohttp transport", False, _sdk(True)),
    HttpContender("cookbook", "cookbook-style queue with capacity refill (ours, no cap)", False, cookbook, capped=False),
    HttpContender("floor_anthropic", "asyncio.gather + Semaphore over aiohttp, Anthropic's /v1/messages (floor)", False,
                  floor_anthropic),
    HttpContender("node_anthropic", "BoundedParallelBatchNode + AnthropicLLM", True, _node(_anthropic),
                  floor="floor_anthropic"),
    HttpContender("anthropic_llm", "AnthropicLLM under gather + Semaphore (no node)", True, _bare(_anthropic),
                  floor="floor_anthropic"),
    HttpContender("node_noop", "BoundedParallelBatchNode over an in-process LLM that only waits (no HTTP)", True,
                  node_noop, remote=False),
)


# -- the server in its own process ------------------------------------------------------------


class ServerProcess:
    """``python -m pocket_parallel.server`` on a free loopback port, in a child process."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pocket_parallel.server", "--port", "0", "--latency", f"{latency:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", first)
        if found is None:
            self.stop()
            raise RuntimeError(f"the server did not start: {first!r}")
        self.url = found.group()

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds the server has used so far (Linux), else None."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stats(self, reset: bool = False) -> dict[str, Any]:
        """The server's ``/stats`` (after ``POST /stats/reset`` when ``reset``)."""
        async with aiohttp.ClientSession() as session:
            method = session.post(self.url + "/stats/reset") if reset else session.get(self.url + "/stats")
            async with method as response:
                data: dict[str, Any] = await response.json()
                return data

    def stop(self) -> None:
        """Ctrl-C the server and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


# -- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRun:
    """One run of one contender: wall seconds, client and server CPU seconds, the server's peak in flight."""

    wall: float
    client_cpu: float
    server_cpu: float | None
    peak_in_flight: int


def run_once(contender: HttpContender, server: ServerProcess, plan: HttpPlan) -> HttpRun:
    """Time one run of ``contender`` on a fresh event loop and check what the server saw."""
    asyncio.run(server.stats(reset=True))
    gc.collect()
    server_before, cpu_before, start = server.cpu_seconds(), time.process_time(), time.perf_counter()
    answers = asyncio.run(contender.run(server.url, plan.n, plan.limit, plan.latency))
    wall, client_cpu = time.perf_counter() - start, time.process_time() - cpu_before
    server_after = server.cpu_seconds()
    stats = asyncio.run(server.stats())
    expected = [answer_to(prompt) for prompt in _prompts(plan.n)]
    if answers != expected:
        raise RuntimeError(f"{contender.label}: answers missing or out of order")
    if not contender.remote:
        stats = {"ok": 0, "peak_in_flight": 0}
    elif stats["ok"] != plan.n or (contender.capped and stats["peak_in_flight"] > plan.limit):
        raise RuntimeError(f"{contender.label}: the server saw {stats['ok']} answers and a peak of "
                           f"{stats['peak_in_flight']} in flight (expected {plan.n}, at most {plan.limit})")
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    return HttpRun(wall, client_cpu, server_cpu, int(stats["peak_in_flight"]))


@dataclass(frozen=True)
class HttpCell:
    """Every run of one contender, and the throughput ratios against the floor of the same repetition."""

    key: str
    label: str
    ours: bool
    runs: tuple[HttpRun, ...]
    ratios: tuple[float, ...]  # throughput / the floor's throughput, per repetition
    cpu_ratios: tuple[float, ...] = ()  # client CPU / its floor's client CPU, per repetition

    @property
    def wall(self) -> float:
        """Median wall seconds."""
        return statistics.median(r.wall for r in self.runs)

    def throughput(self, n: int) -> float:
        """Median calls per second."""
        return n / self.wall

    @property
    def ratio(self) -> float:
        """Median throughput against the floor's."""
        return statistics.median(self.ratios)

    @property
    def cpu_ratio(self) -> float | None:
        """Median client CPU against its floor's (None where not measured)."""
        return statistics.median(self.cpu_ratios) if self.cpu_ratios else None

    def cpu_per_1000(self, n: int) -> float:
        """Median client CPU seconds per 1,000 calls."""
        return statistics.median(r.client_cpu for r in self.runs) / n * 1000

    def server_cpu_per_1000(self, n: int) -> float | None:
        """Median server CPU seconds per 1,000 calls (None where not measured)."""
        values = [r.server_cpu for r in self.runs if r.server_cpu is not None]
        return statistics.median(values) / n * 1000 if values else None


@dataclass(frozen=True)
class HttpResults:
    """The HTTP benchmark's plan, cells, duration and the load average around it."""

    plan: HttpPlan
    cells: tuple[HttpCell, ...]
    duration: float
    load_start: tuple[float, float, float] | None
    load_end: tuple[float, float, float] | None
    date: str = ""


def measure(plan: HttpPlan, say: Callable[[str], None] = lambda text: None,
            contenders: Sequence[HttpContender] = HTTP_CONTENDERS) -> HttpResults:
    """Run every contender ``plan.repetitions`` times, interleaved, against one server process."""
    began, load_start = time.perf_counter(), load_average()
    server = ServerProcess(plan.latency)
    runs: dict[str, list[HttpRun]] = {c.key: [] for c in contenders}
    try:
        for repetition in range(plan.repetitions):
            k = repetition % len(contenders)
            for contender in list(contenders[k:]) + list(contenders[:k]):
                say(f"HTTP, repetition {repetition + 1}/{plan.repetitions}: {contender.label} ...")
                runs[contender.key].append(run_once(contender, server, plan))
    finally:
        server.stop()
    floor_walls = [r.wall for r in runs["floor"]]
    cells = tuple(
        HttpCell(c.key, c.label, c.ours, tuple(runs[c.key]),
                 tuple(floor_wall / r.wall for floor_wall, r in zip(floor_walls, runs[c.key])),
                 tuple(r.client_cpu / f.client_cpu for f, r in zip(runs.get(c.floor, []), runs[c.key])
                       if f.client_cpu > 0))
        for c in contenders
    )
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return HttpResults(plan, cells, time.perf_counter() - began, load_start, load_average(), date)


# -- reporting --------------------------------------------------------------------------------


def _find(results: HttpResults, key: str) -> HttpCell | None:
    return next((c for c in results.cells if c.key == key), None)


def table(results: HttpResults) -> str:
    """One row per contender: throughput, against the floor, efficiency, client and server CPU, peak in flight."""
    plan = results.plan
    header = ["contender", "runs", "throughput: median (min–max)", "× floor throughput", "efficiency",
              "client CPU per 1,000 calls", "client CPU × its floor's", "server CPU per 1,000 calls",
              "peak in flight (server)"]
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for cell in results.cells:
        rates = [plan.n / r.wall for r in cell.runs]
        server = cell.server_cpu_per_1000(plan.n)
        label = f"**{cell.label}**" if cell.ours else cell.label
        ratio = "1 (floor)" if cell.key == "floor" else f"{cell.ratio:.2f}× ({min(cell.ratios):.2f}–{max(cell.ratios):.2f})"
        lines.append("| " + " | ".join([
            label, str(len(cell.runs)),
            f"{cell.throughput(plan.n):,.0f} calls/s ({min(rates):,.0f}–{max(rates):,.0f})",
            ratio, f"{plan.ideal / cell.wall:.0%}",
            f"{cell.cpu_per_1000(plan.n):.2f} s", _cpu_ratio_text(cell),
            "–" if server is None else f"{server:.2f} s",
            str(max(r.peak_in_flight for r in cell.runs)),
        ]) + " |")
    return "\n".join(lines)


def _cpu_ratio_text(cell: HttpCell) -> str:
    if cell.key.startswith("floor"):
        return "1 (floor)"
    if cell.cpu_ratio is None:
        return "–"
    return f"{cell.cpu_ratio:.2f}× ({min(cell.cpu_ratios):.2f}–{max(cell.cpu_ratios):.2f})"


CPU_GOAL = 2.0
"""Client CPU per call under the node, at most this many times the floor's (issue 19)."""


def cpu_findings(results: HttpResults) -> list[str]:
    """The client-CPU goal (node + each official client ≤ 2× its floor) and the node's own share, from the numbers."""
    n, lines = results.plan.n, []
    for key, floor_key, client in (("node", "floor", "OpenAILLM"), ("node_anthropic", "floor_anthropic", "AnthropicLLM")):
        cell, floor_cell = _find(results, key), _find(results, floor_key)
        if cell is None or floor_cell is None or cell.cpu_ratio is None:
            continue
        verdict = "meets" if cell.cpu_ratio <= CPU_GOAL else "misses"
        lines.append(
            f"Client CPU per call, `BoundedParallelBatchNode` + `{client}`: {cell.cpu_per_1000(n):.2f} ms against "
            f"{floor_cell.cpu_per_1000(n):.2f} ms for raw aiohttp, {cell.cpu_ratio:.2f}× (median of "
            f"{len(cell.cpu_ratios)} interleaved runs): it {verdict} the goal of {CPU_GOAL:g}×."
        )
    noop, floor_cell = _find(results, "node_noop"), _find(results, "floor")
    if noop is not None and floor_cell is not None:
        lines.append(
            f"The node's own share: over an in-process LLM that only waits, the node spends {noop.cpu_per_1000(n):.2f} ms "
            f"per call, {noop.cpu_per_1000(n) / floor_cell.cpu_per_1000(n):.0%} of the floor's whole HTTP call; the rest "
            "above the floor is the official client's."
        )
    return lines


def findings(results: HttpResults) -> list[str]:
    """The goal (node + OpenAILLM ≥ 0.9× the floor) and where the rest goes, from the numbers."""
    plan, n = results.plan, results.plan.n
    floor_cell, node_cell = _find(results, "floor"), _find(results, "node")
    bare, sdk, sdk_aio = _find(results, "openai_llm"), _find(results, "sdk"), _find(results, "sdk_aiohttp")
    if floor_cell is None or node_cell is None:
        return []
    lines = []
    verdict = "meets" if node_cell.ratio >= 0.9 else "misses"
    lines.append(
        f"`BoundedParallelBatchNode` + `OpenAILLM` reaches {node_cell.ratio:.2f}× the floor's throughput "
        f"({node_cell.throughput(n):,.0f} against {floor_cell.throughput(n):,.0f} calls/s): it {verdict} the goal of 0.9×."
    )
    floor_cpu, node_cpu = floor_cell.cpu_per_1000(n), node_cell.cpu_per_1000(n)
    per_call = (node_cpu - floor_cpu) / 1000 * 1e6
    floor_total = floor_cpu + (floor_cell.server_cpu_per_1000(n) or 0.0)
    node_total = node_cpu + (node_cell.server_cpu_per_1000(n) or 0.0)
    lines.append(
        f"Where the rest goes: CPU. Even the floor reaches only {plan.ideal / floor_cell.wall:.0%} of the ideal "
        f"{plan.ideal:g} s (ceil({n:,} / {plan.limit}) × {plan.latency:g} s, {n / plan.ideal:,.0f} calls/s): at this "
        f"rate the run is bound by CPU, not by waiting, and client and server share the machine's cores. "
        f"Client plus server CPU per 1,000 calls: {floor_total:.2f} s with the floor, {node_total:.2f} s with our node "
        f"+ `OpenAILLM`; the difference is all on the client ({floor_cpu:.2f} s against {node_cpu:.2f} s, "
        f"{per_call:,.0f} µs more per call), and throughput follows it."
    )
    if bare is not None:
        lines.append(
            f"The node's own share is small: `OpenAILLM` alone under a semaphore reaches {bare.ratio:.2f}× the floor "
            f"and spends {bare.cpu_per_1000(n):.2f} s per 1,000 calls; the rest is the official client's request "
            "machinery (building each request: headers, URL, options copied per attempt, its retry loop) and its "
            "transport layer over aiohttp."
        )
    if sdk is not None and sdk_aio is not None:
        lines.append(
            f"The official client as most people call it (`chat.completions.create`) costs far more: "
            f"{sdk.cpu_per_1000(n):.2f} s per 1,000 calls with its default HTTP stack ({sdk.ratio:.2f}× the floor), "
            f"{sdk_aio.cpu_per_1000(n):.2f} s with its aiohttp transport ({sdk_aio.ratio:.2f}×). `OpenAILLM` keeps "
            "the client's retries, timeout, pool and errors but sends through its aiohttp transport and skips its "
            "typed layer (request type checks, a pydantic object per answer)."
        )
    cookbook_cell = _find(results, "cookbook")
    if cookbook_cell is not None:
        peak = max(r.peak_in_flight for r in cookbook_cell.runs)
        lines.append(
            f"The cookbook-style queue reaches {cookbook_cell.ratio:.2f}× the floor with a peak of {peak} calls in "
            f"flight at the server: it paces starts (C / L = {plan.limit / plan.latency:,.0f} per second) but never "
            "caps calls in flight, and its 1 ms polling loop costs CPU of its own."
        )
    return lines


def readme_bullet(results: HttpResults) -> str:
    """One sentence for the README: our node over HTTP against the floor and the official client."""
    plan, n = results.plan, results.plan.n
    floor_cell, node_cell, sdk = _find(results, "floor"), _find(results, "node"), _find(results, "sdk")
    assert floor_cell is not None and node_cell is not None
    text = (f"Over real HTTP (N = {n:,} calls of {plan.latency * 1000:g} ms to the local server in another process, "
            f"C = {plan.limit}): `BoundedParallelBatchNode` + `OpenAILLM` {node_cell.throughput(n):,.0f} calls/s, "
            f"{node_cell.ratio:.2f}× the throughput of plain `gather` + `aiohttp` ({floor_cell.throughput(n):,.0f} "
            "calls/s)")
    if sdk is not None:
        text += f"; the official client's `chat.completions.create` under a semaphore {sdk.ratio:.2f}×"
    return text + (f". The gap is client CPU per call ({node_cell.cpu_per_1000(n):.2f} against "
                   f"{floor_cell.cpu_per_1000(n):.2f} CPU seconds per 1,000 calls); details in the results file.")


def _load(load: tuple[float, float, float] | None) -> str:
    return "unknown" if load is None else ", ".join(f"{x:.2f}" for x in load)


def section(results: HttpResults) -> str:
    """The HTTP benchmark's part of the results file (Markdown)."""
    plan = results.plan
    minutes, seconds = divmod(round(results.duration), 60)
    return "\n".join([
        f"## Real HTTP: N = {plan.n:,} calls of {plan.latency * 1000:g} ms to the local server, C = {plan.limit}",
        "",
        f"The server (`python -m pocket_parallel.server --latency {plan.latency:g}`, no per-minute limits) runs in "
        "a separate process; the client's CPU is `time.process_time()` of the benchmark process around each run, "
        "the server's is read from `/proc`. Every run is checked: N answers in input order, and (except the "
        "cookbook-style contender, which has no cap) never more than C in flight at the server. "
        f"{plan.repetitions} repetitions, interleaved (order rotated each time); ratios against the floor of the "
        f"same repetition. Efficiency = ideal ceil(N / C) × L = {plan.ideal:g} s over the median wall time. "
        f"This part ran on {results.date or 'an unknown date'} and took {minutes} min {seconds:02d} s; load average (1, 5, 15 min) {_load(results.load_start)} "
        f"at its start, {_load(results.load_end)} at its end.",
        "",
        table(results),
        "",
        *[f"- {line}" for line in findings(results) + cpu_findings(results)],
        "",
    ])


def to_json(results: HttpResults) -> dict[str, Any]:
    """The results as plain JSON data."""
    return asdict(results)


def from_json(data: dict[str, Any]) -> HttpResults:
    """The inverse of :func:`to_json`."""
    load = lambda value: None if value is None else tuple(value)  # noqa: E731
    cells = tuple(
        HttpCell(c["key"], c["label"], c["ours"], tuple(HttpRun(**r) for r in c["runs"]), tuple(c["ratios"]),
                 tuple(c.get("cpu_ratios", ())))
        for c in data["cells"]
    )
    return HttpResults(HttpPlan(**data["plan"]), cells, data["duration"], load(data["load_start"]),  # type: ignore[arg-type]
                       load(data["load_end"]), data.get("date", ""))  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.http [--quick] [--json FILE]``: run the HTTP benchmark alone, print its section."""
    return run_alone("python -m benchmarks.http", __doc__.splitlines()[0],
                     f"N = {HTTP_PLANS['quick'].n}, one repetition", HTTP_PLANS, measure, section, to_json, argv)


if __name__ == "__main__":
    sys.exit(main())
