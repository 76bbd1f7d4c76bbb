"""The command line of a benchmark section run alone: ``python -m benchmarks.<section> [--quick] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def run_alone(prog: str, description: str, quick_help: str, plans: Mapping[str, Any],
              measure: Callable[..., Any], section: Callable[[Any], str], to_json: Callable[[Any], dict[str, Any]],
              argv: Sequence[str] | None = None) -> int:
    """Measure ``plans["quick"]`` or ``plans["full"]``, print the section, save the raw numbers if asked."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", metavar="FILE", help="also save the raw numbers to FILE")
    args = parser.parse_args(argv)
    results = measure(plans["quick" if args.quick else "full"], say=lambda text: print(text, file=sys.stderr, flush=True))
    print(section(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(to_json(results), out, indent=1)
    return 0
