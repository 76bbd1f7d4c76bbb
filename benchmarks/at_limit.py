"""Throughput at the limit: N real calls over HTTP to a LocalServer with a provider profile, each pacing client.

For each profile (``openai``, ``anthropic``, ``self-hosted``) a :class:`~pocket_parallel.server.LocalServer`
runs in a thread of this process with the profile's limits scaled up so that a run of N calls
takes about 30 s. Every contender sends the same N prompts through the same backend
(:class:`~pocket_parallel.OpenAILLM`, or :class:`~pocket_parallel.AnthropicLLM` on the
``anthropic`` profile, the clients' own 2 retries kept); only the pacing differs:

- ``node``: our ``BoundedParallelBatchNode`` sized from the headers of one probe response:
  ``AnnouncedLimits.from_headers(headers).node_settings(latency, tokens_for=...,
  input_tokens_for=..., output_tokens_for=max_tokens, output_tokens_used=estimate_tokens)``,
  with ``latency`` the mean latency of the workload alone in its batch (what a learner
  measures), each estimate what the server charges at admission, and each answer's own
  tokens (what the server counts: its text, with no thinking here) handed back to the output
  budget;
- ``semaphore``: ``asyncio.gather`` over every call, each inside ``async with Semaphore(C)``,
  as the chapter writes it, with C from the same Little's law as the node (no semaphore where
  nothing is announced);
- ``langchain``: LangChain's ``InMemoryRateLimiter(requests_per_second=allowed rate)`` (its
  defaults otherwise) on a chat model over the same backend, ``abatch`` over every prompt;
- ``aiolimiter``: ``aiolimiter.AsyncLimiter(allowed per minute, 60)`` around each call under
  ``asyncio.gather``.

The two rate limiters pace requests only, so they are given the allowed rate in requests
(below), the most any of them could know; the node reads only the headers.

**The allowed rate** is what the tightest limit lets these very requests through at, in
steady state: per-minute requests over 60; a token budget over the mean tokens each request
costs it (OpenAI's tokens: every message plus ``max_tokens``, 4,096 when none is sent;
input tokens: every message; output tokens: the answer's own, since the server reserves
``max_tokens`` at admission and returns the unused part at the end); on ``self-hosted``, the
K slots over the mean time of one call in a full batch of K. The charges come from the
server's own provider model (:class:`~pocket_parallel.service.provider.SimulatedProvider`).

**Calls per second achieved** is the steady rate at which answers arrive: the middle 80 % of
the answers over the time between the 10th and the 90th percentile answer (so neither the
first quantum's burst allowance nor the last calls' latency counts), times the share of the
calls answered. 429s are the server's own count (``rate_limited``); failed calls are those
that still failed after the client's retries. The server is reset between runs with :meth:`LocalServer.reset`.
"""

from __future__ import annotations

import asyncio
import datetime
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import anthropic
import openai
from aiolimiter import AsyncLimiter

from pocket_parallel.backends.anthropic_llm import AnthropicLLM
from pocket_parallel.backends.openai_llm import OpenAILLM
from pocket_parallel.experiment import AskEach
from pocket_parallel.limits.announced import AnnouncedLimits
from pocket_parallel.server import LocalServer
from pocket_parallel.service.model import estimate_tokens
from pocket_parallel.service.provider import DEFAULT_MAX_TOKENS, CallRequest, SimulatedProvider

from .machine import load_average, load_text
from .standalone import run_alone

#: AnthropicLLM's max_tokens here: every answer of the profiles (100 to 400 tokens) fits, and no more is reserved.
ANTHROPIC_MAX_TOKENS = 400
QUANTILES = (0.1, 0.9)


@dataclass(frozen=True)
class Case:
    """One profile at limits scaled so N calls take about ``n / allowed`` seconds: the profile and its overrides."""

    profile: str
    n: int
    overrides: tuple[tuple[str, Any], ...]

    def settings(self) -> dict[str, Any]:
        """The LocalServer keywords."""
        return {"profile": self.profile, "seed": 0, **dict(self.overrides)}


# Each profile's own proportions, scaled: openai's 500 RPM and 200,000 TPM × 12 (tokens bind: each
# request costs its prompt plus 4,096); anthropic's 50 RPM, 30,000 ITPM and 8,000 OTPM × 19 (output
# tokens bind); self-hosted's 8 slots, its time per token cut tenfold (0.002 s) so a run takes 30 s.
_FULL_CASES = (
    Case("openai", 300, (("requests_per_minute", 6_000), ("tokens_per_minute", 2_400_000))),
    Case("anthropic", 300, (("requests_per_minute", 950), ("input_tokens_per_minute", 570_000),
                            ("output_tokens_per_minute", 152_000))),
    Case("self-hosted", 300, (("ttft", 0.02), ("tpot", 0.002))),
)


@dataclass(frozen=True)
class LimitPlan:
    """Which cases run, and how often each contender runs in each."""

    name: str
    cases: tuple[Case, ...] = _FULL_CASES
    repetitions: int = 1


LIMIT_PLANS = {
    "full": LimitPlan("full"),
    "quick": LimitPlan("quick", tuple(Case(c.profile, 30, c.overrides) for c in _FULL_CASES)),
}


# -- the allowed rate ----------------------------------------------------------------------------


def prompts(n: int) -> list[str]:
    """The N prompts every contender sends."""
    return [f"Summarize: document {i} of {n}" for i in range(1, n + 1)]


def max_tokens_of(profile: str) -> int | None:
    """The ``max_tokens`` each request sends (None: OpenAILLM sends none)."""
    return ANTHROPIC_MAX_TOKENS if profile == "anthropic" else None


@dataclass(frozen=True)
class Allowed:
    """The allowed rate (calls per second), which limit sets it, and every limit's rate."""

    rate: float
    binding: str
    by_limit: tuple[tuple[str, float], ...]
    mean_latency: float  # one call alone in its batch: what a learner measures


def allowed_rate(server: LocalServer, case: Case) -> Allowed:
    """What the tightest limit of ``server`` lets ``case``'s requests through at, in calls per second."""
    provider = SimulatedProvider(server.settings)
    settings, model = server.settings, provider.model
    requests = [CallRequest(p, estimate_tokens(p), max_tokens_of(case.profile)) for p in prompts(case.n)]
    charges = [provider.charge(r) for r in requests]
    outputs = [provider.reply_for(r).output_tokens for r in requests]
    rates: list[tuple[str, float]] = []
    if settings.requests_per_minute is not None:
        rates.append(("requests per minute", settings.requests_per_minute / 60))
    for name, per_minute, spent in (
        ("tokens per minute", settings.tokens_per_minute, [c.tokens for c in charges]),
        ("input tokens per minute", settings.input_tokens_per_minute, [c.input_tokens for c in charges]),
        ("output tokens per minute", settings.output_tokens_per_minute, outputs),  # reserved, then refunded
    ):
        if per_minute is not None:
            rates.append((name, per_minute / 60 / statistics.fmean(spent)))
    alone = [model.timing_for(r.prompt, 1, out).total for r, out in zip(requests, outputs)]
    if settings.slots is not None:
        full = [model.timing_for(r.prompt, 1, out, batch=settings.slots).total for r, out in zip(requests, outputs)]
        rates.append((f"{settings.slots} slots", settings.slots / statistics.fmean(full)))
    binding, rate = min(rates, key=lambda pair: pair[1])
    return Allowed(rate, binding, tuple(rates), statistics.fmean(alone))


# -- the contenders --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What a contender is given: the server, the allowed rate, the probe's announced limits."""

    server: LocalServer
    case: Case
    allowed: Allowed
    announced: AnnouncedLimits
    ends: list[float] = field(default_factory=list)

    def backend(self) -> OpenAILLM | AnthropicLLM:
        """A fresh backend of the profile's API (the client's own retries kept)."""
        if self.case.profile == "anthropic":
            return AnthropicLLM(self.server.url, max_tokens=ANTHROPIC_MAX_TOKENS)
        return OpenAILLM(self.server.base_url)

    def timed(self, llm: Callable[[str], Awaitable[str]]) -> Callable[[str], Awaitable[str]]:
        """``llm`` noting when each answer arrives."""

        async def call(prompt: str) -> str:
            answer = await llm(prompt)
            self.ends.append(time.perf_counter())
            return answer

        return call

    @property
    def little(self) -> int | None:
        """C by Little's law from the announced requests per minute and the mean latency (None: none announced)."""
        return self.announced.concurrency_for(self.allowed.mean_latency)


Run = Callable[[Setup, Callable[[str], Awaitable[str]]], Awaitable[list[Any]]]


async def node(setup: Setup, call: Callable[[str], Awaitable[str]]) -> list[Any]:
    """Our node, sized from the announced headers."""
    reserved = max_tokens_of(setup.case.profile) or DEFAULT_MAX_TOKENS
    settings = setup.announced.node_settings(
        setup.allowed.mean_latency, tokens_for=lambda p: estimate_tokens(p) + reserved,
        input_tokens_for=estimate_tokens, output_tokens_for=reserved, output_tokens_used=estimate_tokens)
    shared: dict[str, Any] = {"prompts": prompts(setup.case.n)}
    await AskEach(call, collect_failures=True, **settings).run_async(shared)
    answers: list[Any] = shared["answers"]
    return answers


async def semaphore(setup: Setup, call: Callable[[str], Awaitable[str]]) -> list[Any]:
    """The chapter's gather + Semaphore(C), C by Little's law (plain gather where nothing is announced)."""
    limit = setup.little
    gate = asyncio.Semaphore(limit) if limit is not None else None

    async def limited(prompt: str) -> str:
        if gate is None:
            return await call(prompt)
        async with gate:
            return await call(prompt)

    return await asyncio.gather(*(limited(p) for p in prompts(setup.case.n)), return_exceptions=True)


async def langchain(setup: Setup, call: Callable[[str], Awaitable[str]]) -> list[Any]:
    """LangChain's InMemoryRateLimiter at the allowed rate, on a chat model over the backend, with abatch."""
    from langchain_core.rate_limiters import InMemoryRateLimiter

    limiter = InMemoryRateLimiter(requests_per_second=setup.allowed.rate)
    chat = _chat_model(call, limiter)
    results = await chat.abatch(prompts(setup.case.n), return_exceptions=True)
    return [r if isinstance(r, BaseException) else r.content for r in results]


def _chat_model(call: Callable[[str], Awaitable[str]], limiter: Any) -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class BackendChat(BaseChatModel):
        """A LangChain chat model whose answer is the backend's."""

        @property
        def _llm_type(self) -> str:
            return "pocket-parallel-backend"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
            raise NotImplementedError("asynchronous only")

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                             **kwargs: Any) -> ChatResult:
            answer = await call(str(messages[-1].content))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer))])

    return BackendChat(rate_limiter=limiter)


async def aiolimiter(setup: Setup, call: Callable[[str], Awaitable[str]]) -> list[Any]:
    """aiolimiter.AsyncLimiter(allowed per minute, 60) around each call, under gather."""
    limiter = AsyncLimiter(max(1, round(setup.allowed.rate * 60)), 60)

    async def limited(prompt: str) -> str:
        async with limiter:
            return await call(prompt)

    return await asyncio.gather(*(limited(p) for p in prompts(setup.case.n)), return_exceptions=True)


@dataclass(frozen=True)
class LimitContender:
    """One way of pacing the calls: a key, a label for tables, whether it is ours, how it runs."""

    key: str
    label: str
    ours: bool
    run: Run


LIMIT_CONTENDERS: tuple[LimitContender, ...] = (
    LimitContender("node", "BoundedParallelBatchNode, sized from the announced headers", True, node),
    LimitContender("semaphore", "asyncio.gather + Semaphore(C), C by Little's law (the chapter's)", False, semaphore),
    LimitContender("langchain", "LangChain InMemoryRateLimiter + abatch, at the allowed rate", False, langchain),
    LimitContender("aiolimiter", "aiolimiter.AsyncLimiter(allowed per minute, 60)", False, aiolimiter),
)


# -- measuring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRun:
    """One run: wall seconds, the steady rate of answers, answers, failed calls, the server's 429s."""

    wall: float
    rate: float
    answered: int
    failed: int
    refused: int
    requests: int


def steady_rate(ends: Sequence[float]) -> float:
    """Answers per second between the 10th and 90th percentile answer (0 with fewer than 2 there)."""
    times = sorted(ends)
    if len(times) < 3:
        return 0.0
    low, high = (round(q * (len(times) - 1)) for q in QUANTILES)
    span = times[high] - times[low]
    return (high - low) / span if span > 0 else 0.0


def _announced(server: LocalServer, profile: str) -> AnnouncedLimits:
    """The limits one probe response announces, read by the official client's raw response."""

    async def probe() -> AnnouncedLimits:
        if profile == "anthropic":
            async with anthropic.AsyncAnthropic(base_url=server.url, api_key="unused") as a_client:
                raw: Any = await a_client.messages.with_raw_response.create(
                    model="pocket-parallel-sim", max_tokens=ANTHROPIC_MAX_TOKENS,
                    messages=[{"role": "user", "content": "Summarize: a probe"}])
        else:
            async with openai.AsyncOpenAI(base_url=server.base_url, api_key="unused") as o_client:
                raw = await o_client.chat.completions.with_raw_response.create(
                    model="pocket-parallel-sim", messages=[{"role": "user", "content": "Summarize: a probe"}])
        return AnnouncedLimits.from_headers(raw.headers)

    return asyncio.run(probe())


def _quiet(server: LocalServer) -> None:
    """Wait until nothing is in flight at the server, then zero its counters and refill its limits."""
    deadline = time.monotonic() + 30
    while server.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    server.reset()


def run_once(contender: LimitContender, setup: Setup) -> LimitRun:
    """One run of ``contender`` on a fresh event loop against a freshly reset server."""
    _quiet(setup.server)
    setup.ends = []

    async def go() -> list[Any]:
        llm = setup.backend()
        try:
            return await contender.run(setup, setup.timed(llm))
        finally:
            await llm.aclose()

    start = time.perf_counter()
    results = asyncio.run(go())
    wall = time.perf_counter() - start
    stats = setup.server.stats()
    failed = sum(isinstance(r, BaseException) or not isinstance(r, str) for r in results)
    return LimitRun(wall, steady_rate(setup.ends), len(setup.ends), failed, stats.rate_limited, stats.requests)


@dataclass(frozen=True)
class LimitCell:
    """Every run of one contender in one case."""

    profile: str
    key: str
    label: str
    ours: bool
    runs: tuple[LimitRun, ...]

    @property
    def rate(self) -> float:
        """Median steady answers per second, scaled by the share of calls answered (a failed call is no throughput)."""
        return statistics.median(r.rate * r.answered / max(1, r.answered + r.failed) for r in self.runs)


@dataclass(frozen=True)
class CaseResult:
    """One profile: its case, the allowed rate, what was announced, every contender's cell."""

    case: Case
    allowed: Allowed
    announced: dict[str, Any]
    cells: tuple[LimitCell, ...]


@dataclass(frozen=True)
class LimitResults:
    """The whole section: plan, cases, duration and load average around it."""

    plan: LimitPlan
    cases: tuple[CaseResult, ...]
    duration: float
    load_start: tuple[float, float, float] | None
    load_end: tuple[float, float, float] | None
    date: str = ""


def measure(plan: LimitPlan, say: Callable[[str], None] = lambda text: None,
            contenders: Sequence[LimitContender] = LIMIT_CONTENDERS) -> LimitResults:
    """Run every contender against every case's server, ``plan.repetitions`` times, in rotated order."""
    began, load_start = time.perf_counter(), load_average()
    cases = []
    for case in plan.cases:
        with LocalServer(**case.settings()) as server:
            allowed = allowed_rate(server, case)
            setup = Setup(server, case, allowed, _announced(server, case.profile))
            runs: dict[str, list[LimitRun]] = {c.key: [] for c in contenders}
            for repetition in range(plan.repetitions):
                k = repetition % len(contenders)
                for contender in list(contenders[k:]) + list(contenders[:k]):
                    say(f"at the limit, {case.profile} (allowed {allowed.rate:.1f} calls/s), N = {case.n}, "
                        f"repetition {repetition + 1}/{plan.repetitions}: {contender.label} ...")
                    runs[contender.key].append(run_once(contender, setup))
            _quiet(server)
        cells = tuple(LimitCell(case.profile, c.key, c.label, c.ours, tuple(runs[c.key])) for c in contenders)
        cases.append(CaseResult(case, allowed, asdict(setup.announced), cells))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return LimitResults(plan, tuple(cases), time.perf_counter() - began, load_start, load_average(), date)


# -- reporting ---------------------------------------------------------------------------------------

GOAL_FRACTION, GOAL_REFUSED = 0.95, 0.01


def _refused_share(cell: LimitCell) -> float:
    return max(r.refused / max(1, r.requests) for r in cell.runs)


def meets_goal(cell: LimitCell, allowed: Allowed) -> bool:
    """Whether ``cell`` reached 0.95 of the allowed rate with at most 1 % of its requests refused."""
    return cell.rate >= GOAL_FRACTION * allowed.rate and _refused_share(cell) <= GOAL_REFUSED


def table(result: CaseResult) -> str:
    """One row per contender: steady calls/s, fraction of allowed, wall time, 429s, failed calls."""
    header = ["contender", "calls/s (steady)", "of allowed", "wall time", "429s (share of requests)", "failed calls"]
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for cell in result.cells:
        run = cell.runs[len(cell.runs) // 2]
        label = f"**{cell.label}**" if cell.ours else cell.label
        lines.append("| " + " | ".join([
            label, f"{cell.rate:.2f}", f"{cell.rate / result.allowed.rate:.2f}",
            f"{statistics.median(r.wall for r in cell.runs):.1f} s",
            f"{max(r.refused for r in cell.runs):,} ({_refused_share(cell):.0%})",
            str(max(r.failed for r in cell.runs)) + ("" if run.answered + run.failed >= result.case.n else " (lost)"),
        ]) + " |")
    return "\n".join(lines)


def _limits_text(result: CaseResult) -> str:
    shown = ", ".join(f"{name} {rate:.2f}/s" for name, rate in result.allowed.by_limit)
    overrides = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v:g}" for k, v in result.case.overrides)
    return (f"`LocalServer(profile={result.case.profile!r}, {overrides})`; each limit allows {shown}: "
            f"the binding one is {result.allowed.binding}, {result.allowed.rate:.2f} calls/s. Mean latency of a call "
            f"alone: {result.allowed.mean_latency:.2f} s.")


def findings(results: LimitResults) -> list[str]:
    """The goal's verdict on each profile, from the numbers."""
    lines = []
    for result in results.cases:
        ours = next((c for c in result.cells if c.ours), None)
        if ours is None:
            continue
        verdict = "meets" if meets_goal(ours, result.allowed) else "misses"
        lines.append(f"{result.case.profile}: our node reaches {ours.rate / result.allowed.rate:.2f} of the allowed rate "
                     f"with {_refused_share(ours):.1%} of its requests refused: it {verdict} the goal "
                     f"(≥ {GOAL_FRACTION} with ≤ {GOAL_REFUSED:.0%} refused).")
    return lines


def section(results: LimitResults) -> str:
    """This benchmark's part of the results file (Markdown)."""
    minutes, seconds = divmod(round(results.duration), 60)
    parts = [
        "## Throughput at the limit: each profile over real HTTP",
        "",
        "A `LocalServer` per profile in a thread of the benchmark's process, limits scaled so a run takes about "
        "30 s; every contender sends the same prompts through the same backend (`OpenAILLM`, or `AnthropicLLM` "
        f"with `max_tokens={ANTHROPIC_MAX_TOKENS}` on `anthropic`), the client's 2 retries kept. Calls/s is the "
        "steady rate of answers (the middle 80 % of them over the time between the 10th and 90th percentile "
        "answer), times the share of calls answered; the allowed rate is what the tightest limit lets these requests through at (see "
        "`benchmarks/at_limit.py`). 429s are the server's count. "
        f"{results.plan.repetitions} run(s) per contender, ran on {results.date or 'an unknown date'}, took "
        f"{minutes} min {seconds:02d} s; load average (1, 5, 15 min) {load_text(results.load_start)} at its start, "
        f"{load_text(results.load_end)} at its end.",
        "",
    ]
    for result in results.cases:
        parts += [f"### {result.case.profile}: N = {result.case.n}", "", _limits_text(result), "", table(result), ""]
    parts += [*[f"- {line}" for line in findings(results)], ""]
    return "\n".join(parts)


def readme_bullet(results: LimitResults) -> str:
    """One sentence for the README: our node's fraction of the allowed rate on each profile."""
    parts = []
    for result in results.cases:
        ours = next(c for c in result.cells if c.ours)
        parts.append(f"{result.case.profile} {ours.rate / result.allowed.rate:.2f} "
                     f"({_refused_share(ours):.0%} refused)")
    return ("At the limit, over real HTTP (N = " + f"{results.cases[0].case.n}" + " calls per profile): our node, "
            "sized from the announced headers, reaches this fraction of the allowed rate: " + "; ".join(parts)
            + " (goal: 0.95 with at most 1 % refused; LangChain's, aiolimiter's and the chapter's pacing beside it "
            "in the results file).")


def readme_table(results: LimitResults) -> str:
    """The README's table: each contender's fraction of the allowed rate on each profile, with its 429s."""
    labels = list(dict.fromkeys(cell.label for result in results.cases for cell in result.cells))
    lines = ["| profile (binding limit, allowed rate) | " + " | ".join(labels) + " |",
             "|:---|" + "---:|" * len(labels)]
    for result in results.cases:
        cells = {cell.label: cell for cell in result.cells}
        shown = [f"{cells[label].rate / result.allowed.rate:.2f} ({_refused_share(cells[label]):.0%} refused)"
                 if label in cells else "–" for label in labels]
        shown = [f"**{text}**" if label in cells and cells[label].ours else text for label, text in zip(labels, shown)]
        lines.append(f"| {result.case.profile} ({result.allowed.binding}, {result.allowed.rate:.2f} calls/s) | "
                     + " | ".join(shown) + " |")
    return "\n".join(lines)


def to_json(results: LimitResults) -> dict[str, Any]:
    """The results as plain JSON data."""
    return asdict(results)


def _tuple_pairs(pairs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((str(name), value) for name, value in pairs)


def from_json(data: dict[str, Any]) -> LimitResults:
    """The inverse of :func:`to_json`."""
    def case(c: dict[str, Any]) -> Case:
        return Case(c["profile"], c["n"], _tuple_pairs(c["overrides"]))

    load = lambda value: None if value is None else tuple(value)  # noqa: E731
    plan = LimitPlan(data["plan"]["name"], tuple(case(c) for c in data["plan"]["cases"]), data["plan"]["repetitions"])
    cases = tuple(
        CaseResult(case(r["case"]),
                   Allowed(r["allowed"]["rate"], r["allowed"]["binding"], _tuple_pairs(r["allowed"]["by_limit"]),
                           r["allowed"]["mean_latency"]),
                   r["announced"],
                   tuple(LimitCell(c["profile"], c["key"], c["label"], c["ours"],
                                   tuple(LimitRun(**run) for run in c["runs"])) for c in r["cells"]))
        for r in data["cases"]
    )
    return LimitResults(plan, cases, data["duration"], load(data["load_start"]), load(data["load_end"]),  # type: ignore[arg-type]
                        data.get("date", ""))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.at_limit [--quick] [--json FILE]``: run this benchmark alone, print its section."""
    return run_alone("python -m benchmarks.at_limit", __doc__.splitlines()[0],
                     f"N = {LIMIT_PLANS['quick'].cases[0].n} per profile", LIMIT_PLANS, measure, section, to_json, argv)


if __name__ == "__main__":
    sys.exit(main())
