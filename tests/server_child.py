"""The server's command line with fewer file descriptors and a shorter request deadline, for tests.

``python -m tests.server_child OPEN_FILES DEADLINE [server flags...]``: sets the process's limit
of open files to OPEN_FILES and the request deadline to DEADLINE seconds, then runs
``python -m pocket_parallel.server`` with the flags.
"""

from __future__ import annotations

import resource
import sys

from pocket_parallel.server import cli, connections

if __name__ == "__main__":
    open_files, deadline, *flags = sys.argv[1:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(open_files), int(open_files)))
    connections.REQUEST_DEADLINE = float(deadline)
    sys.exit(cli.main(flags))
