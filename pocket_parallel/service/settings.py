"""The simulated service's settings, declared once: :class:`ServiceSettings`.

:class:`~pocket_parallel.SimulatedLLM`, :class:`~pocket_parallel.server.LocalServer` and
:class:`~pocket_parallel.server.ServerSettings` take exactly these keywords (the server adds
where it listens), and the server's command line has one flag for each. A setting left out
takes its profile's value (:mod:`.profiles`), or, without a profile, the value that keeps
every lesson as it always was. Given, it overrides the profile, ``None`` included:
``SimulatedLLM(profile="openai", requests_per_minute=None)`` has OpenAI's limits but no
request limit.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .._arguments import MAX_IN_FLIGHT
from .._validate import check_int
from .model import ServiceModel
from .profiles import profile_settings
from .quota import PER_MINUTE, WINDOW, Algorithm, Quota
from .slots import Slots


class _FromProfile:
    """The default of a setting a profile may set: its profile's value, or the package's default without one."""

    def __repr__(self) -> str:
        return "FROM_PROFILE"


#: "Not given": the setting takes its profile's value, or the package's default without a profile.
FROM_PROFILE: Any = _FromProfile()

# Without a profile, each setting a profile may set takes this (latency aside: see DEFAULT_LATENCY).
_PLAIN = {
    "jitter": 0.0, "requests_per_minute": None, "tokens_per_minute": None, "input_tokens_per_minute": None,
    "output_tokens_per_minute": None, "quantum": WINDOW, "slots": None, "ttft": None, "tpot": None,
    "answer_tokens": None,
}


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the simulated service does, checked and resolved when made.

    How each call behaves (:class:`~pocket_parallel.service.model.ServiceModel`):

    - ``latency`` (mean seconds per call), ``jitter`` (its coefficient of variation),
      ``seed``, ``failure_rate``, ``stall_rate``, ``overload_rate``;
    - ``ttft`` and ``tpot``: seconds to the first token and per output token, instead of a
      plain ``latency`` (an explicit ``latency`` overrides a profile's ``ttft`` and ``tpot``);
    - ``answer_tokens``: a range (low, high) of output tokens to draw each answer's length from.

    The limits it enforces (:class:`~pocket_parallel.service.quota.Quota`):

    - ``max_concurrent``: refuse a call while that many are in flight (a gateway's cap);
    - ``requests_per_minute``, ``tokens_per_minute``, ``input_tokens_per_minute``,
      ``output_tokens_per_minute``: per-minute budgets, as token buckets holding ``quantum``
      seconds of refill (``algorithm="sliding_window"``: at most that many in any 60 s);
    - ``slots``: at most that many calls served at once, the rest queued, never refused.

    ``profile`` (``"openai"``, ``"anthropic"``, ``"self-hosted"`` or None) fills in what is not
    given (:mod:`~pocket_parallel.service.profiles` says what and from where). Read after
    construction, every setting holds its resolved value; ``latency`` is None when calls are
    timed by ``ttft`` and ``tpot``.
    """

    latency: float | None = FROM_PROFILE
    jitter: float = FROM_PROFILE
    seed: int = 0
    failure_rate: float = 0.0
    stall_rate: float = 0.0
    overload_rate: float = 0.0
    max_concurrent: int | None = None
    requests_per_minute: int | None = FROM_PROFILE
    tokens_per_minute: int | None = FROM_PROFILE
    input_tokens_per_minute: int | None = FROM_PROFILE
    output_tokens_per_minute: int | None = FROM_PROFILE
    algorithm: Algorithm = "token_bucket"
    quantum: float = FROM_PROFILE
    slots: int | None = FROM_PROFILE
    ttft: float | None = FROM_PROFILE
    tpot: float | None = FROM_PROFILE
    answer_tokens: tuple[int, int] | None = FROM_PROFILE
    profile: str | None = None

    #: The mean latency without a profile, ttft or tpot.
    DEFAULT_LATENCY: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        profile = profile_settings(self.profile)
        latency_given = self.latency is not FROM_PROFILE and self.latency is not None
        for name, plain in _PLAIN.items():
            if getattr(self, name) is FROM_PROFILE:
                value = profile.get(name, plain)
                if (latency_given and name in ("ttft", "tpot")) or (name == "quantum" and self.algorithm != "token_bucket"):
                    value = plain  # a latency overrides the profile's timing; a window counts whole minutes
                object.__setattr__(self, name, value)
        if not latency_given:
            timed = self.ttft is not None or self.tpot is not None
            object.__setattr__(self, "latency", None if timed else type(self).DEFAULT_LATENCY)
        self.service_model()  # each check names its parameter and range
        self.quota()
        if self.slots is not None:
            check_int("slots", self.slots, low=1, high=MAX_IN_FLIGHT)

    # -- the parts ------------------------------------------------------------------------------

    def service_model(self) -> ServiceModel:
        """The seeded model of each call (latency or token timing, faults, answers)."""
        return ServiceModel(self.latency, self.jitter, self.seed, self.failure_rate, self.stall_rate,
                            self.overload_rate, self.ttft, self.tpot, self.answer_tokens)

    def quota(self) -> Quota:
        """A fresh :class:`~pocket_parallel.service.quota.Quota` enforcing these limits."""
        return Quota(
            max_concurrent=self.max_concurrent,
            **{name: getattr(self, name) for name in PER_MINUTE},
            algorithm=self.algorithm,
            quantum=self.quantum,
        )

    def new_slots(self) -> Slots | None:
        """Fresh :class:`~pocket_parallel.service.slots.Slots`, or None without ``slots``."""
        return None if self.slots is None else Slots(self.slots)

    @property
    def charges_max_tokens(self) -> bool:
        """Whether ``tokens_per_minute`` counts every message plus ``max_tokens`` at admission, as
        OpenAI documents (with a profile), rather than the prompt plus the answer (without one)."""
        return self.profile is not None

    # -- in words ---------------------------------------------------------------------------------

    def timing_text(self) -> str:
        """How long a call takes, e.g. ``"latency 0.5 s, jitter 0"`` or ``"ttft 0.5 s + 0.01 s per token, jitter 0.3"``."""
        if self.latency is None:
            return f"ttft {self.ttft:g} s + {self.tpot:g} s per token, jitter {self.jitter:g}"
        return f"latency {self.latency:g} s, jitter {self.jitter:g}"

    def extras_text(self) -> str:
        """The settings beyond latency, faults and limits, e.g. ``"; profile openai, answers of 100-400 tokens"``."""
        parts = [f"profile {self.profile}"] if self.profile else []
        if self.answer_tokens is not None:
            parts.append(f"answers of {self.answer_tokens[0]}-{self.answer_tokens[1]} tokens")
        if self.slots is not None:
            parts.append(f"{self.slots} slots (the rest queue)")
        return "; " + ", ".join(parts) if parts else ""

    @property
    def mean_latency(self) -> float:
        """Mean seconds per call: ``latency``, or with ``ttft`` and ``tpot``, those of an answer of
        average length (the middle of ``answer_tokens``, else a dozen tokens) alone in its batch."""
        if self.latency is not None:
            return float(self.latency)
        assert self.ttft is not None and self.tpot is not None  # checked when made
        tokens = 12 if self.answer_tokens is None else sum(self.answer_tokens) / 2
        return self.ttft + tokens * self.tpot

    def to_json(self) -> dict[str, Any]:
        """The resolved settings as a JSON object; ``latency`` is :attr:`mean_latency`."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(ServiceSettings)}
        data["answer_tokens"] = None if self.answer_tokens is None else list(self.answer_tokens)
        data["latency"] = self.mean_latency
        return data


#: The names of the settings, in order: what SimulatedLLM, LocalServer and ServerSettings all take.
SETTINGS = tuple(field.name for field in dataclasses.fields(ServiceSettings))


def takes_settings(settings_class: type, positional: int = 4,
                   **own: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give an ``__init__(self, *args, **settings)`` that passes everything to ``settings_class`` the signature it has.

    ``help()``, Jupyter's ``?`` and tab completion then show every setting, the first
    ``positional`` of them positional, the rest keyword-only, with their defaults; ``own``
    names the keywords ``__init__`` keeps for itself, with their defaults, shown last.
    """

    def decorate(init: Callable[..., Any]) -> Callable[..., Any]:
        parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for index, field in enumerate(dataclasses.fields(settings_class)):
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if index < positional else inspect.Parameter.KEYWORD_ONLY
            parameters.append(inspect.Parameter(field.name, kind, default=field.default))
        parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                       for name, default in own.items()]
        init.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        return init

    return decorate


def settings_from(settings_class: type, owner: str, args: Sequence[Any], settings: dict[str, Any],
                  positional: int = 4) -> Any:
    """``settings_class(*args, **settings)`` for ``owner``, with errors that name ``owner`` and its keywords."""
    if len(args) > positional:
        names = ", ".join(field.name for field in dataclasses.fields(settings_class)[:positional])
        raise TypeError(f"{owner} takes at most {positional} settings by position ({names}); give the others by "
                        f"name, e.g. max_concurrent=8; got {len(args)}")
    known = {field.name for field in dataclasses.fields(settings_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"{owner} got an unexpected setting {unknown[0]!r}: it takes {', '.join(sorted(known))}")
    return settings_class(*args, **settings)
