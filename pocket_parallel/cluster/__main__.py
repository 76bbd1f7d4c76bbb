"""``python -m pocket_parallel.cluster``: see :mod:`pocket_parallel.cluster.cli`."""

from .cli import main

if __name__ == "__main__":  # worker processes started with "spawn" import this module again
    raise SystemExit(main())
