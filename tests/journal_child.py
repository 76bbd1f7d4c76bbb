"""A batch run in a child process, to be killed mid-way: ``python -m tests.journal_child JOURNAL LOG N C HOLD``.

It sends N prompts through a journaled BoundedParallelBatchNode on the real clock (calls of
about 20 ms), logging "start i" before each call and "end i" when its answer arrives, so the
parent knows exactly what had been paid for when it pulled the plug. After HOLD answers,
the calls still in flight never end: the parent kills the child then, however slowly it
gets to it on a busy machine.
"""

from __future__ import annotations

import asyncio
import os
import sys

from pocket_parallel import SimulatedLLM, run
from tests.support import AskNode, prompts


def main(journal: str, log_path: str, items: int, limit: int, hold: int) -> None:
    llm = SimulatedLLM(latency=0.02, jitter=0.5, seed=7)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    ended = 0

    class Logged(AskNode):
        async def exec_async(self, prompt):
            nonlocal ended
            os.write(log, f"start {prompt}\n".encode())
            answer = await self.llm(prompt)
            if ended >= hold:
                await asyncio.Event().wait()  # in flight until the parent kills this process
            ended += 1
            os.write(log, f"end {prompt}\n".encode())
            return answer

    run(Logged(llm, max_concurrency=limit, journal=journal).run_async({"prompts": prompts(items)}), clock="real")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
