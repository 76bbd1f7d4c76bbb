"""Client-side CPU work per call: counting an answer's tokens in pure Python, a given number of times.

A real client spends processor time on every call besides waiting: building the request,
parsing the JSON answer, counting tokens for a budget, validating the output. In one process
that time adds up on one core, under the GIL, however many calls are in flight; more
worker processes spread it over more cores. :func:`count_tokens_slowly` is that work,
deterministic and measurable, so a lesson can dial it up and watch where the time goes.
"""

from __future__ import annotations

from .._validate import check_int


def count_tokens_slowly(text: str, rounds: int) -> int:
    """Tokens in ``text`` (words and punctuation, long words in pieces of 4 characters), counted ``rounds`` times.

    Every character passes through Python bytecode, so it holds the GIL for the whole count:
    ``rounds`` scales the processor time per call (``rounds=0`` costs nothing). Returns the
    count (the same each round); ``rounds`` is an integer in ``[0, 100_000]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    rounds = check_int("rounds", rounds, low=0, high=100_000)
    tokens = 0
    for _ in range(rounds):
        tokens = 0
        run = 0
        for character in text:
            if character.isalnum():
                run += 1
                if run == 4:
                    tokens += 1
                    run = 0
            else:
                if run:
                    tokens += 1
                    run = 0
                if not character.isspace():
                    tokens += 1
        if run:
            tokens += 1
    return tokens
