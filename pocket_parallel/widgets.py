"""The course's widgets: :func:`explorer` (the live explorer), re-exported from its own module.

The explorer lives in :mod:`~pocket_parallel.explorer_widget`, built from
:mod:`~pocket_parallel.explorer_controls`, :mod:`~pocket_parallel.explorer_runs` and
:mod:`~pocket_parallel.explorer_picture`; this module keeps ``pocket_parallel.widgets.explorer``
and ``Explorer`` where notebooks and tests have always found them.
"""

from .explorer_runs import CURVE_LIMITS
from .explorer_widget import Explorer, explorer

__all__ = ["CURVE_LIMITS", "Explorer", "explorer"]
