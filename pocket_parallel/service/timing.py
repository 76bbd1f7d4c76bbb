"""When a call's tokens come: time to first token, then a time per output token that grows with the batch.

A hosted LLM's call takes its time to first token (TTFT: queueing, reading the prompt) plus
its output tokens times the time per output token (TPOT). A self-hosted server decodes the
sequences it holds in its slots together, one token each per step, and a step takes longer
the more sequences it holds. With ``b`` sequences in the batch this package uses::

    TPOT(b) = TPOT(1) × (1 + α × (b − 1)),   α = BATCH_SLOWDOWN = 0.1

so one sequence decodes at full speed, eight at 1.7 times the time per token, and the
server's tokens per second, ``b / TPOT(b)``, grows ever more slowly with ``b`` (8 sequences
give 4.7 times one sequence's throughput) and never passes ``1 / (α × TPOT(1))``: the
throughput saturates and each call's latency rises. α = 0.1 is an illustrative choice of
ours, not a measured constant: memory-bound GPU decoding slows less per added sequence,
CPU decoding more. A call's ``b`` is the number of sequences in the batch, itself included,
when it takes its slot; it keeps that pace to its end.

:class:`Timing` is one call's schedule; the same log-normal factor that spreads latencies
(``jitter``) scales the whole of it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: α in TPOT(b) = TPOT(1) × (1 + α (b − 1)): how much each further sequence in a batch slows a token.
BATCH_SLOWDOWN = 0.1


def time_per_token(tpot: float, batch: int) -> float:
    """Seconds per output token for one of ``batch`` sequences decoded together (``batch`` >= 1)."""
    return tpot * (1 + BATCH_SLOWDOWN * (batch - 1))


@dataclass(frozen=True)
class Timing:
    """One call's schedule, in seconds from the moment it is served (after any queue).

    The first token comes at ``first_token``, each further token ``per_token`` later, and
    the call ends at ``total``, one more ``per_token`` after the last token (the step that
    ends the sequence), rounded to the microsecond as every latency is. With a
    plain ``latency`` (no time per token), the whole answer comes at once: ``first_token``
    and ``total`` are the latency and ``per_token`` is 0.
    """

    first_token: float
    per_token: float
    total: float

    @classmethod
    def at_once(cls, latency: float) -> Timing:
        """The whole answer after ``latency`` seconds."""
        return cls(latency, 0.0, latency)

    @classmethod
    def streamed(cls, factor: float, ttft: float, tpot: float, tokens: int, batch: int = 1) -> Timing:
        """``tokens`` output tokens after ``ttft``, at ``tpot`` slowed by the ``batch``, all scaled by ``factor``."""
        per_token = time_per_token(tpot, batch)
        total = max(round(factor * (ttft + tokens * per_token), 6), 1e-6)
        return cls(min(round(factor * ttft, 6), total), factor * per_token, total)

    def token_at(self, index: int) -> float:
        """When output token ``index`` (counted from 1) arrives: ``first_token + (index - 1) × per_token``."""
        return min(self.total, self.first_token + (index - 1) * self.per_token)
