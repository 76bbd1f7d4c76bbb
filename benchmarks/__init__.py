"""Benchmarks of pocket_parallel against what a learner would otherwise use.

One workload for everyone: N waits of L seconds with at most C in flight. The modules:

- :mod:`benchmarks.contenders`: the same workload written each way (our node and flow,
  plain ``asyncio.gather`` with a semaphore, PocketFlow's own nodes, ``aiometer``, threads).
- :mod:`benchmarks.measure`: one timed run, one memory run in a fresh process, the stats.
- :mod:`benchmarks.report`: the Markdown tables, the README section and the plot.
- :mod:`benchmarks.run`: the command line (``make bench``, ``make bench-quick``).
"""
