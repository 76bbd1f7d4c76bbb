"""``python -m pocket_parallel.server``: see :mod:`pocket_parallel.server.cli`."""

import sys

from .cli import main

sys.exit(main())
