"""The same batch on a Dask cluster, with one cap on calls in flight that holds across every worker.

Placeholder docstring: replaced below.
"""

from .chunks import CAP_MODES, CapMode, RemoteError
from .client_work import count_tokens_slowly
from .recipes import AskOverHTTP
from .result import ClusterRun
from .runner import DEFAULT_LEASE_TIMEOUT, Cluster

__all__ = [
    "CAP_MODES",
    "DEFAULT_LEASE_TIMEOUT",
    "AskOverHTTP",
    "CapMode",
    "Cluster",
    "ClusterRun",
    "RemoteError",
    "count_tokens_slowly",
]
